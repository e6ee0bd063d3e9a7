"""Plots of :func:`~mixedmodels.lm` fits (``fit.plot``): the fitted line with its
confidence band and the residual diagnostics, in the mixed models' style."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._plot_inputs import _typical_row, _x_column
from ._plot_style import ACCENT, MUTED, _figure, _qq, _style

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


class LinearModelPlotAccessor:
    """The ``fit.plot`` namespace of an :func:`~mixedmodels.lm` fit: the plots that have a
    meaning without random effects, in the mixed models' style.

    Parameters
    ----------
    model : LinearModel

    Examples
    --------
    >>> import mixedmodels as mm
    >>> fit = mm.lm("gpa ~ occasion + sex", mm.datasets.gpa(seed=1))
    >>> type(fit.plot.fitted()).__name__
    'Figure'
    """

    def __init__(self, model: Any):
        self._model = model

    def fitted(self, *, x: str | None = None, level: float = 0.95) -> Figure:
        """The data and the fitted line along ``x`` with its confidence band
        (``predict.lm(interval = "confidence")``), every other covariate at its mean
        (numeric) or reference level (factor), as the mixed models' population line.

        Parameters
        ----------
        x : str, optional
            The covariate on the x axis; by default the first numeric one of the formula.
        level : float
            Coverage of the band.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ..inference.linear import prediction_interval

        model = self._model
        frame = model.design.frame.reset_index(drop=True)
        xcol = _x_column(model, x)
        response = model.design.spec.response
        typical = _typical_row(frame, {response, xcol})
        xs = frame[xcol].to_numpy(dtype=float)
        grid = np.linspace(xs.min(), xs.max(), 60)
        line_frame = pd.DataFrame({k: [v] * grid.size for k, v in typical.items()})
        line_frame[xcol] = grid
        band = prediction_interval(model, line_frame, level=level, interval="confidence")
        held = list(typical)
        with _style():
            fig, axes = _figure(1, width=5.2, height=3.8)
            ax = axes[0]
            ax.scatter(xs, model.design.y, s=6, color=MUTED, alpha=0.5, linewidths=0)
            ax.fill_between(grid, band["lower"], band["upper"], color=ACCENT, alpha=0.2,
                            linewidth=0, label=f"{100 * level:g}% confidence band")  # fmt: skip
            ax.plot(grid, band["fit"], color=ACCENT, linewidth=1.8, label="lm")
            ax.set_xlabel(xcol)
            ax.set_ylabel(response)
            ax.set_title(f"Fitted line: {response} ~ {xcol}")
            ax.legend(fontsize=8, loc="best")
            if held:
                fig.suptitle(
                    f"Other covariates at mean / reference level ({', '.join(held)})",
                    fontsize=9,
                )
        return fig

    def residuals(self) -> Figure:
        """Residuals against fitted values (with a running mean) and a normal QQ plot of
        the standardized residuals: the first two panels of R's ``plot.lm``.

        Returns
        -------
        matplotlib.figure.Figure
        """
        model = self._model
        fitted, resid = model.fitted(), model.residuals()
        w = model.design.weights
        standardized = resid * (1.0 if w is None else np.sqrt(w)) / model.sigma
        with _style():
            fig, axes = _figure(2, width=3.9, height=3.2)
            ax = axes[0]
            ax.scatter(fitted, resid, s=5, color=MUTED, alpha=0.6, linewidths=0)
            ax.axhline(0.0, color=ACCENT, linewidth=1.0)
            order = np.argsort(fitted)
            window = max(5, len(fitted) // 20)
            smooth = pd.Series(resid[order]).rolling(window, center=True, min_periods=1).mean()
            ax.plot(fitted[order], smooth, color="black", linewidth=1.0)
            ax.set_xlabel("fitted")
            ax.set_ylabel("residual")
            ax.set_title("Residuals vs fitted")
            _qq(axes[1], standardized, MUTED, None)
            axes[1].set_title("Normal QQ: residuals / σ")
        return fig
