"""Inference on fitted models: intervals, tests and model comparison (issue: Inference).

The methods of :class:`InferenceMixin` are thin front ends; the numerics live in
:mod:`.profile` (likelihood profiles, lme4's ``profile``/``confint``),
:mod:`.bootstrap` (parametric bootstrap, lme4's ``bootMer``), :mod:`.ddf`
(Satterthwaite as lmerTest, Kenward-Roger as pbkrtest) and :mod:`.anova`
(likelihood-ratio tests of nested models, lme4's ``anova``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

ConfintMethod = Literal["profile", "wald", "boot"]
BootType = Literal["percentile", "basic", "normal"]
_METHODS = ("profile", "wald", "boot")
_BOOT_TYPES = ("percentile", "basic", "normal")


def _check_level(level: float) -> float:
    if not (isinstance(level, float | int) and 0.0 < float(level) < 1.0):
        raise ValueError(f"level must be a number strictly between 0 and 1. Got {level!r}.")
    return float(level)


class InferenceMixin:
    """Methods of fitted mixed models for inference (confint, profile, bootstrap, ddf tests).

    Mixed into :class:`mixedmodels.results.LinearMixedModel`; implementations live in
    the modules of this package.  GLMM fits are not covered yet.
    """

    def confint(
        self,
        method: ConfintMethod = "profile",
        level: float = 0.95,
        parm: Any = None,
        *,
        type: BootType = "percentile",
        nsim: int = 500,
        seed: int | None = None,
        n_jobs: int | None = None,
        progress: bool = False,
    ) -> pd.DataFrame:
        """Confidence intervals for the variance parameters, σ and the fixed effects.

        Rows are named as lme4's ``confint(oldNames = FALSE)``: ``sd_(Intercept)|g``,
        ``cor_x.(Intercept)|g``, ``sigma``, then the fixed effects (``Intercept``, ...).

        Parameters
        ----------
        method : {"profile", "wald", "boot"}
            Likelihood profile (lme4's default; the ML deviance, a REML fit being refitted
            by ML as lme4 does), Wald (fixed effects only; NaN for variance parameters, as
            lme4) or parametric bootstrap (:meth:`bootstrap`).
        level : float
            Coverage, 0.95 by default.
        parm : str, int or list, optional
            Parameters by name or position, or ``"theta_"`` / ``"beta_"``; all by default.
        type : {"percentile", "basic", "normal"}
            Bootstrap interval type (``method="boot"`` only).
        nsim, seed, n_jobs, progress
            Passed to :meth:`bootstrap` when ``method="boot"``.

        Returns
        -------
        DataFrame with columns ``lower`` and ``upper``.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
        >>> ci = m.confint(method="wald")
        >>> list(ci.index)
        ['sd_(Intercept)|student', 'sigma', 'Intercept', 'occasion']
        >>> bool(ci.loc["occasion", "lower"] < m.fixef["occasion"] < ci.loc["occasion", "upper"])
        True
        """
        from .profile import profile_confint, select_parameters

        if method not in _METHODS:
            raise ValueError(f"method: expecting one of {set(_METHODS)}. Got {method!r}.")
        level = _check_level(level)
        if method == "profile":
            return profile_confint(self, parm=parm, level=level)
        names = self._parameter_names()
        nvp = len(names) - len(self.design.fixed_names)
        which = select_parameters(names, nvp, parm)
        alpha = (1.0 - level) / 2.0
        if method == "wald":
            z = stats.norm.ppf(1.0 - alpha)
            lower = np.full(len(names), np.nan)
            upper = np.full(len(names), np.nan)
            beta = self.fixef.to_numpy()
            se = np.sqrt(np.diag(self.vcov.to_numpy()))
            lower[nvp:] = beta - z * se
            upper[nvp:] = beta + z * se
            table = pd.DataFrame({"lower": lower, "upper": upper}, index=names)
            return table.iloc[which]
        if type not in _BOOT_TYPES:
            raise ValueError(f"type: expecting one of {set(_BOOT_TYPES)}. Got {type!r}.")
        boot = self.bootstrap(nsim, seed=seed, n_jobs=n_jobs, progress=progress)
        return boot.confint(level=level, type=type).iloc[which]

    def _parameter_names(self) -> list[str]:
        """lme4's ``oldNames = FALSE`` names: variance parameters, sigma, fixed effects."""
        from ._params import VarianceLayout

        return list(VarianceLayout.of(self.crossprods).names) + list(self.design.fixed_names)

    def profile(self, parm: Any = None, *, alphamax: float = 0.01, maxpts: int = 100):
        """Likelihood profiles: ζ (signed square root of the ML deviance change) along each
        parameter, the other parameters re-optimized, as lme4's ``profile``.

        Parameters
        ----------
        parm : str, int or list, optional
            Parameters to profile (names as :meth:`confint`); all by default.
        alphamax : float
            The traces reach |ζ| ≥ √χ²₁₋ₐₗₚₕₐₘₐₓ(#parameters), as lme4.
        maxpts : int
            At most this many points per direction.

        Returns
        -------
        DataFrame with columns ``parameter, value, zeta`` and then the value of every
        parameter along the trace (one block of rows per profiled parameter).

        Examples
        --------
        >>> import mixedmodels as mm
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
        >>> prof = m.profile(parm="sigma")
        >>> list(prof.columns[:3])
        ['parameter', 'value', 'zeta']
        >>> bool(prof["zeta"].is_monotonic_increasing)
        True
        """
        from .profile import Profiler, profile_table, select_parameters

        profiler = Profiler(self, alphamax=alphamax, maxpts=maxpts)
        which = select_parameters(profiler.names, profiler.nvp, parm)
        table = profile_table(profiler, which)
        table["parameter"] = table["parameter"].replace({"(Intercept)": "Intercept"})
        return table
