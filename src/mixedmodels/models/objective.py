"""The fitted model's own objective: one object per model kind that every tool goes through.

lme4 hands its tools the fit's ``devfun`` and ``refit``; MixedModels.jl its
``objective!`` and ``refit!``.  Here ``model.objective`` is that object, with a small
protocol that profile, Wald, bootstrap, Satterthwaite, Kenward-Roger and the
likelihood-ratio tests use instead of rebuilding a deviance from cross-products, so a
model kind their author did not think of gets its own criterion, never the plain LMM's:

``objective(x)``
    The fit's criterion (REML or ML deviance, Laplace or adaptive Gauss-Hermite) at the
    optimizer's parameters ``x`` (:attr:`~LmmObjective.start` is the estimate,
    :attr:`~LmmObjective.lower`/:attr:`~LmmObjective.upper` the bounds).
``objective.parameters()``
    The parameters on lme4's SD/correlation scale: names, estimates and bounds
    (:class:`Parameters`); ``to_sdcor``/``from_sdcor`` map each covariance structure's
    own θ there and back.
``objective.refit(hold, start)``
    The minimum of the ML deviance with some parameters (named on that scale) held at
    given values and the others re-optimized: a point of a likelihood profile.
``objective.with_response(y)``
    The same model and design with a new response (parametric bootstrap).
``objective.ml()``
    The ML objective of a REML fit (likelihood-ratio tests, profiles).
``objective.simulate(nsim, rng)``
    Responses drawn from the fitted model, new random effects and residuals with the
    model's residual variance function and correlation structure.

Kinds: :class:`LmmObjective` (lmer fits, any covariance structure of the terms, with or
without a residual structure, which it whitens) and :class:`GlmmObjective` (glmer and
glmer_nb fits, Laplace or AGQ).  A tool a kind cannot support calls :func:`refuse`, the
one place the refusal message is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.linalg as sla

from ..errors import refuse
from ..lmm.covariance import CovarianceStructure
from ..lmm.crossprods import CrossProducts
from ..lmm.deviance import Solution, deviance, factorize, factorize_profiled, objective, solve
from ..lmm.optimize import REFIT_CONTROL, Control, OptSummary, minimize, relative_step
from ..residual.whitened import WhitenedDeviance

if TYPE_CHECKING:  # pragma: no cover
    from .._protocols import GeneralizedMixedModel as GeneralizedLinearMixedModel
    from ..frontend.design_types import Design
    from ..residual.structures import ResidualStructure

#: σ² below this fraction of y'y (whitened) is where the SD/correlation-scale ML deviance
#: is no longer computed: θ = SD/σ grows without bound and the penalized residual sum of
#: squares r², a difference of terms of size y'y, carries an absolute error of about
#: ε·y'y, so r²/σ² errs by ε/1e-10 ≈ 2e-6 at the floor and by O(1) a few decades below
#: (a model with one random effect per observation reached a spurious deviance 100 below
#: its minimum at σ = 1e-7).  Profiles of σ stop there (see ``LmmProfiler``).
_SIGMA_FLOOR = 1e-10

_FAILURES = (np.linalg.LinAlgError, sla.LinAlgError, FloatingPointError, ValueError)


@dataclasses.dataclass(frozen=True)
class Parameters:
    """Parameters on lme4's SD/correlation scale (``confint(oldNames = FALSE)`` names).

    Attributes
    ----------
    names : tuple of str
        Variance parameters (SDs, correlations, then σ when the model has a scale), then
        the fixed effects.
    estimate, lower, upper : ndarray
        Estimates (of the ML fit for a REML LMM, as lme4's profiles) and bounds.
    n_variance : int
        How many of ``names`` are variance parameters.
    is_sd : ndarray
        Which variance parameters are SDs (the others are correlations).
    """

    names: tuple[str, ...]
    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n_variance: int
    is_sd: np.ndarray

    def index(self, name: str) -> int:
        return self.names.index(name)


# --------------------------------------------------------------------------------------
# linear mixed models
# --------------------------------------------------------------------------------------


def _drop_fixed_column(cp: CrossProducts, j: int, value: float) -> CrossProducts:
    """Cross-products of the model with β_j fixed at ``value``: x_j·value moves into the
    offset and column j leaves X.  The [X y] blocks are a linear map of the full ones."""
    p = cp.p
    keep = [c for c in range(p) if c != j]
    T = np.zeros((p + 1, p))
    T[keep, np.arange(p - 1)] = 1.0
    T[p, p - 1] = 1.0
    T[j, p - 1] = -value
    return dataclasses.replace(cp, p=p - 1, C1=cp.C1 @ T, C2=cp.C2 @ T, XyXy=T.T @ cp.XyXy @ T)


def _beta_sigma(cp: CrossProducts, theta: np.ndarray, reml: bool) -> tuple[np.ndarray, float]:
    fac = factorize(cp, theta)
    p = cp.p
    L33 = fac.L33
    beta = sla.solve_triangular(L33[:p, :p].T, L33[p, :p], lower=False) if p else np.zeros(0)
    return beta, float(abs(L33[p, p]) / np.sqrt(cp.n - p if reml else cp.n))


#: the refits of a model with a Toeplitz term (refit on partial autocorrelations) are
#: restarted from their end, with a fresh trust region, while a restart gains more than
#: this: in those curved coordinates BOBYQA stalls (a toep fit on the edge of the
#: positive-definite set: a refit 1.2e-4 above the minimum, and its restarts went down
#: to it); the other models' refits do not, and keep one search
_RESTART_GAIN = 1e-6
_MAX_RESTARTS = 3


def _settled_minimum(
    f: Callable[[np.ndarray], float],
    z0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    restarts: int,
) -> OptSummary:
    """The refit of a profile point by BOBYQA, restarted from where it stopped (at most
    ``restarts`` times) while a restart gains more than :data:`_RESTART_GAIN`."""
    opt = minimize(f, z0, lower, REFIT_CONTROL, relative_step(z0, lower, upper), upper)
    for _ in range(restarts):
        x = opt.final
        again = minimize(f, x, lower, REFIT_CONTROL, relative_step(x, lower, upper), upper)
        again.evaluations += opt.evaluations
        gain = opt.objective - again.objective
        if gain <= 0:
            opt.evaluations = again.evaluations
            break
        opt = again
        if gain < _RESTART_GAIN:
            break
    return opt


@dataclasses.dataclass
class LmmObjective:
    """The (RE)ML deviance of an lmer fit as a function of ``x = [θ, residual parameters]``.

    θ is each term's own parametrization (lme4's Cholesky factor, glmmTMB's ``diag``,
    ``cs``, ``ar1``, ``toep``); the residual parameters, on their unconstrained scale,
    are those of a variance function and/or correlation structure (``lmer(variance=,
    correlation=)``), for which each evaluation whitens ``[y X Z]`` by ``R^(−1/2)`` and
    adds ``log|R|`` (:class:`~mixedmodels.residual.whitened.WhitenedDeviance`).  Without a
    residual structure the data's cross-products are used as they are.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> f = m.objective
    >>> bool(abs(f(f.start) - m.deviance) < 1e-8)
    True
    >>> f.parameters().names[:2]
    ('sd_(Intercept)|student', 'sigma')
    """

    design: Design
    crossprods: CrossProducts  # of the data as observed
    reml: bool
    start: np.ndarray  # the fit's x
    residual: ResidualStructure | None = None
    refitted: Callable[[LmmObjective, OptSummary], Any] | None = None  # a model of this kind
    _whitened: Any = dataclasses.field(default=None, init=False, repr=False)
    _ml_start: np.ndarray | None = dataclasses.field(default=None, init=False, repr=False)
    _parameters: Parameters | None = dataclasses.field(default=None, init=False, repr=False)
    _simulation: tuple | None = dataclasses.field(default=None, init=False, repr=False)
    _held: tuple | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.start = np.asarray(self.start, dtype=float).copy()
        if self.residual is not None:
            self._whitened = WhitenedDeviance(
                self.design, self.residual, self.reml, self.crossprods.n_theta
            )

    # -- what the model is --------------------------------------------------------------
    @property
    def kind(self) -> str:
        if self.residual is not None:
            return "lmer fit with a residual structure (variance=/correlation=)"
        if any(t.structure != "us" for t in self.crossprods.terms):
            return "lmer fit with structured covariance terms (diag/cs/ar1/toep)"
        return "lmer fit"

    @property
    def criterion(self) -> str:
        return "REML" if self.reml else "ML"

    @property
    def n_theta(self) -> int:
        return self.crossprods.n_theta

    @property
    def n_residual(self) -> int:
        return 0 if self.residual is None else self.residual.n_params

    @property
    def lower(self) -> np.ndarray:
        residual = np.zeros(0) if self.residual is None else self.residual.lower_bounds()
        return np.concatenate([self.crossprods.lower_bounds(), residual])

    @property
    def upper(self) -> np.ndarray:
        return np.full(self.start.size, np.inf)

    # -- evaluation ---------------------------------------------------------------------
    def crossprods_at(self, residual_params: np.ndarray) -> tuple[CrossProducts, float]:
        """Cross-products of the (whitened) data and ``log|R|`` at the residual parameters."""
        if self._whitened is None:
            return self.crossprods, 0.0
        return self._whitened.crossprods(np.asarray(residual_params, dtype=float))

    def _split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=float)
        return x[: self.n_theta], x[self.n_theta :]

    def deviance(self, x: np.ndarray, reml: bool | None = None, held: tuple | None = None) -> float:
        """The deviance at ``x`` (``reml`` defaults to the fit's; ``held = (j, value)``
        holds fixed effect j at value)."""
        reml = self.reml if reml is None else reml
        theta, r = self._split(x)
        try:
            cp, logdet = self.crossprods_at(r)
            if not np.isfinite(logdet):
                return float("inf")
            if held is None:
                return deviance(cp, theta, reml) + logdet
            cp = self._held_crossprods(cp, held)
            return float(objective(cp, factorize_profiled(cp, theta), reml) + logdet)
        except _FAILURES:
            return float("inf")

    def _held_crossprods(self, cp: CrossProducts, held: tuple) -> CrossProducts:
        """:func:`_drop_fixed_column` of ``cp``, kept while a profile refit evaluates at
        one held value: a new CrossProducts per evaluation would also rebuild the
        single-term kernel it caches (the refits of fixed effects took 3.5x longer)."""
        cached = self._held
        if cached is None or cached[0] is not cp or cached[1] != held:
            cached = self._held = (cp, held, _drop_fixed_column(cp, *held))
        return cached[2]

    def __call__(self, x: np.ndarray) -> float:
        return self.deviance(x)

    def beta_sigma(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """β̂ and σ̂ (of the fit's criterion) at ``x``."""
        theta, r = self._split(x)
        cp, _ = self.crossprods_at(r)
        return _beta_sigma(cp, theta, self.reml)

    def solution(self, x: np.ndarray | None = None, reml: bool | None = None) -> Solution:
        """β, σ and the conditional modes at ``x`` (the estimate by default)."""
        theta, r = self._split(self.start if x is None else x)
        cp, _ = self.crossprods_at(r)
        return solve(cp, theta, self.reml if reml is None else reml)

    # -- derived objectives -------------------------------------------------------------
    def ml(self) -> LmmObjective:
        """The ML objective of the same model (itself for an ML fit), started at this
        fit's estimate; :meth:`fit` finds its optimum."""
        if not self.reml:
            return self
        out = dataclasses.replace(self, reml=False)
        return out

    def with_response(self, y: np.ndarray) -> LmmObjective:
        """The same model and design with response ``y``, started at this estimate."""
        y = np.asarray(y, dtype=float)
        design = dataclasses.replace(self.design, y=y)
        if self.residual is None:
            cp = self.crossprods.with_response(y, design.X, design.weights, design.offset)
        else:
            cp = self.crossprods  # the unwhitened blocks are not used for a new response
        return dataclasses.replace(self, design=design, crossprods=cp)

    def fit(self, start: np.ndarray | None = None, control: Control | None = None) -> OptSummary:
        """Minimize this objective from ``start`` (the estimate by default); the refits
        of profiles and bootstraps use :data:`~mixedmodels.lmm.optimize.REFIT_CONTROL` with a
        first step scaled to the start."""
        x0 = self.start if start is None else np.asarray(start, dtype=float)
        lower, upper = self.lower, self.upper
        if control is None:
            control = dataclasses.replace(REFIT_CONTROL, ftol_abs=1e-10, xtol_abs=1e-10)
        func: Callable[[np.ndarray], float] = self
        if self.residual is None:  # x is θ: the bootstrap's inner loop, without the wrapper
            cp, reml = self.crossprods, self.reml

            def func(x: np.ndarray) -> float:
                try:
                    return deviance(cp, x, reml)
                except _FAILURES:
                    return float("inf")

        return minimize(func, x0, lower, control, relative_step(x0, lower, upper), upper)

    def refitted_model(self, opt: OptSummary) -> Any:
        """A fitted model of the same kind at the optimum ``opt`` of this objective."""
        if self.refitted is None:  # pragma: no cover - every model sets it
            raise refuse(self.kind, "refitting", "mm.lmer")
        return self.refitted(self, opt)

    # -- the SD/correlation scale -------------------------------------------------------
    def to_sdcor(self, x: np.ndarray, sigma: float | None = None) -> np.ndarray:
        """SDs/correlations of the terms and σ at ``x`` (σ of this objective's criterion
        unless given)."""
        from ..inference._params import theta_to_sdcor

        theta, r = self._split(x)
        if sigma is None:
            cp, _ = self.crossprods_at(r)
            sigma = _beta_sigma(cp, theta, self.reml)[1]
        return theta_to_sdcor(self.crossprods, theta, sigma)

    def from_sdcor(self, pars: np.ndarray) -> np.ndarray:
        """θ from SDs/correlations and σ (the residual parameters are not part of it)."""
        from ..inference._params import sdcor_to_theta

        return sdcor_to_theta(self.crossprods, np.asarray(pars, dtype=float))

    def _ml_estimate(self) -> np.ndarray:
        if self._ml_start is None:
            self._ml_start = self.ml().fit().final if self.reml else self.start
        return self._ml_start

    def parameters(self) -> Parameters:
        """Names, ML estimates and bounds on the SD/correlation scale, then β (the
        residual structure's parameters are nuisance parameters, not listed)."""
        from ..inference._params import VarianceLayout

        if self._parameters is not None:
            return self._parameters
        layout = VarianceLayout.of(self.crossprods)
        x = self._ml_estimate()
        theta, r = self._split(x)
        cp, _ = self.crossprods_at(r)
        beta, sigma = _beta_sigma(cp, theta, False)
        p = beta.size
        lower = layout.lower.copy()
        lower[-1] = min(sigma, np.sqrt(_SIGMA_FLOOR * cp.XyXy[p, p]))  # σ: see _SIGMA_FLOOR
        self._parameters = Parameters(
            names=tuple(layout.names) + tuple(self.design.fixed_names),
            estimate=np.concatenate([self.to_sdcor(x, sigma), beta]),
            lower=np.concatenate([lower, np.full(p, -np.inf)]),
            upper=np.concatenate([layout.upper, np.full(p, np.inf)]),
            n_variance=len(layout.names),
            is_sd=layout.is_sd,
        )
        return self._parameters

    def ml_deviance_sdcor(
        self, pars: np.ndarray, residual_params: np.ndarray | None = None, with_beta: bool = False
    ) -> tuple[float, np.ndarray]:
        """ML deviance at (SDs/correlations, σ) and residual parameters, β profiled out
        (lme4's ``devfun2``); β itself only when ``with_beta``."""
        p = self.crossprods.p
        sigma = pars[-1]
        nan_beta = np.full(p, np.nan)
        if not sigma > 0:
            return float("inf"), nan_beta
        r = self._ml_estimate()[self.n_theta :] if residual_params is None else residual_params
        try:
            cp, logdet = self.crossprods_at(r)
            theta = self.from_sdcor(pars)
            # ±inf is a correlation on its bound (ar1's ρ = 1): valid, T is singular there
            if np.any(np.isnan(theta)) or not np.isfinite(logdet):
                return float("inf"), nan_beta
            fac = factorize_profiled(cp, theta)
        except _FAILURES:
            return float("inf"), nan_beta
        r2 = fac.L33[p, p] ** 2
        s2 = sigma * sigma
        if s2 < 0.999 * _SIGMA_FLOOR * cp.XyXy[p, p]:  # r²/σ² is rounding error there
            return float("inf"), nan_beta
        value = fac.logdet_z + r2 / s2 + cp.n * np.log(2.0 * np.pi * s2) - cp.sum_log_weights
        value += logdet
        if not with_beta:
            return float(value), np.zeros(0)
        beta = sla.solve_triangular(fac.L33[:p, :p].T, fac.L33[p, :p], lower=False) if p else []
        return float(value), np.asarray(beta)

    def refit(
        self, hold: dict[str, float], start: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """Minimum ML deviance with one parameter (named as :meth:`parameters`) held at
        a value, the others re-optimized; returns it and every parameter at that minimum
        on the SD/correlation scale.  A variance parameter is held on that scale (β
        profiled out); a fixed effect by moving ``x_j β_j`` into the offset (the other
        parameters restart from the ML estimate, as lme4).  The residual structure's
        parameters are re-optimized in both cases.
        """
        params = self.parameters()
        ((name, value),) = hold.items()
        index = params.index(name)
        nvp = params.n_variance
        ml_x = self._ml_estimate()
        if index < nvp:
            return self._refit_variance(params, index, value, start, ml_x)
        return self._refit_fixed(index - nvp, value, ml_x)

    def _refit_variance(self, params, w, value, start, ml_x):
        """The others optimized in each structure's refit coordinates, where its set is a
        box (a Toeplitz term's partial autocorrelations: the box of its correlations is
        not positive definite), so a fit on that set's edge can be profiled."""
        from ..inference._params import refit_to_sdcor, sdcor_to_refit

        nvp = params.n_variance
        others = np.array([i for i in range(nvp) if i != w])
        nr = self.n_residual
        cp = self.crossprods
        r0 = ml_x[self.n_theta :]
        start = params.estimate[:nvp] if start is None else np.asarray(start)[:nvp]
        coords = sdcor_to_refit(cp, start, w, value)

        def sdcor(z: np.ndarray) -> np.ndarray:
            coords[others] = z[: others.size]
            return refit_to_sdcor(cp, coords, w, value)

        def f(z: np.ndarray) -> float:
            pars = sdcor(z)
            if np.any(np.isnan(pars)):
                return float("inf")
            return self.ml_deviance_sdcor(pars, z[others.size :] if nr else r0)[0]

        z0 = np.concatenate([coords[others], r0])
        lower = np.concatenate([params.lower[others], self.lower[self.n_theta :]])
        upper = np.concatenate([params.upper[others], np.full(nr, np.inf)])
        curved = any(
            type(s).refit_coordinates is not CovarianceStructure.refit_coordinates
            for s in cp.structures
        )
        opt = _settled_minimum(f, z0, lower, upper, _MAX_RESTARTS if curved else 0)
        pars = sdcor(opt.final)
        r = opt.final[others.size :] if nr else r0
        _, beta = self.ml_deviance_sdcor(pars, r, with_beta=True)
        return opt.objective, np.concatenate([pars, beta])

    def _refit_fixed(self, j, value, ml_x):
        held = (j, value)

        def f(x: np.ndarray) -> float:
            return self.deviance(x, reml=False, held=held)

        lower, upper = self.lower, self.upper
        opt = minimize(f, ml_x, lower, REFIT_CONTROL, relative_step(ml_x, lower, upper), upper)
        theta, r = self._split(opt.final)
        cp, _ = self.crossprods_at(r)
        beta_rest, sigma = _beta_sigma(_drop_fixed_column(cp, j, value), theta, False)
        beta = np.insert(beta_rest, j, value)
        return opt.objective, np.concatenate([self.to_sdcor(opt.final, sigma), beta])

    # -- Satterthwaite / Kenward-Roger: φ = (θ, σ, residual parameters) -----------------
    def variance_parameters(self) -> np.ndarray:
        """φ: θ, σ (of the fit's criterion) and the residual parameters (lmerTest's
        ``varpar``, extended by the residual structure)."""
        theta, r = self._split(self.start)
        cp, _ = self.crossprods_at(r)
        sigma = _beta_sigma(cp, theta, self.reml)[1]
        return np.concatenate([theta, [sigma], r])

    def deviance_varpar(self, phi: np.ndarray) -> float:
        """lmerTest's ``devfun_vp``: the fit's criterion at φ, σ not profiled out."""
        theta, sigma, r = phi[: self.n_theta], phi[self.n_theta], phi[self.n_theta + 1 :]
        cp, logdet = self.crossprods_at(r)
        fac = factorize(cp, theta)
        p, n = cp.p, cp.n
        s2 = sigma * sigma
        value = fac.logdet_z + fac.L33[p, p] ** 2 / s2 + n * np.log(2.0 * np.pi * s2) + logdet
        if self.reml:
            value += 2.0 * float(np.sum(np.log(np.abs(np.diag(fac.L33)[:p]))))
            value -= p * np.log(2.0 * np.pi * s2)
        return float(value)

    def vcov_beta(self, phi: np.ndarray) -> np.ndarray:
        """σ² (XᵀV⁻¹X)⁻¹ at φ (lmerTest's ``get_covbeta``), V with the residual structure."""
        theta, sigma, r = phi[: self.n_theta], phi[self.n_theta], phi[self.n_theta + 1 :]
        cp, _ = self.crossprods_at(r)
        fac = factorize(cp, theta)
        p = cp.p
        return sigma**2 * sla.cho_solve((fac.L33[:p, :p], True), np.eye(p))

    def joint_vcov(self) -> np.ndarray:
        """Covariance of β̂ from the inverse Hessian of the ML deviance in (β, φ) jointly,
        as glmmTMB reports it (lme4's default, :attr:`vcov`, is σ² (XᵀV⁻¹X)⁻¹, which
        treats the variance parameters as known).  For an ML fit; a REML fit's is that of
        its ML refit."""
        from ..inference.ddf import _hessian

        ml = self.ml()
        x = self._ml_estimate()
        theta, r = self._split(x)
        cp, _ = self.crossprods_at(r)
        beta, sigma = _beta_sigma(cp, theta, False)
        p = beta.size

        def full(z: np.ndarray) -> float:
            b, phi = z[:p], z[p:]
            th, s, rr = phi[: self.n_theta], phi[self.n_theta], phi[self.n_theta + 1 :]
            cpz, logdet = ml.crossprods_at(rr)
            fac = factorize(cpz, th)
            L33 = fac.L33
            bhat = sla.solve_triangular(L33[:p, :p].T, L33[p, :p], lower=False)
            d = L33[:p, :p].T @ (b - bhat)
            rss = L33[p, p] ** 2 + float(d @ d)
            return float(fac.logdet_z + rss / s**2 + cpz.n * np.log(2 * np.pi * s**2) + logdet)

        z = np.concatenate([beta, theta, [sigma], r])
        H = _hessian(full, z)
        return 2.0 * np.linalg.inv(H)[:p, :p]

    # -- simulation ---------------------------------------------------------------------
    def simulate(self, nsim: int, rng: np.random.Generator) -> np.ndarray:
        """``nsim`` responses (n × nsim) from the fit: y = Xβ̂ + offset + Zb + ε with
        b ~ N(0, σ̂²ΛΛᵀ) and ε ~ N(0, σ̂² R), R the residual structure (prior weights
        included) at its estimate."""
        design = self.design
        theta, r = self._split(self.start)
        if self._simulation is None:
            beta, sigma = self.beta_sigma(self.start)
            mean = design.X @ beta
            if design.offset is not None:
                mean = mean + design.offset
            self._simulation = (mean, sigma)
        mean, sigma = self._simulation
        out = np.repeat(mean[:, None], nsim, axis=1)
        cp = self.crossprods
        for term, T in zip(cp.terms, cp.factors(theta), strict=True):
            b = sigma * rng.standard_normal((nsim, term.n_levels, term.n_columns)) @ T.T
            out += np.einsum("nk,snk->ns", term.matrix, b[:, term.codes, :])
        noise = sigma * rng.standard_normal((design.nobs, nsim))
        if self.residual is None:
            if design.weights is not None:
                noise = noise / np.sqrt(design.weights)[:, None]
        else:
            noise = residual_colour(self.residual, r, noise)
        return out + noise


def residual_colour(structure: ResidualStructure, params: np.ndarray, E: np.ndarray) -> np.ndarray:
    """``R^(1/2) E`` for iid columns ``E``: residuals with the structure's covariance R
    (relative to σ²): D for a variance function, and per correlation group the Cholesky
    factor of that group's block of R."""
    if structure.correlation is None:
        sd = np.exp(structure.log_sd(params, E.shape[0]))
        return E * sd[:, None]
    groups = structure.correlation.groups
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    out = np.empty_like(E)
    for rows in np.split(order, bounds):
        R = structure.covariance(params, rows).toarray()
        out[rows] = np.linalg.cholesky(R) @ E[rows]
    return out


# --------------------------------------------------------------------------------------
# generalized linear mixed models
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class GlmmObjective:
    """The Laplace (``nagq=1``) or adaptive Gauss-Hermite deviance of a glmer fit as a
    function of ``x = [θ, β]`` (u by PIRLS), on a private copy of the fit's problem so
    that tools leave the fitted model's warm starts alone.  Negative binomial fits hold
    their shape at its estimate.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> data = mm.datasets.speed_dating(seed=1, n_raters=60, dates_per_rater=10)
    >>> g = mm.glmer("decision ~ attractive_sc + (1 | iid)", data, family="binomial")
    >>> f = g.objective
    >>> bool(abs(f(f.start) - g.deviance) < 1e-6)
    True
    """

    model: GeneralizedLinearMixedModel
    problem: Any = None
    start: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    _nvp: int | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        model = self.model
        if self.problem is None:
            self.problem = model.problem.with_response(model.problem.y)
        if self.start.size == 0:
            self.start = np.concatenate([model.theta, model.fixef.to_numpy()])

    @property
    def kind(self) -> str:
        family = self.model.family
        name = "glmer_nb fit" if family.estimated_shape else f"glmer fit ({family.r_name})"
        return name if self.model.nagq <= 1 else f"{name}, nagq={self.model.nagq}"

    @property
    def criterion(self) -> str:
        return "Laplace" if self.model.nagq <= 1 else f"AGQ({self.model.nagq})"

    @property
    def n_theta(self) -> int:
        return self.model.crossprods.n_theta

    @property
    def lower(self) -> np.ndarray:
        return np.concatenate(
            [self.model.crossprods.lower_bounds(), np.full(self.start.size - self.n_theta, -np.inf)]
        )

    @property
    def upper(self) -> np.ndarray:
        return np.full(self.start.size, np.inf)

    def __call__(self, x: np.ndarray) -> float:
        return self.problem.deviance_theta_beta(np.asarray(x, dtype=float))

    def ml(self) -> GlmmObjective:
        """The Laplace/AGQ deviance is already a (approximate) likelihood."""
        return self

    def with_response(self, y: np.ndarray) -> GlmmObjective:
        return dataclasses.replace(self, problem=self.model.problem.with_response(np.asarray(y)))

    def to_sdcor(self, x: np.ndarray, sigma: float = 1.0) -> np.ndarray:
        from ..inference._params import theta_to_sdcor

        return theta_to_sdcor(self.model.crossprods, np.asarray(x)[: self.n_theta], sigma)

    def from_sdcor(self, pars: np.ndarray) -> np.ndarray:
        from ..inference._params import sdcor_to_theta

        return sdcor_to_theta(self.model.crossprods, np.asarray(pars, dtype=float))

    def parameters(self) -> Parameters:
        """SDs/correlations (no σ: binomial and Poisson have none and the dispersion of
        the other families is not profiled), then β."""
        from ..inference._params import VarianceLayout

        layout = VarianceLayout.of(self.model.crossprods)
        nvp = len(layout.names) - 1
        beta = self.start[self.n_theta :]
        p = beta.size
        return Parameters(
            names=tuple(layout.names[:nvp]) + tuple(self.model.design.fixed_names),
            estimate=np.concatenate([self.to_sdcor(self.start)[:nvp], beta]),
            lower=np.concatenate([layout.lower[:nvp], np.full(p, -np.inf)]),
            upper=np.concatenate([layout.upper[:nvp], np.full(p, np.inf)]),
            n_variance=nvp,
            is_sd=layout.is_sd[:nvp],
        )

    def deviance_sdcor(self, pars: np.ndarray) -> float:
        """The deviance at (SDs/correlations, β)."""
        if self._nvp is None:
            self._nvp = self.parameters().n_variance
        nvp = self._nvp
        theta = self.from_sdcor(np.append(pars[:nvp], 1.0))
        if np.any(np.isnan(theta)):
            return float("inf")
        return self(np.concatenate([theta, pars[nvp:]]))

    def simulate(self, nsim: int, rng: np.random.Generator) -> np.ndarray:
        """Responses (n × nsim) from the fit with new random effects (lme4's
        ``simulate(use.u = FALSE)``)."""
        return np.asarray(self.model.simulate(nsim, seed=rng))  # type: ignore[arg-type]

    def fit(self, start: np.ndarray | None = None) -> OptSummary:
        """Minimize this objective from ``start`` (the estimate by default) as glmer's
        second stage does: θ by BOBYQA with β profiled on its exact gradient where the
        family allows, else (θ, β) together, first steps scaled by the fit's SEs."""
        from ..glmm.gradient import has_beta_gradient
        from ..glmm.optimize import fit_profiled, stage2_step

        x0 = self.start if start is None else np.asarray(start, dtype=float)
        n_theta = self.n_theta
        se = np.sqrt(np.diag(self.model.vcov.to_numpy()))
        step = stage2_step(x0[:n_theta], se)
        lower = self.lower
        if has_beta_gradient(self.problem):
            opt, _ = fit_profiled(
                self.problem, x0[:n_theta], x0[n_theta:], lower[:n_theta], Control(),
                step[:n_theta],
            )  # fmt: skip
            return opt
        return minimize(self, x0, lower, Control(), step)

    def dispersion(self, x: np.ndarray) -> float:
        """σ at ``x`` for families with a dispersion (Gamma, inverse Gaussian: lme4's
        Pearson-type estimate from the penalized weighted RSS); 1 for the others."""
        if self.model.family.scale_free:
            return 1.0
        from ..glmm.pirls import dispersion_pwrss

        x = np.asarray(x, dtype=float)
        state = self.problem.pirls(x[: self.n_theta], x[self.n_theta :])
        return float(
            np.sqrt(dispersion_pwrss(self.problem, state.mu, state.u) / self.problem.y.size)
        )
