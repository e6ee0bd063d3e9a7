"""A matplotlib Figure that Jupyter displays on its own.

The plots are built without pyplot (no global state, no GUI backend). IPython only knows how
to show a bare :class:`~matplotlib.figure.Figure` once pyplot's inline backend has registered
its formatter, so in a fresh kernel a plot left as a cell's value printed as
``<Figure size 880x320 with 2 Axes>``. This subclass carries its own ``_repr_png_``; when the
inline backend is active, IPython's registered formatter (looked up along the class's bases)
takes precedence and the figure is still shown once.
"""

from __future__ import annotations

import io

import matplotlib.figure

#: resolution of the notebook image (matplotlib's inline backend uses 100 as well)
NOTEBOOK_DPI = 100


class Figure(matplotlib.figure.Figure):
    """A :class:`matplotlib.figure.Figure` with a PNG representation for IPython.

    It keeps matplotlib's class name: to users it is simply a Figure.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        # the plots' rc context (tight bbox) is gone when IPython asks: say it again
        self.savefig(buffer, format="png", dpi=NOTEBOOK_DPI, bbox_inches="tight")
        return buffer.getvalue()
