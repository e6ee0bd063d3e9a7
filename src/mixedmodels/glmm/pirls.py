"""GLMM numerics: PIRLS for the conditional modes, the Laplace deviance and adaptive
Gauss-Hermite quadrature, on the blocked PLS engine of :mod:`mixedmodels.lmm.deviance`.

For given θ (and β) the conditional modes u maximise
``log p(y | η = offset + Xβ + ZΛu) − ‖u‖²/2``.  Each PIRLS step is one weighted
penalized least-squares solve with the working weights and response of the current
η; step halving keeps the penalized deviance decreasing.  The Laplace deviance is

    −2 log p(y | û) + ‖û‖² + log|ΛᵀZᵀWZΛ + I|,

lme4's ``nAGQ = 1`` criterion.  A single scalar random-effects term decouples into
independent one-dimensional problems per level, solved vectorised (and integrated
by adaptive Gauss-Hermite quadrature when ``nagq > 1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg as sla

from ..frontend.design_types import ReTerm
from ..lmm.crossprods import CrossProducts
from ..lmm.deviance import Factorization, cholesky_solve, conditional_modes, factorize
from .blocks import WeightedCrossProducts
from .families import Family, working_residual, working_response
from .gradient import gradient_pieces, weight_derivative

PIRLS_TOLERANCE = 1e-9
#: largest change of β or a mode that ends :meth:`GlmmProblem.laplace_pirls`: at 1e-6 a
#: state warm-started from a nearby θ was 1e-5 off in the Laplace deviance (log|P| moves
#: to first order with the modes) and 6e-4 in its θ derivative; at 1e-9 both are exact to
#: the searches' needs for one step more
LAPLACE_TOLERANCE = 1e-9
PIRLS_MAX_ITERATIONS = 100
MAX_HALVINGS = 12


@dataclass
class PirlsResult:
    """The converged state of PIRLS at (θ, β)."""

    beta: np.ndarray
    u: list[np.ndarray]  # spherical modes per internal term, (ℓ, k)
    eta: np.ndarray
    mu: np.ndarray
    weights: np.ndarray  # working weights at the mode
    logdet: float
    deviance: float  # Laplace (or AGQ) deviance
    iterations: int
    converged: bool
    #: the blocks of [Z X z] at the mode's weights and their factor (``keep_factor=True``)
    factorization: tuple[CrossProducts, Factorization] | None = None
    #: the gradient's pieces from that factor, once computed (see glmm_gradient)
    pieces: Any = None


@dataclass
class GlmmProblem:
    """A GLMM's data and the warm-started deviance function of (θ, β)."""

    y: np.ndarray
    X: np.ndarray
    terms: tuple[ReTerm, ...]
    prior_weights: np.ndarray
    offset: np.ndarray
    family: Family
    nagq: int = 1
    template: CrossProducts = field(init=False, repr=False)
    _u: list[np.ndarray] = field(init=False, repr=False)
    _beta: np.ndarray | None = field(init=False, repr=False, default=None)
    evaluations: int = field(init=False, default=0)
    pirls_failures: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.template = CrossProducts.build(self.y, self.X, self.terms)
        self._joint_blocks: WeightedCrossProducts | None = None
        self._mode_blocks: WeightedCrossProducts | None = None
        family = self.family
        self._canonical = family.observed_information_weights
        # PIRLS works with −2 log p(y | μ) up to a constant of y (the family's kernel);
        # the Laplace deviance adds the constant back, computed here once
        mu0 = family.starting_mu(self.y, self.prior_weights)
        kernel = family.loglik_kernel(self.y, mu0, self.prior_weights)
        self._kernel_constant = (
            None
            if kernel is None
            else float(np.sum(family.minus_two_loglik(self.y, mu0, self.prior_weights)) - kernel)
        )
        self.reset()

    def _blocks(self, with_beta: bool) -> WeightedCrossProducts:
        """The reweightable blocks with [X z] (β free) or [z] only (β fixed), built lazily."""
        if with_beta:
            if self._joint_blocks is None:
                self._joint_blocks = WeightedCrossProducts(self.X, self.terms)
            return self._joint_blocks
        if self._mode_blocks is None:
            self._mode_blocks = WeightedCrossProducts(np.zeros((len(self.y), 0)), self.terms)
        return self._mode_blocks

    # -- structure --------------------------------------------------------------------
    @property
    def ordered_terms(self) -> list[ReTerm]:
        return self.template.terms

    @property
    def scalar_single(self) -> bool:
        """One scalar term: the problem separates into one-dimensional ones per level."""
        return len(self.ordered_terms) == 1 and self.ordered_terms[0].n_columns == 1

    @property
    def n_theta(self) -> int:
        return self.template.n_theta

    def with_response(self, y: np.ndarray) -> GlmmProblem:
        """The same model for a new response (e.g. a bootstrap draw), warm starts cleared."""
        return GlmmProblem(
            y=y,
            X=self.X,
            terms=self.terms,
            prior_weights=self.prior_weights,
            offset=self.offset,
            family=self.family,
            nagq=self.nagq,
        )

    def reset(self) -> None:
        self._u = [np.zeros((t.n_levels, t.n_columns)) for t in self.ordered_terms]
        self._u_theta: np.ndarray | None = None  # the θ the warm start was found at
        self._beta = None

    def _warm_modes(self, theta: np.ndarray) -> list[np.ndarray]:
        """The stored modes as a start at θ: the same b = Λu (so the same η) when the
        θ they were found at differs; a term whose new Λ is singular keeps its u."""
        old_theta = self._u_theta
        if old_theta is None or np.array_equal(old_theta, theta):
            return [x.copy() for x in self._u]
        modes = []
        for u, T_old, T_new in zip(
            self._u, self.template.factors(old_theta), self.template.factors(theta), strict=True
        ):
            diagonal = np.abs(np.diag(T_new))
            if np.all(diagonal > 1e-8 * max(1.0, float(np.max(np.abs(T_old))))):
                u = sla.solve_triangular(T_new, T_old @ u.T, lower=True).T
            modes.append(np.array(u, copy=True))
        return modes

    def random_part(self, theta: np.ndarray, u: list[np.ndarray]) -> np.ndarray:
        """Z Λ u on the rows."""
        total = np.zeros(len(self.y))
        for term, T, u_term in zip(
            self.ordered_terms, self.template.factors(theta), u, strict=True
        ):
            b = u_term @ T.T
            total += np.einsum("nk,nk->n", term.matrix, b[term.codes])
        return total

    def _moments(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """μ, dμ/dη and the working weights at η."""
        link = self.family.link
        mu = link.inverse(eta)
        if self._canonical:  # dμ/dη = V(μ), so w = prior · V(μ): one transcendental pass
            mu_eta = self.family.variance(mu)
            return mu, mu_eta, self.prior_weights * mu_eta
        mu_eta = link.mu_eta(eta)
        weights = self.prior_weights * mu_eta**2 / self.family.variance(mu)
        return mu, mu_eta, weights

    def working_response(
        self, eta: np.ndarray, mu: np.ndarray, mu_eta: np.ndarray | None = None
    ) -> np.ndarray:
        """The working response z at η (:func:`~.families.working_response` on this
        problem's response, link and offset); dμ/dη from the link unless given."""
        return working_response(self.family.link, self.y, eta, mu, self.offset, mu_eta)

    def _penalized(self, mu: np.ndarray, u: list[np.ndarray]) -> float:
        """−2 log p(y | μ) + ‖u‖², up to the constant ``_kernel_constant`` when known."""
        penalty = sum(float(x.ravel() @ x.ravel()) for x in u)
        if self._kernel_constant is not None:
            return self.family.loglik_kernel(self.y, mu, self.prior_weights) + penalty
        deviance = self.family.deviance_residuals(self.y, mu, self.prior_weights)
        return float(np.sum(deviance)) + penalty

    # -- PIRLS ------------------------------------------------------------------------
    def _pls_step(
        self, theta: np.ndarray, eta: np.ndarray, fixed: np.ndarray, with_beta: bool
    ) -> tuple[np.ndarray, list[np.ndarray], float]:
        """One weighted PLS solve: new β (if free) and u, and log|L|² at η's weights."""
        mu, mu_eta, weights = self._moments(eta)
        working = self.working_response(eta, mu, mu_eta)
        if not with_beta:
            working = working - fixed
        cp = self._blocks(with_beta).evaluate(working, weights)
        fac = factorize(cp, theta)
        beta, u = conditional_modes(cp, fac)
        return beta, u, fac.logdet_z

    def _scalar_step(
        self, lam: float, eta: np.ndarray, u: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fisher-scoring update of every level's scalar mode at once; returns (u, diag of L²)."""
        term = self.ordered_terms[0]
        z = term.matrix[:, 0]
        mu, mu_eta, weights = self._moments(eta)
        resid = working_residual(self.y, mu, mu_eta)
        wz = weights * z
        ell = term.n_levels
        hess = lam * lam * np.bincount(term.codes, weights=wz * z, minlength=ell) + 1.0
        score = lam * np.bincount(
            term.codes, weights=wz * (lam * z * u[term.codes, 0] + resid), minlength=ell
        )
        return (score / hess)[:, None], hess

    def pirls(
        self, theta: np.ndarray, beta: np.ndarray | None, keep_factor: bool = False
    ) -> PirlsResult:
        """Conditional modes at θ with β fixed, or with β free when ``beta`` is None.

        ``keep_factor`` keeps the blocks of [Z X z] at the mode and their factor in the
        result (for the β gradient), at the cost of forming the X columns once more."""
        with_beta = beta is None
        if with_beta:
            beta = self._beta if self._beta is not None else self._starting_beta()
        u = self._warm_modes(theta)
        fixed = self.X @ beta + self.offset
        eta = fixed + self.random_part(theta, u)
        mu = self.family.link.inverse(eta)
        pdev = self._penalized(mu, u)
        converged = False
        iterations = 0
        moved = np.inf
        # with a canonical link the step is Newton's: quadratic convergence, so a step
        # below 1e-6 leaves an error of ~1e-12 and the confirming iteration can be skipped
        tolerance = 1e-6 if self._canonical else PIRLS_TOLERANCE
        lam = float(self.template.factors(theta)[0][0, 0]) if self.scalar_single else 0.0
        for iterations in range(1, PIRLS_MAX_ITERATIONS + 1):  # noqa: B007 (reported)
            if self.scalar_single and not with_beta:
                new_u, _ = self._scalar_step(lam, eta, u[0])
                new_u = [new_u]
                new_beta = beta
            else:
                new_beta, new_u, _ = self._pls_step(theta, eta, fixed - self.offset, with_beta)
                if not with_beta:
                    new_beta = beta
            step = 1.0
            for _ in range(MAX_HALVINGS):
                trial_u = [old + step * (new - old) for old, new in zip(u, new_u, strict=True)]
                trial_beta = beta + step * (new_beta - beta)
                trial_fixed = self.X @ trial_beta + self.offset
                trial_eta = trial_fixed + self.random_part(theta, trial_u)
                trial_mu = self.family.link.inverse(trial_eta)
                trial_pdev = self._penalized(trial_mu, trial_u)
                if np.isfinite(trial_pdev) and trial_pdev <= pdev + 1e-10 * abs(pdev):
                    break
                step /= 2.0
            else:
                break  # no decrease possible: at the mode up to rounding
            # converge on the step, not the objective: log|L|² (in the Laplace deviance)
            # moves to first order with û, so û must be accurate, not just pdev
            moved = max(
                float(np.max(np.abs(t - o))) if o.size else 0.0
                for t, o in zip(trial_u, u, strict=True)
            )
            moved = max(moved, float(np.max(np.abs(trial_beta - beta))) if beta.size else 0.0)
            u, beta, fixed, eta, mu, pdev = (
                trial_u,
                trial_beta,
                trial_fixed,
                trial_eta,
                trial_mu,
                trial_pdev,
            )
            if moved < tolerance:
                converged = True
                break
        else:
            # Fisher scoring converges linearly for non-canonical links: only a step that
            # is still large after the iteration limit is a failure
            if moved > 1e-6:
                self.pirls_failures += 1
        # log|L|² at the weights of the mode itself
        factorization = None
        if self.scalar_single:
            _, hess = self._scalar_step(lam, eta, u[0])
            logdet = float(np.sum(np.log(hess)))
        elif keep_factor:
            mu_k, mu_eta, weights = self._moments(eta)
            working = self.working_response(eta, mu_k, mu_eta)
            cp = self._blocks(True).evaluate(working, weights)
            fac = factorize(cp, theta)
            factorization, logdet = (cp, fac), fac.logdet_z
        else:
            _, _, logdet = self._pls_step(theta, eta, fixed - self.offset, False)
        _, _, weights = self._moments(eta)
        self._u, self._u_theta = u, np.array(theta, dtype=float)
        if with_beta:
            self._beta = beta
        deviance = self._laplace(mu, u, logdet, pdev)
        if self.nagq > 1:
            deviance = self._agq(theta, beta, u, eta)
        return PirlsResult(
            beta, u, eta, mu, weights, logdet, deviance, iterations, converged, factorization
        )

    def laplace_pirls(
        self, theta: np.ndarray, beta: np.ndarray, max_iterations: int = 25
    ) -> PirlsResult | None:
        """β and u together for the Laplace deviance at θ (canonical links): each step is
        the joint PLS solve of PIRLS with β moved by −½(XᵀWX̃)⁻¹∂log|P|/∂β and û along
        with it (dû/dβ = −P⁻¹ΛᵀZᵀWX), so β converges to the Laplace optimum, not to
        the penalized-deviance one, in a few steps from a warm start.

        The deviance is only the Laplace deviance once û is the mode (when the steps
        have settled); before that it is no merit function, so the steps are watched
        instead: they must shrink.  Returns the converged state (its factor kept), or
        None when they do not (the caller falls back to Newton on β with PIRLS for u)."""
        u = self._warm_modes(theta)
        blocks = self._blocks(True)
        fixed = self.X @ beta + self.offset
        eta = fixed + self.random_part(theta, u)
        previous = np.inf
        settled = False

        def converged_state(pieces=None) -> PirlsResult:
            self._u, self._beta, self._u_theta = u, beta, np.array(theta, dtype=float)
            deviance = self._laplace(mu, u, fac.logdet_z, self._penalized(mu, u))
            state = PirlsResult(
                beta, u, eta, mu, weights, fac.logdet_z, deviance, iterations, True, (cp, fac)
            )
            state.pieces = pieces
            return state

        for iterations in range(1, max_iterations + 1):
            mu, mu_eta, weights = self._moments(eta)
            working = self.working_response(eta, mu, mu_eta)
            cp = blocks.evaluate(working, weights)
            fac = factorize(cp, theta)
            if not np.isfinite(fac.logdet_z):
                return None
            if settled:  # the step that led here was predicted to be the last
                return converged_state()
            pieces = gradient_pieces(self, cp, fac)
            gradient = pieces.log_determinant_gradient(weight_derivative(self.family, mu, weights))
            L33, p = fac.L33, self.X.shape[1]
            new_beta = beta
            if p:  # the PLS β, moved by half a Newton step on log|P|
                beta_pls = sla.solve_triangular(L33[:p, :p].T, L33[p, :p], lower=False)
                new_beta = beta_pls - 0.5 * cholesky_solve(L33[:p, :p], gradient)
            new_u = pieces.modes_at(new_beta)
            moved = max(
                float(np.max(np.abs(new_beta - beta))),
                max(float(np.max(np.abs(a - b))) for a, b in zip(new_u, u, strict=True)),
            )
            if not np.isfinite(moved) or (iterations > 2 and moved > previous):
                return None  # steps not shrinking: no contraction
            # the steps contract at least linearly: when the next one is predicted below
            # the tolerance, take this one and only evaluate where it lands
            settled = iterations > 1 and moved * moved / previous < LAPLACE_TOLERANCE
            previous = moved
            if moved < LAPLACE_TOLERANCE:
                return converged_state(pieces)
            beta, u = new_beta, new_u
            eta = self.X @ beta + self.offset + self.random_part(theta, u)
        return None

    def _starting_beta(self) -> np.ndarray:
        """β of the GLM fit without random effects (IRLS), lme4's starting point."""
        mu = self.family.starting_mu(self.y, self.prior_weights)
        eta = self.family.link.link(mu)
        beta = np.zeros(self.X.shape[1])
        if not beta.size:
            return beta
        for _ in range(50):
            mu = self.family.link.inverse(eta)
            _, mu_eta, weights = self._moments(eta)
            z = self.working_response(eta, mu, mu_eta)
            new_beta = _weighted_least_squares(self.X, z, weights)
            eta = self.X @ new_beta + self.offset
            if np.max(np.abs(new_beta - beta)) < 1e-10 * (np.max(np.abs(new_beta)) + 1e-3):
                beta = new_beta
                break
            beta = new_beta
        return beta

    def _laplace(self, mu: np.ndarray, u: list[np.ndarray], logdet: float, pdev: float) -> float:
        if self._kernel_constant is not None:
            return pdev + self._kernel_constant + logdet
        # Gamma and inverse Gaussian: the dispersion in −2 log p(y | û) is R's aic()'s,
        # deviance / Σ prior weights at û, plus the 2 that aic() adds for it, as lme4's
        # objective (so the criterion moves with û to first order, unlike the others)
        conditional = self.family.minus_two_loglik(self.y, mu, self.prior_weights)
        return float(
            np.sum(conditional) + self.family.aic_offset + sum(np.sum(x**2) for x in u) + logdet
        )

    def _agq(
        self, theta: np.ndarray, beta: np.ndarray, u: list[np.ndarray], eta: np.ndarray
    ) -> float:
        """Adaptive Gauss-Hermite deviance for one scalar term, centred at the modes."""
        term = self.ordered_terms[0]
        lam = float(self.template.factors(theta)[0][0, 0])
        z = term.matrix[:, 0]
        _, hess = self._scalar_step(lam, eta, u[0])
        scale = 1.0 / np.sqrt(hess)  # per level
        nodes, weights = np.polynomial.hermite_e.hermegauss(self.nagq)
        fixed = self.X @ beta + self.offset
        codes = term.codes
        ell = term.n_levels
        log_terms = np.empty((ell, self.nagq))
        for k, (t, w) in enumerate(zip(nodes, weights, strict=True)):
            u_k = u[0][:, 0] + scale * t
            eta_k = fixed + lam * z * u_k[codes]
            mu_k = self.family.link.inverse(eta_k)
            dev_k = np.bincount(
                codes,
                weights=self.family.minus_two_loglik(self.y, mu_k, self.prior_weights),
                minlength=ell,
            )
            log_terms[:, k] = np.log(w) - 0.5 * (dev_k + u_k**2) + 0.5 * t * t
        top = log_terms.max(axis=1)
        log_integral = top + np.log(np.sum(np.exp(log_terms - top[:, None]), axis=1))
        log_integral -= 0.5 * np.log(2.0 * np.pi)
        return float(np.sum(np.log(hess)) - 2.0 * np.sum(log_integral))

    # -- deviance functions for the optimizer ----------------------------------------
    def deviance_theta(self, theta: np.ndarray) -> float:
        """Stage 1 (lme4's nAGQ = 0): β and u together in PIRLS."""
        self.evaluations += 1
        try:
            return self.pirls(np.asarray(theta, dtype=float), None).deviance
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            return float("inf")

    def deviance_theta_beta(self, params: np.ndarray) -> float:
        """Stage 2: (θ, β) by the optimizer, u by PIRLS."""
        self.evaluations += 1
        params = np.asarray(params, dtype=float)
        theta, beta = params[: self.n_theta], params[self.n_theta :]
        try:
            return self.pirls(theta, beta).deviance
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            return float("inf")


def dispersion_pwrss(problem: GlmmProblem, mu: np.ndarray, u: list[np.ndarray]) -> float:
    """lme4's ``pwrss`` of a GLMM at a PIRLS state: the weighted residual sum of squares
    Σ wt (y − μ)² / V(μ) (the Pearson χ²) plus ‖u‖².  For Gamma and inverse Gaussian
    fits ``pwrss / n`` is lme4's σ², its estimate of the dispersion."""
    y, wt = problem.y, problem.prior_weights
    pearson = float(np.sum(wt * (y - mu) ** 2 / problem.family.variance(mu)))
    return pearson + float(sum(np.sum(x**2) for x in u))


def _weighted_least_squares(X: np.ndarray, z: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """argmin_b Σ w (z − Xb)²: by the normal equations (a Cholesky of XᵀWX, a quarter of
    the time of numpy's SVD-based lstsq on the 7,000 x 7 of the chapter's GLMM), by
    lstsq where XᵀWX is not numerically positive definite."""
    XW = X.T * weights
    try:
        factor = sla.cho_factor(XW @ X, lower=True, check_finite=False)
        solution = sla.cho_solve(factor, XW @ z, check_finite=False)
        if np.all(np.isfinite(solution)):
            return solution
    except (np.linalg.LinAlgError, sla.LinAlgError):
        pass
    sw = np.sqrt(weights)
    return np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)[0]
