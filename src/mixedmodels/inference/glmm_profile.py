"""Likelihood profiles of glmer fits, as lme4's ``profile`` for ``glmerMod``.

lme4 profiles a GLMM on the criterion it was fitted with (Laplace, or adaptive
Gauss-Hermite for ``nAGQ > 1``), every parameter alike: the random-effect SDs and
correlations (σ = 1, so no σ row for binomial and Poisson fits) and the fixed effects.
Each point holds one parameter at a value and minimizes the deviance over all the
others, θ and β together, warm-started from the neighbouring point of the trace; the
grid, the splines and the intervals are those of :class:`.profile.Profiler`.  A fixed
effect held at β_j is the model with ``x_j β_j`` in the offset and column j out of X;
here it is simply a coordinate of (θ, β) the optimizer does not move, the same deviance
without building a new problem.

The first step from the estimate is 1% of it (0.001 from 0), as lme4 does for every
parameter of a GLMM, so the grids, and with them the spline interpolation, follow
lme4's.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from ..errors import MixedModelsError
from ..lmm.optimize import REFIT_CONTROL, minimize
from ._params import VarianceLayout, theta_to_sdcor
from .profile import Profiler

if TYPE_CHECKING:  # pragma: no cover
    from .._protocols import GeneralizedMixedModel as GeneralizedLinearMixedModel

#: BOBYQA's absolute tolerance on the deviance (and the parameters) of each refit.  An
#: error of 1e-7 in the deviance moves ζ by 3e-8 at |ζ| = 2, far below the 1e-5 lme4's
#: Nelder-Mead allows itself; it takes 15% fewer evaluations than 1e-8, and the
#: intervals still match lme4's adaptive Gauss-Hermite ones (free of its Laplace error)
#: to 2e-6 relative (1e-6: 25% fewer, 2.4e-6).
REFIT_TOLERANCE = 1e-7


class GlmmProfiler(Profiler):
    """Profiles of every parameter of a glmer fit on its Laplace (or AGQ) deviance.

    The fit's :class:`~mixedmodels.glmm.pirls.GlmmProblem` is copied (``with_response`` on
    the same response), so profiling leaves the fitted model's PIRLS warm starts alone.
    """

    def __init__(
        self, model: GeneralizedLinearMixedModel, alphamax: float = 0.01, maxpts: int = 100
    ):
        if not model.family.scale_free:
            raise MixedModelsError(
                f"Profiles of {model.family.r_name} glmer fits are not implemented: their "
                "dispersion is estimated (lme4 refuses them too). Use "
                "confint(method='wald') or confint(method='boot')."
            )
        cp = model.crossprods
        self.cp = cp
        layout = VarianceLayout.of(cp)
        nvp = len(layout.names) - 1  # the dispersion is fixed: no sigma
        self.nvp = nvp
        # a private copy of the problem (same response), so its PIRLS warm starts are ours
        self.objective = model.objective.with_response(model.problem.y)
        theta = model.theta
        beta = model.fixef.to_numpy()
        p = beta.size
        if model.full_opt_summary.final.size != theta.size + p:
            raise MixedModelsError(
                "Profiles of glmer fits follow the Laplace (or adaptive Gauss-Hermite) "
                "deviance, but this fit stopped after its first stage (nagq=0), whose "
                "estimates are not that deviance's optimum. Refit with nagq=1 to profile it."
            )
        opt = np.concatenate([theta_to_sdcor(cp, theta, 1.0)[:nvp], beta])
        base = self.deviance(opt)
        if not abs(base - model.deviance) <= 1e-5 * max(1.0, abs(model.deviance)):
            raise MixedModelsError(
                "The deviance recomputed at the estimates differs from the fit's "
                f"({base:.6f} vs {model.deviance:.6f}); the profile would not start at the "
                "optimum. Refit the model."
            )
        super().__init__(
            names=list(layout.names[:nvp]) + list(model.design.fixed_names),
            nvp=nvp,
            opt=opt,
            lower=np.concatenate([layout.lower[:nvp], np.full(p, -np.inf)]),
            upper=np.concatenate([layout.upper[:nvp], np.full(p, np.inf)]),
            base=base,
            alphamax=alphamax,
            maxpts=maxpts,
        )
        # first BOBYQA steps: a tenth of each SD (at least 0.02), 0.05 on correlations,
        # a fifth of a standard error on fixed effects, the scale on which neighbouring
        # points of a trace differ
        se = np.sqrt(np.diag(model.vcov.to_numpy()))
        sd_step = np.where(layout.is_sd[:nvp], np.maximum(0.1 * opt[:nvp], 0.02), 0.05)
        self.step = np.concatenate([sd_step, 0.2 * se])

    def deviance(self, pars: np.ndarray) -> float:
        """The fit's deviance at (SDs/correlations, β): its objective's."""
        return self.objective.deviance_sdcor(pars)

    def first_value(self, index: int) -> float:
        estimate = self.opt[index]
        return 0.001 if estimate == 0 else estimate * 1.01

    def start_for(self, index: int, value: float, prev: np.ndarray, last: np.ndarray) -> np.ndarray:
        """The last point's parameters moved along the line through the last two points:
        fewer deviance evaluations than lme4's start at the last point (a quarter fewer on
        grouseticks, 5% on cbpp)."""
        span = last[1 + index] - prev[1 + index]
        if span == 0 or not np.all(np.isfinite(prev)):
            return last
        start = last + (value - last[1 + index]) / span * (last - prev)
        start[1:] = np.clip(start[1:], self.lower, self.upper)
        return start

    def refit(self, index: int, value: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        free = np.array([i for i in range(self.nptot) if i != index], dtype=int)
        pars = start[1:].copy()
        pars[index] = value

        def f(x: np.ndarray) -> float:
            pars[free] = x
            return self.deviance(pars)

        if free.size == 0:  # a single parameter: nothing to re-optimize
            return self.deviance(pars), pars
        lower, upper = self.lower[free], self.upper[free]
        control = dataclasses.replace(
            REFIT_CONTROL, ftol_abs=REFIT_TOLERANCE, xtol_abs=REFIT_TOLERANCE
        )
        try:
            opt = minimize(f, start[1 + free], lower, control, self.step[free], upper)
        except FloatingPointError:  # an extrapolated start PIRLS cannot handle: the estimates
            opt = minimize(f, self.opt[free], lower, control, self.step[free], upper)
        pars[free] = opt.final
        return opt.objective, pars
