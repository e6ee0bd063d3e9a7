"""Optimizing the Laplace deviance with its exact gradient: β profiled out, θ by
L-BFGS-B (scalar terms) or BOBYQA, and the (θ, β) Hessian for lme4's ``vcov`` from
differences of gradients.

lme4 searches (θ, β) together without derivatives, a few hundred deviance evaluations
and 4 per pair of parameters for the Hessian.  With the exact β gradient of
:mod:`mixedmodels.glmm.gradient`, β is cheap to optimize for each θ (joint Laplace
steps of :meth:`GlmmProblem.laplace_pirls`, Newton steps on the marginal information
as the fallback), so the search runs over θ alone, by quasi-Newton when the θ gradient
is exact too; the Hessian needs one gradient per β and two per θ.  The optimum is the
same (the Laplace deviance's, in θ and β)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from ..lmm.optimize import Control, OptSummary, escape_boundary, minimize
from .gradient import beta_gradient, has_theta_gradient, theta_gradient
from .pirls import LAPLACE_TOLERANCE, GlmmProblem, PirlsResult
from .scalar_laplace import LaplaceState, ScalarLaplace

#: largest |∂D/∂θ| that ends the quasi-Newton search on θ (the deviance is then within
#: ~g²/(2H) ≈ 1e-10 of its minimum for curvatures H of order 1)
GRADIENT_TOLERANCE = 1e-5
#: Newton decrement gᵀH⁻¹g (≈ twice the deviance still to gain) that ends the β search
NEWTON_DECREMENT = 1e-11
#: a full step taken from a decrement below this ends the search without confirming:
#: each step shrinks the decrement ~10⁴-fold (the curvature left out is the small
#: log-determinant's), so the deviance left is below ~1e-11
LAST_STEP_DECREMENT = 1e-7
MAX_NEWTON_STEPS = 50


@dataclass
class BetaOptimum:
    """β minimizing the Laplace deviance at one θ, with the gradient and information there."""

    beta: np.ndarray
    state: PirlsResult
    gradient: np.ndarray
    information: np.ndarray
    steps: int


def optimize_beta(
    problem: GlmmProblem, theta: np.ndarray, beta: np.ndarray, confirm: bool = True
) -> BetaOptimum:
    """Newton steps on β at fixed θ, each with PIRLS for the modes, step-halved on the
    deviance.  The curvature is 2·XᵀWX̃ (the log-determinant's own curvature is left
    out), so convergence is fast-linear: a few steps from a warm start.  Without
    ``confirm`` the gradient after a last small full step is not evaluated (the
    returned gradient and information are then those before it)."""
    state = problem.pirls(theta, beta, keep_factor=True)
    for steps in range(MAX_NEWTON_STEPS):  # noqa: B007 (reported)
        gradient, information = beta_gradient(problem, theta, state)
        try:
            factor = sla.cho_factor(information, lower=True, check_finite=False)
            step = -0.5 * sla.cho_solve(factor, gradient, check_finite=False)
        except (np.linalg.LinAlgError, sla.LinAlgError):
            step = -0.5 * np.linalg.lstsq(information, gradient, rcond=None)[0]
        decrement = -float(gradient @ step)
        if not np.isfinite(decrement) or decrement < NEWTON_DECREMENT:
            break
        t = 1.0
        while True:
            trial = problem.pirls(theta, beta + t * step, keep_factor=True)
            if trial.deviance <= state.deviance + 1e-12 * abs(state.deviance) or t < 1e-4:
                break
            t *= 0.5
        if trial.deviance > state.deviance:
            problem.pirls(theta, beta)  # restore the modes of the kept β
            break
        beta, state = beta + t * step, trial
        if not confirm and t == 1.0 and decrement < LAST_STEP_DECREMENT:
            break
    return BetaOptimum(beta, state, gradient, information, steps)


#: a θ derivative steeper than this lets the next compiled state stop at ROUGH_TOLERANCE
STEEP_DERIVATIVE = 1.0
ROUGH_TOLERANCE = 1e-6


class ProfiledLaplace:
    """The Laplace deviance as a function of θ alone, β optimized inside (warm-started)."""

    def __init__(self, problem: GlmmProblem, beta: np.ndarray):
        self.problem = problem
        self.beta = np.asarray(beta, dtype=float)
        self.evaluations = 0
        self.kernel = ScalarLaplace.of(problem)
        #: the last compiled state and its θ: a search asks for its start's value, then
        #: for the value and gradient there (one Laplace state, not two)
        self._last: tuple[np.ndarray, LaplaceState, bool] | None = None
        self._steep = True

    def _compiled_state(self, theta: np.ndarray, exact: bool = False) -> LaplaceState | None:
        """The state at θ from the compiled iterations, when they apply and settle.

        While the last θ derivative was steep (beyond :data:`STEEP_DERIVATIVE`) the steps
        stop at :data:`ROUGH_TOLERANCE`: the deviance and derivative are then off by ~1e-5
        and ~1e-3, far below what the search reads there, and a state takes a step or two
        fewer; near the optimum, and with ``exact``, at the full tolerance."""
        if self.kernel is None:
            return None
        theta = np.asarray(theta, dtype=float)
        last = self._last
        if last is not None and np.array_equal(last[0], theta) and (last[2] or not exact):
            return last[1]
        rough = not exact and last is not None and self._steep
        tolerance = ROUGH_TOLERANCE if rough else LAPLACE_TOLERANCE
        state = self.kernel.joint(theta, self.beta, tolerance)
        if state is None:
            return None
        self.evaluations += 1
        self.problem.evaluations += 1
        if np.all(np.isfinite(state.beta)):
            self.beta = state.beta
        self._steep = bool(np.max(np.abs(state.theta_gradient), initial=0.0) > STEEP_DERIVATIVE)
        self._last = (theta.copy(), state, not rough)
        return state

    def state(self, theta: np.ndarray) -> PirlsResult | None:
        """The converged state at θ with β optimized, or None when PIRLS fails."""
        self._last = None  # the problem's warm start is no longer the compiled state's
        self.evaluations += 1
        self.problem.evaluations += 1
        try:
            theta = np.asarray(theta, dtype=float)
            state = self.problem.laplace_pirls(theta, self.beta)
            if state is None or not np.isfinite(state.deviance):
                self.problem.reset()
                state = optimize_beta(self.problem, theta, self.beta, confirm=False).state
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            return None
        if np.all(np.isfinite(state.beta)):
            self.beta = state.beta
        return state

    def __call__(self, theta: np.ndarray) -> float:
        compiled = self._compiled_state(theta)
        if compiled is not None:
            return compiled.deviance
        state = self.state(theta)
        return float("inf") if state is None else state.deviance

    def exact_at(self, x: float) -> bool:
        """Whether the last state was at θ = (x,) and at the full tolerance (or the numpy
        path's, which has no rough one)."""
        last = self._last
        if last is None:
            return True
        return bool(last[2]) or not np.array_equal(last[0], [x])

    def with_gradient(self, theta: np.ndarray, exact: bool = False) -> tuple[float, np.ndarray]:
        """The profiled deviance and its θ gradient (the partial one at the optimal β,
        which is the total one: ∂D/∂β = 0 there); ``exact``: at the full tolerance."""
        compiled = self._compiled_state(theta, exact)
        if compiled is not None:
            return compiled.deviance, compiled.theta_gradient
        state = self.state(theta)
        if state is None or not np.isfinite(state.deviance):
            return float("inf"), np.zeros(np.size(theta))
        return state.deviance, theta_gradient(self.problem, np.asarray(theta, float), state)


def fit_profiled(
    problem: GlmmProblem,
    theta0: np.ndarray,
    beta0: np.ndarray,
    lower: np.ndarray,
    control: Control,
    initial_step: np.ndarray | None = None,
) -> tuple[OptSummary, np.ndarray]:
    """Minimize the Laplace deviance over (θ, β) with β profiled: L-BFGS-B on θ when its
    gradient is exact (scalar terms), else (or if that fails) BOBYQA.

    Returns the optimizer's summary over (θ, β) (θ's search, β appended) and β."""
    profiled = ProfiledLaplace(problem, beta0)
    summary = None
    if has_theta_gradient(problem) and control.optimizer == "bobyqa":
        if np.size(theta0) == 1:
            summary = _secant_search(profiled, theta0, lower, control)
        if summary is None:
            summary = _quasi_newton(profiled, theta0, lower, control)
    if summary is None:
        summary = minimize(profiled, theta0, lower, control, initial_step=initial_step)
    # the deviance is even in each relative SD, so an SD at 0 is stationary whatever the
    # curvature, and the search can stop there on a ridge top (L-BFGS-B on a crossed
    # binomial) or in a worse basin: restarts as for lmer
    summary = escape_boundary(profiled, summary, control)
    theta = summary.final
    # β at the optimum's θ: the compiled Laplace steps from the search's last β (one or
    # two steps; the search's own state when it ended there), else Newton on β
    compiled = profiled._compiled_state(theta, exact=True) if profiled.kernel else None
    if compiled is not None:
        beta, objective = compiled.beta, compiled.deviance
    else:
        optimum = optimize_beta(problem, theta, profiled.beta)
        beta, objective = optimum.beta, optimum.state.deviance
    summary.initial = np.concatenate([summary.initial, beta0])
    summary.lower = np.concatenate([lower, np.full(beta.size, -np.inf)])
    summary.final = np.concatenate([theta, beta])
    summary.objective = objective
    return summary, beta


#: the Newton step g/H (H the curvature of the last two points), relative to
#: max(1, |θ|), that ends the search on a single θ: a tolerance on θ itself, whatever the
#: scale of the deviance (L-BFGS-B's |g| < 1e-5 is 1e-8 in θ on a curvature of 1000, and
#: 1e-5 on one of 1)
SECANT_STEP = 1e-7
MAX_SECANT_STEPS = 30


def _secant_search(
    profiled: ProfiledLaplace, theta0: np.ndarray, lower: np.ndarray, control: Control
) -> OptSummary | None:
    """The minimum over a single θ (one scalar term) from its value and exact derivative:
    each step goes to the minimizer of the cubic through the last two points' values and
    derivatives (the secant step where it has none), kept inside the bracket where the
    derivative changes sign (bisection otherwise).  θ = 0 has a derivative of 0 by
    symmetry, so a step onto the bound is checked by a point inside.  None when it does
    not end cleanly (the caller then runs L-BFGS-B).  On the chapter's speed-dating
    model: 5 evaluations where L-BFGS-B took 11.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> data = mm.datasets.speed_dating()
    >>> m = mm.glmer("decision ~ attractive_sc + (1 | iid)", data, family="binomial")
    >>> m.opt_summary.optimizer
    'secant (exact θ derivative)'
    """
    low = float(lower[0]) if np.isfinite(lower[0]) else -np.inf
    start = profiled.evaluations

    def evaluate(at: float, exact: bool = False) -> tuple[float, float]:
        value, gradient = profiled.with_gradient(np.array([at]), exact)
        return float(value), float(gradient[0])

    x = float(theta0[0])
    f, g = evaluate(x)
    left, right = low, np.inf  # the minimum lies between
    f_best = f
    previous: tuple[float, float, float] | None = None
    for _ in range(MAX_SECANT_STEPS):
        if not (np.isfinite(f) and np.isfinite(g)):
            return None
        if x == low and g >= 0:  # on the bound, whose derivative says nothing
            if f > f_best or not np.isfinite(right):
                left, previous = x, None  # a lower point inside: bisect towards it
                x_new = 0.5 * (left + right) if np.isfinite(right) else x + 1.0
            else:  # the bound is the lowest so far: is the deviance rising from it?
                inside = low + 0.25 * (right - low)
                f_in, g_in = evaluate(inside)
                if g_in >= 0 and f_in >= f:
                    break
                x, f, g, previous = inside, f_in, g_in, None
                f_best = min(f_best, f)
                continue
        else:
            step = _interpolated_step(previous, x, f, g)
            if step is not None and abs(step) < SECANT_STEP * max(1.0, abs(x)):
                if profiled.exact_at(x):
                    break
                f, g = evaluate(x, exact=True)  # a rough state looked converged: confirm
                continue
            if right - left < SECANT_STEP * max(1.0, abs(x)):
                break
            if g < 0:
                left = x
            else:
                right = x
            if step is None:  # a first step of 1 (relative SDs), halfway to the bound at most
                step = -np.sign(g) * max(1.0, abs(x))
                step = 0.5 * (low - x) if x + step <= low else step
            x_new = max(x + step, low)  # a step beyond the bound: onto it
            if not left <= x_new <= right or x_new == x:
                x_new = 0.5 * (left + right) if np.isfinite(right) else x + max(1.0, abs(x))
            previous = (x, f, g)
        x = x_new
        f, g = evaluate(x)
        f_best = min(f_best, f)
    else:
        return None
    return OptSummary(
        initial=np.asarray(theta0, dtype=float),
        lower=np.asarray(lower, dtype=float),
        final=np.array([x]),
        objective=float(f),
        evaluations=profiled.evaluations - start,
        optimizer="secant (exact θ derivative)",
        return_code="SUCCESS",
        ftol_rel=0.0,
        xtol_abs=control.xtol_abs,
    )


def _interpolated_step(
    previous: tuple[float, float, float] | None, x: float, f: float, g: float
) -> float | None:
    """The step from x to the minimizer of the cubic matching the values and derivatives
    at x and the previous point (Nocedal & Wright, eq. 3.59), or the secant step where
    the cubic has no minimizer; None without a previous point or a positive curvature."""
    if previous is None or previous[0] == x:
        return None
    x0, f0, g0 = previous
    d1 = g0 + g - 3.0 * (f0 - f) / (x0 - x)
    discriminant = d1 * d1 - g0 * g
    if discriminant >= 0:
        d2 = np.sign(x - x0) * np.sqrt(discriminant)
        denominator = g - g0 + 2.0 * d2
        if denominator != 0:
            step = -(x - x0) * (g + d2 - d1) / denominator
            if np.isfinite(step):
                return float(step)
    curvature = (g - g0) / (x - x0)
    return -g / curvature if curvature > 0 else None


def _quasi_newton(
    profiled: ProfiledLaplace, theta0: np.ndarray, lower: np.ndarray, control: Control
) -> OptSummary | None:
    """L-BFGS-B on θ with the exact gradient of the profiled Laplace deviance (scalar
    terms): a dozen evaluations where BOBYQA needs three dozen.  None when it does not
    end cleanly (the caller then runs BOBYQA)."""
    from scipy.optimize import minimize as scipy_minimize

    start = profiled(theta0)
    if not np.isfinite(start):
        return None
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    result = scipy_minimize(
        profiled.with_gradient,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-15, "gtol": GRADIENT_TOLERANCE, "maxiter": 200},
    )
    if not (result.success and np.isfinite(result.fun)):
        return None
    return OptSummary(
        initial=np.asarray(theta0, dtype=float),
        lower=np.asarray(lower, dtype=float),
        final=np.maximum(np.asarray(result.x, dtype=float), lower),
        objective=float(result.fun),
        evaluations=int(result.nfev),
        optimizer="scipy L-BFGS-B (exact θ gradient)",
        return_code="SUCCESS",
        ftol_rel=1e-15,
        xtol_abs=control.xtol_abs,
    )


def laplace_derivatives(
    problem: GlmmProblem,
    theta: np.ndarray,
    beta: np.ndarray,
    lower: np.ndarray,
    delta: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of the Laplace deviance in (θ, β), as lme4's ``deriv12`` but
    from the exact gradients: differences of them (central in θ, forward with a 1e-5 step
    in β; one-sided at a bound, as lme4).  Without a θ gradient (vector terms) the θ
    block comes from differences of the deviance."""
    if has_theta_gradient(problem):
        return _derivatives_from_gradient(problem, theta, beta, lower, delta)
    n_theta, p = theta.size, beta.size
    n = n_theta + p

    def evaluate(th: np.ndarray, be: np.ndarray) -> tuple[float, np.ndarray]:
        state = problem.pirls(th, be, keep_factor=True)
        return state.deviance, beta_gradient(problem, th, state)[0]

    f0, g0 = evaluate(theta, beta)
    grad = np.zeros(n)
    hess = np.zeros((n, n))
    grad[n_theta:] = g0
    forward = theta - delta < lower
    plus = {}
    for k in range(n_theta):
        e = np.zeros(n_theta)
        e[k] = delta
        fp, gp = evaluate(theta + e, beta)
        plus[k] = fp
        if forward[k]:
            fpp, _ = evaluate(theta + 2 * e, beta)
            grad[k] = (-3 * f0 + 4 * fp - fpp) / (2 * delta)
            hess[k, k] = (f0 - 2 * fp + fpp) / delta**2
            cross = (gp - g0) / delta
        else:
            fm, gm = evaluate(theta - e, beta)
            grad[k] = (fp - fm) / (2 * delta)
            hess[k, k] = (fp - 2 * f0 + fm) / delta**2
            cross = (gp - gm) / (2 * delta)
        hess[k, n_theta:] = hess[n_theta:, k] = cross
    for k in range(n_theta):
        for m in range(k):
            ek, em = np.zeros(n_theta), np.zeros(n_theta)
            ek[k], em[m] = delta, delta
            if forward[k] or forward[m]:
                value = (evaluate(theta + ek + em, beta)[0] - plus[k] - plus[m] + f0) / delta**2
            else:
                value = (
                    evaluate(theta + ek + em, beta)[0]
                    - evaluate(theta + ek - em, beta)[0]
                    - evaluate(theta - ek + em, beta)[0]
                    + evaluate(theta - ek - em, beta)[0]
                ) / (4 * delta**2)
            hess[k, m] = hess[m, k] = value
    for j, column in _beta_columns(problem, theta, beta, delta, g0, evaluate):
        hess[n_theta:, n_theta + j] = column
    block = hess[n_theta:, n_theta:]
    hess[n_theta:, n_theta:] = 0.5 * (block + block.T)
    problem.pirls(theta, beta)  # leave the warm start at the optimum
    return grad, hess


def _beta_columns(problem, theta, beta, delta, g0, evaluate):
    """The β columns of the Hessian by forward differences of the exact gradient: with a
    step of delta/10 the truncation error (~1e-5 relative) is below that of lme4's
    central differences of the deviance, at half the evaluations."""
    step = 0.1 * delta
    for j in range(beta.size):
        e = np.zeros(beta.size)
        e[j] = step
        yield j, (evaluate(theta, beta + e)[1] - g0) / step


def _derivatives_from_gradient(
    problem: GlmmProblem, theta: np.ndarray, beta: np.ndarray, lower: np.ndarray, delta: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`laplace_derivatives` when the whole gradient is exact (scalar terms):
    every Hessian column is a difference of gradients, 1 + 2·nθ + p evaluations."""
    n_theta = theta.size
    kernel = ScalarLaplace.of(problem)

    # the optimum's state: its modes and their β slopes start each β column's PIRLS
    centre = kernel.fixed(theta, beta) if kernel is not None else None

    def evaluate(th: np.ndarray, be: np.ndarray) -> tuple[float, np.ndarray]:
        start = None
        if centre is not None and np.array_equal(th, theta):  # a β column
            start = centre.u - centre.mode_slopes @ (be - beta)
        compiled = kernel.fixed(th, be, start) if kernel is not None else None
        if compiled is not None:
            return compiled.deviance, np.concatenate(
                [compiled.theta_gradient, compiled.beta_gradient]
            )
        state = problem.pirls(th, be, keep_factor=True)
        g_theta = theta_gradient(problem, th, state)
        return state.deviance, np.concatenate([g_theta, beta_gradient(problem, th, state)[0]])

    if centre is not None:
        g0 = np.concatenate([centre.theta_gradient, centre.beta_gradient])
    else:
        _, g0 = evaluate(theta, beta)
    n = g0.size
    hess = np.zeros((n, n))
    for k in range(n_theta):
        e = np.zeros(n_theta)
        e[k] = delta
        gp = evaluate(theta + e, beta)[1]
        if theta[k] - delta < lower[k]:  # one-sided at a bound
            hess[:, k] = (gp - g0) / delta
        else:
            hess[:, k] = (gp - evaluate(theta - e, beta)[1]) / (2 * delta)
    for j, column in _beta_columns(problem, theta, beta, delta, g0, evaluate):
        hess[n_theta:, n_theta + j] = column[n_theta:]
    # θ rows from the (central) θ columns; the β block symmetrized
    hess[:n_theta, :] = hess[:, :n_theta].T
    block = hess[n_theta:, n_theta:]
    hess[n_theta:, n_theta:] = 0.5 * (block + block.T)
    if centre is not None:  # leave the warm start at the optimum
        kernel.keep_modes(theta, centre)
    else:
        problem.pirls(theta, beta)
    return g0, hess


def stage2_step(theta: np.ndarray, beta_se: np.ndarray) -> np.ndarray:
    """First BOBYQA steps of a (θ, β) search started near the optimum: 10% of θ (at least
    0.05) and 0.3 standard errors of β, so that badly scaled coefficients are not overshot."""
    return np.concatenate([np.maximum(0.1 * np.abs(theta), 0.05), 0.3 * beta_se])
