"""The plots' one quiet style: palette, matplotlib settings, pyplot-free figures and the
normal QQ panel every residual plot draws."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes


#: the seed's palette: accent (clr2), muted grey (clr0d), a second colour (clr1), light fill
ACCENT = "#B35136"
MUTED = "#8F8F8F"
SECOND = "#3D6E8F"
LIGHT = "#E3E3E3"

_RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.grid": True,
    "grid.color": "#EBEBEB",
    "grid.linewidth": 0.6,
    "xtick.color": "#444444",
    "ytick.color": "#444444",
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
}


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        yield


def _figure(ncols: int, nrows: int = 1, width: float = 4.2, height: float = 3.3):
    """A Figure with a grid of axes, without pyplot (no global state, no GUI backend)."""
    from ._display import Figure

    # a Figure that Jupyter shows as PNG without pyplot (see _display)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes.ravel()


def _qq(ax: Axes, values: np.ndarray, colour: str, label: str | None) -> None:
    values = np.sort(np.asarray(values, dtype=float))
    n = len(values)
    if n == 0:
        return
    # R's ppoints
    a = 3.0 / 8.0 if n <= 10 else 0.5
    theoretical = stats.norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))
    ax.scatter(theoretical, values, s=6, color=colour, alpha=0.7, linewidths=0, label=label)
    lim = [theoretical.min(), theoretical.max()]
    ax.plot(lim, lim, color="black", linewidth=0.8)
    ax.set_xlabel("normal quantile")
    ax.set_ylabel("sample quantile")
