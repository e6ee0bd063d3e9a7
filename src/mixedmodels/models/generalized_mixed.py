"""Fitted generalized linear mixed models (:func:`mixedmodels.glmer`)."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._protocols import GeneralizedMixedModel
from ..errors import check_choice
from ..frontend.design_types import Design
from ..glmm.families import Family, working_residual
from ..glmm.pirls import GlmmProblem
from ..lmm.deviance import Solution
from ..lmm.optimize import OptSummary
from .linear_mixed import LinearMixedModel
from .objective import GlmmObjective, refuse

PredictType = Literal["link", "response"]
ResidualType = Literal["deviance", "pearson", "response", "working"]


class GeneralizedLinearMixedModel(LinearMixedModel, GeneralizedMixedModel):
    """A fitted GLMM: the tables of :class:`LinearMixedModel` on the GLMM's scale.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> data = mm.datasets.speed_dating(seed=1, n_raters=60, dates_per_rater=10)
    >>> g = mm.glmer("decision ~ attractive_sc + (1 | iid)", data, family="binomial")
    >>> list(g.fixed_effects().columns)
    ['term', 'value', 'se', 'z', 'p_value', 'lower_2.5', 'upper_97.5']
    """

    def __init__(
        self,
        design: Design,
        problem: GlmmProblem,
        opt: OptSummary,
        full_opt: OptSummary,
        solution: Solution,
        converged: bool,
        vcov_source: str,
    ):
        super().__init__(design, problem.template, opt, reml=False, converged=converged)
        self.problem = problem
        self.full_opt_summary = full_opt
        self.family: Family = problem.family
        self.nagq = problem.nagq
        self.vcov_source = vcov_source
        self.success_level: str | None = None  # set by glmer for a two-level factor response
        self.__dict__["_solution"] = solution

    @cached_property
    def objective(self) -> GlmmObjective:  # type: ignore[override]
        """The fit's own Laplace/AGQ deviance in (θ, β) (:class:`~mixedmodels.models.objective.
        GlmmObjective`), on a copy of its problem."""
        return GlmmObjective(self)

    # -- scale and counts ----------------------------------------------------------------
    @property
    def sigma(self) -> float:
        """The residual scale: 1 for binomial, poisson and negative binomial; for Gamma and
        inverse Gaussian lme4's ``sigma``, ``sqrt(pwrss / n)`` with pwrss the Pearson χ²
        (the weighted residual sum of squares of PIRLS) plus ‖û‖², so that σ² estimates
        the dispersion (1/shape for Gamma)."""
        if self.family.scale_free:
            return 1.0
        return float(np.sqrt(self._solution.pwrss / self.nobs))

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of β̂, as lme4's ``vcov``: the β block of the inverse of half
        the Hessian of the deviance in (θ, β), not scaled by σ² (for every family);
        without that Hessian (``control={"calc_derivs": False}``), σ² (RXᵀRX)⁻¹ from the
        weighted PLS system at the optimum (lme4's ``use.hessian = FALSE``)."""
        names = list(self.design.fixed_names)
        scale = self.sigma**2 if self.vcov_source == "pirls" else 1.0
        return pd.DataFrame(scale * self._solution.vcov_unscaled, index=names, columns=names)

    @property
    def npar(self) -> int:
        """Number of estimated parameters: β, θ, and a dispersion (Gamma, inverse Gaussian)
        or the negative binomial's shape where the family has one, as lme4 counts them."""
        # a dispersion (Gamma, inverse Gaussian) or the negative binomial's shape counts
        extra = 0 if self.family.scale_free and not self.family.estimated_shape else 1
        return len(self.design.fixed_names) + self.crossprods.n_theta + extra

    @property
    def linear_predictor(self) -> np.ndarray:
        """The linear predictor η = Xβ̂ + Zb̂ (+ offset) of the fitted rows."""
        return self.predict(type="link")

    # -- tables ----------------------------------------------------------------------------
    def varcorr(self) -> pd.DataFrame:
        """As lme4's ``as.data.frame(VarCorr(m))``: no residual row for binomial/poisson;
        for Gamma and inverse Gaussian a ``Residual`` row with σ, and random-effect SDs
        that are the relative ones (θ) times σ, as lme4 reports them."""
        table = super().varcorr()
        if self.family.scale_free:
            table = table[table["group"] != "Residual"].reset_index(drop=True)
        return table

    def variance_components(self) -> pd.DataFrame:
        """As :meth:`LinearMixedModel.variance_components`, without a residual row for the
        families that have no dispersion (binomial, poisson): the proportions are then of
        the random-effect variances alone."""
        table = super().variance_components()
        if self.family.scale_free:
            table = table[table["group"] != "Residual"].reset_index(drop=True)
            table["var_prop"] = table["variance"] / table["variance"].sum()
        return table

    def fixed_effects(self, ddf: str = "normal") -> pd.DataFrame:
        """Fixed effects with Wald statistics and normal p-values, as mixedup for glmer fits.

        The statistic column is ``z`` for binomial, poisson and negative binomial fits and
        ``t`` for Gamma and inverse Gaussian, as lme4 heads it (``t value``) when a scale
        is estimated; either way the p-value is lme4's ``Pr(>|z|)``, from the normal.
        """
        if ddf != "normal":
            raise refuse(
                self.objective.kind,
                f"ddf={ddf!r}",
                "ddf='normal'",
                "denominator degrees of freedom are defined for linear mixed models; "
                "glmer's tests are Wald z tests, as lme4's",
            )
        table = super().fixed_effects(ddf)
        return table.rename(columns={"t": "z"}) if self.family.scale_free else table

    # -- prediction ------------------------------------------------------------------------
    def predict(
        self,
        newdata: Any = None,
        re_form: Any = None,
        type: PredictType = "link",
        allow_new_levels: bool = False,
    ) -> np.ndarray | pd.Series:
        """Predictions on the link scale (default, as lme4) or the response scale.

        Parameters
        ----------
        newdata, re_form, allow_new_levels
            As :meth:`LinearMixedModel.predict` (the offset is applied to new rows).
        type : {"link", "response"}
        """
        check_choice("type", type, ("link", "response"))
        eta = super().predict(newdata=newdata, re_form=re_form, allow_new_levels=allow_new_levels)
        if type == "link":
            return eta
        if isinstance(eta, pd.Series):
            return pd.Series(
                self.family.link.inverse(eta.to_numpy()), index=eta.index, name=eta.name
            )
        return self.family.link.inverse(eta)

    def fitted(self) -> np.ndarray:
        """Fitted means on the response scale (lme4's ``fitted``)."""
        return self.predict(type="response")

    def residuals(self, type: ResidualType = "deviance") -> np.ndarray:
        """Residuals: ``deviance`` (default, as lme4), ``pearson``, ``response`` or ``working``."""
        check_choice("type", type, ("deviance", "pearson", "response", "working"))
        y, wt = self.design.y, self.problem.prior_weights
        eta = self._predict_rows(None, None)
        mu = self.family.link.inverse(eta)
        if type == "response":
            out = y - mu
        elif type == "pearson":
            out = (y - mu) * np.sqrt(wt / self.family.variance(mu))
        elif type == "working":
            out = working_residual(y, mu, self.family.link.mu_eta(eta))
        else:
            dev = self.family.deviance_residuals(y, mu, wt)
            out = np.sign(y - mu) * np.sqrt(np.maximum(dev, 0.0))
        return self.design.pad(out)

    def overdispersion(self) -> pd.Series:
        """Pearson χ² over residual degrees of freedom (≈1 when the variance is right)."""
        from scipy import stats

        pearson = self.residuals("pearson")
        pearson = pearson[np.isfinite(pearson)]  # na_action="exclude" pads with NaN
        chisq = float(np.sum(pearson**2))
        df = self.nobs - self.npar
        return pd.Series(
            {"chisq": chisq, "df": df, "ratio": chisq / df, "p_value": stats.chi2.sf(chisq, df)}
        )

    def simulate(self, nsim: int = 1, seed: int | None = None, re_form: Any = "~0") -> np.ndarray:
        """Responses simulated from the fitted model with new random effects (lme4's
        ``simulate(use.u = FALSE)``); shape (n, nsim) as R's, on the response's scale
        (proportions for binomial with trials).

        ``re_form`` names the random-effects terms kept at their conditional modes, as
        :func:`mixedmodels.toolbox.simulate.simulate`: ``"~0"`` (default, lme4's ``re.form = NA``)
        draws them all, ``None`` keeps them all.

        As lme4, the random effects are drawn as Λu with u standard normal.  Gamma
        responses have shape wt/σ² (mean μ, variance σ²μ²/wt) and inverse Gaussian ones
        shape parameter λ = wt/σ² (variance σ²μ³/wt): σ² is the dispersion.  lme4 1.1-31
        passes σ as the Gamma shape and wt/σ as λ, a bug its issue #782 reports (fixed
        in later lme4 by shape 1/σ²); these draws follow the fixed convention.
        """
        rng = np.random.default_rng(seed)
        fixed = self.design.X @ self.fixef.to_numpy() + self.problem.offset
        kept = self._selected_terms(re_form) if re_form is not None else None
        if kept is None:
            kept = list(range(len(self.crossprods.terms)))
        fixed = fixed + self._random_part(None, kept)
        out = np.empty((nsim, self.nobs))
        wt = self.problem.prior_weights
        for s in range(nsim):
            u = [
                np.zeros((t.n_levels, t.n_columns))
                if index in kept
                else rng.standard_normal((t.n_levels, t.n_columns))
                for index, t in enumerate(self.crossprods.terms)
            ]
            mu = self.family.link.inverse(fixed + self.problem.random_part(self.theta, u))
            out[s] = self.family.draw(rng, mu, wt, self.sigma)
        return out.T

    # -- display ---------------------------------------------------------------------------
    def summary(self) -> str:
        """lme4's ``summary()`` of a glmer fit as text: family and link, the Laplace or AGQ
        criterion, random effects, and the fixed effects with z (or t) statistics."""
        from ._summary import glmm_summary

        return glmm_summary(self)
