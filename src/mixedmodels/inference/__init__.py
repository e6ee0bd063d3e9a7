"""Inference on fitted models: intervals, tests and model comparison (issue: Inference).

The methods of :class:`InferenceMixin` are thin front ends; the numerics live in
:mod:`.profile` (likelihood profiles, lme4's ``profile``/``confint``),
:mod:`.bootstrap` (parametric bootstrap, lme4's ``bootMer``), :mod:`.ddf`
(Satterthwaite as lmerTest, Kenward-Roger as pbkrtest), :mod:`.hypotheses` (the
type I/II/III hypothesis of each term, as lmerTest's ``anova``) and :mod:`.anova`
(likelihood-ratio tests of nested models, lme4's ``anova``), with :mod:`.emmeans`, :mod:`.r2`
(performance's R²) and :mod:`.comparison` (``aic_table``).

May import: the engines (:mod:`mixedmodels.frontend`, :mod:`mixedmodels.lmm`,
:mod:`mixedmodels.residual`, :mod:`mixedmodels.glmm`).  A fitted model is an argument, named
through :mod:`mixedmodels._protocols`, never imported: the models import this package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from .._threads import blas_threads_for
from .hypotheses import AnovaType

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

    Mixed into :class:`mixedmodels.models.linear_mixed.LinearMixedModel`; implementations live in
    the modules of this package.  glmer fits have them all but the ddf tests (their
    fixed-effect tests are Wald z tests).
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
        progress: bool | None = None,
    ) -> pd.DataFrame:
        """Confidence intervals for the variance parameters, σ and the fixed effects.

        Rows are named as lme4's ``confint(oldNames = FALSE)``: ``sd_(Intercept)|g``,
        ``cor_x.(Intercept)|g``, ``sigma``, then the fixed effects (``Intercept``, ...).
        glmer fits of binomial and Poisson families have no ``sigma`` row; Gamma and
        inverse Gaussian ones have it, and no profile intervals (as lme4).

        Parameters
        ----------
        method : {"profile", "wald", "boot"}
            Likelihood profile (lme4's default; the ML deviance, a REML fit being refitted
            by ML as lme4 does; for glmer fits the Laplace or adaptive Gauss-Hermite
            deviance they were fitted with), Wald (fixed effects only; NaN for variance
            parameters, as lme4) or parametric bootstrap (:meth:`bootstrap`).
        level : float
            Coverage, 0.95 by default.
        parm : str, int or list, optional
            Parameters by name or position, or ``"theta_"`` / ``"beta_"``; all by default.
        type : {"percentile", "basic", "normal"}
            Bootstrap interval type (``method="boot"`` only).
        nsim, seed, n_jobs
            Passed to :meth:`bootstrap` when ``method="boot"``.
        progress : bool, optional
            A progress bar over the profiled parameters or the bootstrap refits; by
            default shown in a terminal or a notebook only.

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
        from .profilers import make_profiler

        if method not in _METHODS:
            raise ValueError(f"method: expecting one of {set(_METHODS)}. Got {method!r}.")
        level = _check_level(level)
        if method == "profile":
            with blas_threads_for(self.crossprods):  # as profile(): BLAS threads spin there
                profiler = make_profiler(self)
                return profile_confint(profiler, parm=parm, level=level, progress=progress)
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

        names = list(VarianceLayout.of(self.crossprods).names)
        if self._is_glmm() and self.family.scale_free:  # binomial/poisson: no scale
            names.remove("sigma")
        return names + list(self.design.fixed_names)

    def _is_glmm(self) -> bool:
        return getattr(self, "family", None) is not None

    def profile(
        self,
        parm: Any = None,
        *,
        alphamax: float = 0.01,
        maxpts: int = 100,
        progress: bool | None = None,
    ):
        """Likelihood profiles: ζ (signed square root of the ML deviance change) along each
        parameter, the other parameters re-optimized, as lme4's ``profile``.

        For glmer fits the deviance is the Laplace (``nagq=1``) or adaptive Gauss-Hermite
        one of the fit, and at each point every other parameter, SDs, correlations and
        fixed effects alike, is re-optimized on it, as lme4 does for ``glmerMod``.

        Parameters
        ----------
        parm : str, int or list, optional
            Parameters to profile (names as :meth:`confint`); all by default.
        alphamax : float
            The traces reach ``|ζ|`` ≥ √χ²₁₋ₐₗₚₕₐₘₐₓ(#parameters), as lme4.
        maxpts : int
            At most this many points per direction.
        progress : bool, optional
            A progress bar over the profiled parameters; by default shown in a terminal or
            a notebook only.

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
        from .profile import profile_table, select_parameters
        from .profilers import make_profiler

        profiler = make_profiler(self, alphamax=alphamax, maxpts=maxpts)
        which = select_parameters(profiler.names, profiler.nvp, parm)
        with blas_threads_for(self.crossprods):
            table = profile_table(profiler, which, progress=progress)
        table["parameter"] = table["parameter"].replace({"(Intercept)": "Intercept"})
        return table

    def _ddf_method(self, ddf: str | None):
        from .ddf import KenwardRoger, Satterthwaite

        options = ("satterthwaite", "kenward-roger", "normal")
        if ddf is None:  # the kind's own tests: t/F for lmer, asymptotic Wald for glmer
            ddf = "normal" if self._is_glmm() else "satterthwaite"
        if ddf not in options:
            raise ValueError(f"ddf: expecting one of {set(options)}. Got {ddf!r}.")
        if ddf == "normal":
            return None
        return Satterthwaite(self) if ddf == "satterthwaite" else KenwardRoger(self)

    def _wald_chisq(self, L: np.ndarray) -> tuple[float, int]:
        """Wald χ² of ``L β = 0`` with Cov(β̂) = :attr:`vcov` (car's ``linearHypothesis``)."""
        beta = self.fixef.to_numpy()
        V = self.vcov.to_numpy()
        Lb = L @ beta
        LVL = L @ V @ L.T
        d, P = np.linalg.eigh(LVL)
        keep = d > max(np.sqrt(np.finfo(float).eps) * d.max(), 0.0)
        z = (P[:, keep].T @ Lb) / np.sqrt(d[keep])
        return float(z @ z), int(keep.sum())

    def contrast(self, L: Any, ddf: str | None = None) -> pd.DataFrame:
        """Test the linear hypothesis ``L β = 0`` (lmerTest's ``contest``; for glmer fits
        the asymptotic Wald test, as car's ``linearHypothesis``).

        Parameters
        ----------
        L : array-like, shape (p,) or (q, p), or dict of term -> weight
            Contrast weights over the fixed effects (in :attr:`fixef` order); a dict names
            the coefficients and leaves the others at 0.
        ddf : {"satterthwaite", "kenward-roger", "normal"}, optional
            ``"normal"``: asymptotic Wald z (one row of ``L``) or χ² test.  By default
            ``"satterthwaite"`` for lmer fits and ``"normal"`` for glmer fits, whose
            fixed-effect tests are asymptotic (denominator df are not defined for them).

        Returns
        -------
        DataFrame with one row: ``estimate, se, t, df, p_value`` for one row of ``L``,
        else ``F, num_df, den_df, p_value``; with ``ddf="normal"``
        ``estimate, se, z, p_value`` or ``Chisq, Df, p_value``.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
        >>> list(m.contrast({"occasion": 1.0}).columns)
        ['estimate', 'se', 't', 'df', 'p_value']
        """
        names = list(self.design.fixed_names)
        if isinstance(L, dict):
            unknown = [k for k in L if k not in names]
            if unknown:
                raise ValueError(
                    f"L names unknown fixed effects {unknown}. Expecting any of {names}."
                )
            L = np.array([[float(L.get(n, 0.0)) for n in names]])
        L = np.atleast_2d(np.asarray(L, dtype=float))
        if L.shape[1] != len(names) or L.ndim != 2:
            raise ValueError(
                f"L must have {len(names)} columns (one per fixed effect: {names}). "
                f"Got shape {L.shape}."
            )
        method = self._ddf_method(ddf)
        beta = self.fixef.to_numpy()
        if method is None:
            if L.shape[0] == 1:
                estimate = float(L[0] @ beta)
                se = float(np.sqrt(L[0] @ self.vcov.to_numpy() @ L[0]))
                z = estimate / se
                return pd.DataFrame(
                    {
                        "estimate": [estimate],
                        "se": [se],
                        "z": [z],
                        "p_value": [2.0 * stats.norm.sf(abs(z))],
                    }
                )
            chisq, q = self._wald_chisq(L)
            return pd.DataFrame({"Chisq": [chisq], "Df": [q], "p_value": [stats.chi2.sf(chisq, q)]})
        if L.shape[0] == 1:
            vcov = getattr(method, "vcov_adjusted", method.vcov)
            estimate = float(L[0] @ beta)
            se = float(np.sqrt(L[0] @ vcov @ L[0]))
            df = method.df(L[0])
            t = estimate / se
            return pd.DataFrame(
                {
                    "estimate": [estimate],
                    "se": [se],
                    "t": [t],
                    "df": [df],
                    "p_value": [2.0 * stats.t.sf(abs(t), df)],
                }
            )
        F, q, df = method.f_test(L, beta)
        return pd.DataFrame(
            {"F": [F], "num_df": [q], "den_df": [df], "p_value": [stats.f.sf(F, q, df)]}
        )

    def anova(self, type: AnovaType = 3, ddf: str | None = None) -> pd.DataFrame:
        """F tests per fixed-effect term, as lmerTest's ``anova(m, type = type)``; for
        glmer fits Wald χ² tests, as car's ``Anova(m, type = type)``.

        Each term's hypothesis ``L β = 0`` is tested with :meth:`contrast`'s F test
        (lmerTest's ``contestMD``); ``L`` comes from :mod:`.hypotheses`.  Type III
        hypotheses are lmerTest's (SAS's): for a term contained in another (``A`` beside
        ``A:B``) they average over the other factor's levels with equal weights, so they
        do not depend on the contrasts or on the cell counts.

        Parameters
        ----------
        type : {1, 2, 3}
            Sequential (I), adjusted for every term not containing the term (II), or
            marginal with contrast-invariant hypotheses (III, the default, as lmerTest).
        ddf : {"satterthwaite", "kenward-roger", "normal"}, optional
            By default ``"satterthwaite"`` for lmer fits and ``"normal"`` (asymptotic
            Wald χ², no denominator df) for glmer fits.

        Returns
        -------
        DataFrame indexed by term with ``num_df, den_df, F, p_value``; with
        ``ddf="normal"`` ``Df, Chisq, p_value`` (``attrs["test"]`` says which).

        Examples
        --------
        >>> import mixedmodels as mm
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
        >>> list(m.anova().index)
        ['occasion']
        """
        from .hypotheses import term_hypotheses

        hypotheses = term_hypotheses(self, type)
        method = self._ddf_method(ddf)
        beta = self.fixef.to_numpy()
        rows = []
        if method is None:
            for term, L in hypotheses.items():
                chisq, q = self._wald_chisq(L)
                rows.append((term, q, chisq, stats.chi2.sf(chisq, q)))
            table = pd.DataFrame(rows, columns=["term", "Df", "Chisq", "p_value"])
            table.attrs["test"] = "Wald chi-square (asymptotic)"
            return table.set_index("term")
        for term, L in hypotheses.items():
            F, q, df = method.f_test(L, beta)
            rows.append((term, q, df, F, stats.f.sf(F, q, df)))
        table = pd.DataFrame(rows, columns=["term", "num_df", "den_df", "F", "p_value"])
        kind = "Kenward-Roger" if ddf == "kenward-roger" else "Satterthwaite"
        table.attrs["test"] = f"F ({kind})"
        return table.set_index("term")

    def bootstrap(
        self,
        nsim: int,
        seed: int | None = None,
        func: Callable[[Any], Any] | None = None,
        n_jobs: int | None = None,
        progress: bool | None = None,
    ):
        """Parametric bootstrap (lme4's ``bootMer`` with ``use.u = FALSE``).

        Simulates new random effects and residuals from the fit, refits each draw
        warm-started from θ̂ on the same design (only the response's cross-products are
        recomputed), and collects the variance parameters (SD/correlation scale, lme4
        names), σ, the fixed effects and ``func(refitted_model)``.

        Parameters
        ----------
        nsim : int
            Number of replicates.
        seed : int, optional
            Replicate i uses ``SeedSequence(seed).spawn(nsim)[i]``: the same seed gives the
            same replicates whatever ``n_jobs``.
        func : callable, optional
            Extra statistic(s) of each refitted model (a number, array or Series).  With
            ``n_jobs > 1`` on platforms without ``fork`` it must be picklable.
        n_jobs : int, optional
            Worker processes (``-1``: all cores); 1 by default.
        progress : bool, optional
            A progress bar over the refits; by default shown in a terminal or a notebook
            only (not in logs, pipes or tests).

        Returns
        -------
        BootstrapResult
            ``replicates`` (DataFrame), ``estimates``, ``n_failed``; ``.confint(level,
            type)`` for intervals.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
        >>> boot = m.bootstrap(20, seed=1, progress=False)
        >>> boot.replicates.shape
        (20, 4)
        >>> boot.n_failed
        0
        """
        from .bootstrap import bootstrap

        with blas_threads_for(self.crossprods):
            return bootstrap(self, nsim, seed=seed, func=func, n_jobs=n_jobs, progress=progress)
