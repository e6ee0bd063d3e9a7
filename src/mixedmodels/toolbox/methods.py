"""The seed's toolbox on fitted models: simulation intervals, plots, equations (issue: toolbox).

The methods are thin: the work is in :mod:`.simulate`, :mod:`.plots` and :mod:`.latex`
(all in :mod:`mixedmodels.toolbox`), which read results and are never imported by the numerics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .plots import PlotAccessor
    from .simulate import Scale, Stat, Which


class ToolboxMixin:
    """Methods of fitted mixed models for REsim, predictInterval, plots and LaTeX.

    Mixed into :class:`mixedmodels.models.linear_mixed.LinearMixedModel`.
    """

    def resim(self, nsim: int = 1000, seed: Any = None) -> pd.DataFrame:
        """Mean, median and SD of draws of the random effects, as merTools' ``REsim``.

        See :func:`mixedmodels.toolbox.simulate.resim`.
        """
        from .simulate import resim

        return resim(self, nsim=nsim, seed=seed)  # type: ignore[arg-type]

    def predict_interval(
        self,
        newdata: Any = None,
        level: float = 0.95,
        nsim: int = 1000,
        which: Which = "full",
        include_resid_var: bool | None = None,
        stat: Stat = "median",
        seed: Any = None,
        type: Scale = "response",
        progress: bool | None = None,
    ) -> pd.DataFrame:
        """Simulated prediction intervals (fit, lower, upper), as merTools' ``predictInterval``.

        For a GLMM, the interval of the mean on the response scale (merTools'
        ``type = "probability"``, without residual noise).

        See :func:`mixedmodels.toolbox.simulate.predict_interval`.
        """
        from .simulate import predict_interval

        return predict_interval(
            self,  # type: ignore[arg-type]
            newdata=newdata,
            level=level,
            nsim=nsim,
            which=which,
            include_resid_var=include_resid_var,
            stat=stat,
            seed=seed,
            type=type,
            progress=progress,
        )

    @property
    def plot(self) -> PlotAccessor:
        """Plots of the fit: ``caterpillar()``, ``shrinkage()``, ``fitted()``,
        ``marginal_cov()``, ``residuals()``, ``profile()``; each returns a Figure.

        See :class:`mixedmodels.toolbox.plots.PlotAccessor`.
        """
        from .plots import PlotAccessor

        return PlotAccessor(self)  # type: ignore[arg-type]

    def to_latex(self) -> str:
        """The model equation in equatiomatic's form (``extract_eq``).

        See :func:`mixedmodels.toolbox.latex.to_latex`.
        """
        from .latex import to_latex

        return to_latex(self)

    def _repr_latex_(self) -> str:
        """The equation for Jupyter's LaTeX display (MathJax renders ``$$ ... $$``)."""
        return self.to_latex()
