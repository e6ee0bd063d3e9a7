"""What comes after the fit, on every model (lm, lmer, glmer): marginal means, R²,
simulation, refits and tidy tables, plus the statsmodels names Python users look for.

The methods are one-line delegations to free functions of the fitted model in
:mod:`~mixedmodels.inference.emmeans`, :mod:`~mixedmodels.inference.r2`, :mod:`.simulate`,
:mod:`~mixedmodels.frontend.update`, :mod:`.broom` and :mod:`~mixedmodels.inference.wald`
(the statsmodels names' standard errors, tests and intervals); ``params``, ``llf``,
``resid`` and ``fittedvalues`` are one-line aliases of the model's own accessors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from ..frontend.update import FitCall


class AnalysisMixin:
    """Methods shared by :class:`LinearModel`, :class:`LinearMixedModel` and
    :class:`GeneralizedLinearMixedModel`."""

    call: FitCall | None = None

    # -- emmeans, R², simulate, update ---------------------------------------------------
    def emmeans(self, specs: Any, **options: Any) -> Any:
        """Estimated marginal means (and contrasts), as R's ``emmeans``.

        See :func:`mixedmodels.inference.emmeans.emmeans` for the options (``by``,
        ``at``, ``ddf``, ``type``, ``pairwise``, ``adjust``, ``contrasts``, ``level``).
        """
        from ..inference.emmeans import emmeans

        return emmeans(self, specs, **options)

    def r2(self) -> dict[str, float]:
        """Marginal and conditional R², as ``performance::r2_nakagawa``.

        See :func:`mixedmodels.inference.r2.r2`.
        """
        from ..inference.r2 import r2

        return r2(self)

    def simulate(self, nsim: int = 1, seed: Any = None, re_form: Any = "~0") -> np.ndarray:
        """Simulated responses, shape (n, nsim), as lme4's ``simulate``.

        See :func:`mixedmodels.toolbox.simulate.simulate`.
        """
        from .simulate import simulate

        return simulate(self, nsim=nsim, seed=seed, re_form=re_form)

    def update(self, formula: str | None = None, data: Any = None, **options: Any) -> Any:
        """Refit with a new formula (R's dots allowed: ``". ~ . + x"``), data or options.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
        >>> m.update(". ~ . + sex").formula
        'gpa ~ occasion + (1 | student) + sex'
        >>> m.update(reml=False).reml
        False
        """
        from ..frontend.update import update

        return update(self, formula, data, **options)

    # -- broom.mixed -----------------------------------------------------------------------
    def tidy(self, effects: Any = ("fixed", "ran_pars"), **options: Any) -> pd.DataFrame:
        """One row per parameter, as broom.mixed's ``tidy`` (see :func:`.broom.tidy`)."""
        from .broom import tidy

        return tidy(self, effects=effects, **options)

    def glance(self) -> pd.DataFrame:
        """Fit statistics in one row, as broom.mixed's ``glance`` (see :mod:`.broom`)."""
        from .broom import glance

        return glance(self)

    def augment(self, data: Any = None) -> pd.DataFrame:
        """The model frame with fitted values and diagnostics, as broom.mixed's ``augment``."""
        from .broom import augment

        return augment(self, data=data)

    # -- statsmodels names ---------------------------------------------------------------
    @property
    def params(self) -> pd.Series:
        """Fixed-effects estimates (statsmodels' ``params``)."""
        return self.fixef.rename("params")  # type: ignore[attr-defined]

    @property
    def bse(self) -> pd.Series:
        """Standard errors of the fixed effects (statsmodels' ``bse``)."""
        from ..inference.wald import standard_errors

        return standard_errors(self)

    @property
    def tvalues(self) -> pd.Series:
        """Wald statistics of the fixed effects (statsmodels' ``tvalues``)."""
        from ..inference.wald import wald_statistics

        return wald_statistics(self)

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values: t with the residual df for lm, normal for mixed models (as
        statsmodels' MixedLM; use ``fixed_effects(ddf=...)`` for Satterthwaite/KR)."""
        from ..inference.wald import wald_pvalues

        return wald_pvalues(self)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald intervals of the fixed effects, columns 0 and 1 (statsmodels' ``conf_int``).

        Examples
        --------
        >>> import mixedmodels as mm
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
        >>> m.conf_int().columns.tolist()
        [0, 1]
        """
        from ..inference.wald import wald_conf_int

        return wald_conf_int(self, alpha)

    @property
    def llf(self) -> float:
        """Log-likelihood (statsmodels' ``llf``; REML criterion's for REML fits, as lme4)."""
        return float(self.loglik)  # type: ignore[attr-defined]

    @property
    def resid(self) -> np.ndarray:
        """Response residuals y − fitted mean (statsmodels' ``resid``)."""
        return np.asarray(self.design.y) - self.fittedvalues  # type: ignore[attr-defined]

    @property
    def fittedvalues(self) -> np.ndarray:
        """Fitted means on the response scale (statsmodels' ``fittedvalues``)."""
        return np.asarray(self.fitted())  # type: ignore[attr-defined]
