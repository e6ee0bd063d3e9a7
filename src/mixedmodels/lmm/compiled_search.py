"""A bounded quasi-Newton search on the exact gradient of the profiled deviance, run
whole inside compiled code, for the models whose gradient :mod:`.exact_gradients` has.

On these models an evaluation of the deviance costs a few µs compiled (sleepstudy ~1.5,
pupils' crossed terms ~15), and BOBYQA's own work and its Python callback cost as much
again for each of its 40-60 evaluations.  :func:`bounded_bfgs` reaches the optimum in
~15 gradients without leaving compiled code.  It refuses, for the caller to take
BOBYQA's path, wherever it is not sure: an estimate on a bound (a singular fit, whose
restarts BOBYQA's path owns), a failed line search or too many iterations.

The model is named by ``kind`` (:data:`SINGLE_TERM`, :data:`SCALAR_TERMS`) and its arrays
passed as two tuples, the unused one empty (:func:`no_single_term`,
:func:`no_scalar_terms`): numba caches a function only while its arguments are arrays and
numbers, not the gradient itself.

Examples
--------
>>> import numpy as np, pandas as pd
>>> import mixedmodels as mm
>>> from mixedmodels.lmm.crossed_kernel import scalar_terms_kernel
>>> rng = np.random.default_rng(3)
>>> a, b = rng.integers(0, 30, 400), rng.integers(0, 8, 400)
>>> y = rng.normal(size=400) + rng.normal(size=30)[a] + rng.normal(size=8)[b]
>>> cp = mm.lmer("y ~ 1 + (1 | a) + (1 | b)", pd.DataFrame({"y": y, "a": a, "b": b})).crossprods
>>> theta, value, gradient, evaluations, status = scalar_terms_kernel(cp).search(
...     cp.initial_theta(), cp.lower_bounds(), True)
>>> bool(status == CONVERGED and np.max(np.abs(gradient)) < 1e-4)
True
"""

from __future__ import annotations

import numpy as np

from ._kernels import njit
from .exact_gradients import scalar_terms_gradient, single_term_gradient

#: the search's statuses
CONVERGED, NOT_CONVERGED, ON_BOUND, FAILED = 0, 1, 2, 3
#: the models: one term of one or two columns; scalar terms with a small dense tail
SINGLE_TERM, SCALAR_TERMS = 0, 1
#: a projected gradient below this times max(1, |deviance|) in every coordinate ends the
#: search: the deviance is then within ~1e-12 of its minimum (sleepstudy: the gradient's
#: rounding floor is ~1e-6 on a deviance of 1744)
GRADIENT_TOLERANCE = 1e-8
#: a line search that finds no decrease ends the search as converged when the gradient is
#: below this (relative, as above): the step is then below the deviance's rounding
NOISE_TOLERANCE = 1e-6
#: a trial point within this times max(1, |deviance|) above the current one (the
#: deviance's rounding: pupils' values jitter by 6e-15 of it) whose gradient passes
#: :data:`GRADIENT_TOLERANCE` ends the search there, where the line search would halve
ROUNDING = 1e-13
#: the largest change of a θ in the first step (steepest descent, before any curvature)
FIRST_STEP = 0.5
#: the most quasi-Newton iterations, and halvings of one line search
MAX_ITERATIONS, MAX_HALVINGS = 200, 30


def no_single_term() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The empty arrays of :func:`single_term_gradient`, for a search of another kind."""
    return np.zeros((0, 0)), np.zeros((0, 0)), np.zeros((0, 0))


def no_scalar_terms() -> tuple[np.ndarray, ...]:
    """The empty arrays of :func:`scalar_terms_gradient`, for a search of another kind."""
    index = np.zeros(0, dtype=np.int64)
    empty = np.zeros((0, 0))
    return np.zeros(0), empty, empty, index, index, np.zeros(0), empty, empty, empty, index


@njit(cache=True, nogil=True, inline="always")
def _value_and_gradient(theta, kind, single, crossed, n, reml, sum_log_weights):
    """The deviance and gradient of the model ``kind`` names, from its tuple of arrays."""
    if kind == SINGLE_TERM:
        A, P, XyXy = single
        return single_term_gradient(theta, A, P, XyXy, n, reml, sum_log_weights)
    a, P, C1, indptr, rows, values, A22, C2, XyXy, tail_theta = crossed
    return scalar_terms_gradient(
        theta, a, P, C1, indptr, rows, values, A22, C2, XyXy, tail_theta, n, reml,
        sum_log_weights,
    )  # fmt: skip


@njit(cache=True, nogil=True, inline="always")
def _free_gradient_size(x, g, lower):
    """The largest |g_j| over the coordinates not held on their bound (a θ on its lower
    bound with an outward gradient is held)."""
    largest = 0.0
    for j in range(x.size):
        if not (x[j] <= lower[j] and g[j] > 0.0):
            largest = max(largest, abs(g[j]))
    return largest


@njit(cache=True, nogil=True, inline="always")
def _step_to_bound(x, d, lower, step):
    """The step along d, at most ``step``, that stops at the first bound reached; a
    coordinate on its bound moving outward is held (its d set to 0).  Projecting a longer
    step instead bends the path into the steep wall of a vanishing variance, where the
    line search halves many times."""
    for j in range(x.size):
        if d[j] < 0.0:
            if x[j] <= lower[j]:
                d[j] = 0.0
            else:
                step = min(step, (x[j] - lower[j]) / -d[j])
    return step


@njit(cache=True, nogil=True)
def bounded_bfgs(theta0, lower, kind, single, crossed, n, reml, sum_log_weights):
    """Minimize the profiled deviance of the model ``kind`` names from ``theta0`` subject to
    ``θ ≥ lower``: BFGS on the inverse Hessian, the coordinates on a bound with an
    outward gradient held, each step stopped at the first bound it reaches, backtracking
    (Armijo) line searches.

    Returns
    -------
    theta, value, gradient, evaluations, status
        status :data:`CONVERGED`, :data:`NOT_CONVERGED` (iterations or line search ran
        out), :data:`ON_BOUND` (converged with a θ on its bound) or :data:`FAILED`
        (not finite at the start).
    """
    k = theta0.size
    x = np.maximum(theta0, lower)
    f, g = _value_and_gradient(x, kind, single, crossed, n, reml, sum_log_weights)
    evaluations = 1
    if not np.isfinite(f):
        return x, f, g, evaluations, FAILED
    H = np.eye(k)
    first = True
    for _ in range(MAX_ITERATIONS):
        held = (x <= lower) & (g > 0.0)
        largest = _free_gradient_size(x, g, lower)
        scale = max(1.0, abs(f))
        if largest < GRADIENT_TOLERANCE * scale:
            return x, f, g, evaluations, ON_BOUND if np.any(x <= lower) else CONVERGED
        d = np.zeros(k)
        for i in range(k):
            if not held[i]:
                for j in range(k):
                    if not held[j]:
                        d[i] -= H[i, j] * g[j]
        step = _step_to_bound(x, d, lower, min(1.0, FIRST_STEP / largest) if first else 1.0)
        if np.dot(d, g) >= 0.0:  # not a descent direction: restart from steepest descent
            H = np.eye(k)
            d = np.where(held, 0.0, -g)
            step = _step_to_bound(x, d, lower, min(1.0, FIRST_STEP / largest))
        # at the rounding floor a decrease may not be found: few halvings tell
        halvings = MAX_HALVINGS if largest >= NOISE_TOLERANCE * scale else 8
        for _ in range(halvings):
            trial = np.maximum(x + step * d, lower)
            f_trial, g_trial = _value_and_gradient(
                trial, kind, single, crossed, n, reml, sum_log_weights
            )
            evaluations += 1
            if not np.isfinite(f_trial):
                step *= 0.5
                continue
            if f_trial <= f + 1e-4 * np.dot(g, trial - x) or (
                f_trial <= f + ROUNDING * scale
                and _free_gradient_size(trial, g_trial, lower) < GRADIENT_TOLERANCE * scale
            ):
                break
            step *= 0.5
        else:
            if largest < NOISE_TOLERANCE * scale:
                return x, f, g, evaluations, ON_BOUND if np.any(x <= lower) else CONVERGED
            return x, f, g, evaluations, NOT_CONVERGED
        s = trial - x
        y = g_trial - g
        sy = np.dot(s, y)
        if sy > 1e-12 * np.sqrt(np.dot(s, s) * np.dot(y, y)):
            if first:  # scale the first inverse Hessian to the curvature seen
                H = np.eye(k) * (sy / np.dot(y, y))
            rho = 1.0 / sy
            Hy = H @ y
            H += (rho * rho * np.dot(y, Hy) + rho) * np.outer(s, s)
            H -= rho * (np.outer(Hy, s) + np.outer(s, Hy))
        first = False
        x, f, g = trial, f_trial, g_trial
    return x, f, g, evaluations, NOT_CONVERGED


@njit(cache=True, nogil=True)
def gradient_hessian(theta, lower, delta, kind, single, crossed, n, reml, sum_log_weights):
    """The Hessian at θ by central differences of the exact gradient (forward next to a
    bound), symmetrized: :func:`mixedmodels.lmm.gradient_search.gradient_derivatives` in one
    compiled call (the 2 len(θ) gradients of lme4's convergence check)."""
    k = theta.size
    hess = np.empty((k, k))
    for i in range(k):
        up = theta.copy()
        up[i] += delta
        g_up = _value_and_gradient(up, kind, single, crossed, n, reml, sum_log_weights)[1]
        down = theta.copy()
        if theta[i] - delta < lower[i]:
            g_down = _value_and_gradient(down, kind, single, crossed, n, reml, sum_log_weights)[1]
            width = delta
        else:
            down[i] -= delta
            g_down = _value_and_gradient(down, kind, single, crossed, n, reml, sum_log_weights)[1]
            width = 2.0 * delta
        for j in range(k):
            hess[j, i] = (g_up[j] - g_down[j]) / width
    return 0.5 * (hess + hess.T)


#: the step of :func:`gradient_hessian`'s differences, as
#: :func:`~mixedmodels.lmm.gradient_search.gradient_derivatives` takes
HESSIAN_STEP = 1e-5


def _arrays_of(kind: int, arrays: tuple[np.ndarray, ...]) -> tuple[tuple, tuple]:
    if kind == SINGLE_TERM:
        return arrays, no_scalar_terms()
    return no_single_term(), arrays


def search(
    theta0: np.ndarray,
    lower: np.ndarray,
    kind: int,
    model: tuple[tuple[np.ndarray, ...], int, float],
    reml: bool,
) -> tuple[np.ndarray, float, np.ndarray, int, int]:
    """:func:`bounded_bfgs` on the model ``kind`` names, ``model`` its (arrays, n,
    sum of log weights): θ, value, gradient, evaluations, status."""
    arrays, n, sum_log_weights = model
    single, crossed = _arrays_of(kind, arrays)
    theta, value, gradient, evaluations, status = bounded_bfgs(
        np.asarray(theta0, dtype=float), np.asarray(lower, dtype=float), kind, single,
        crossed, n, reml, sum_log_weights,
    )  # fmt: skip
    return theta, float(value), gradient, int(evaluations), int(status)


def hessian(
    theta: np.ndarray,
    lower: np.ndarray,
    kind: int,
    model: tuple[tuple[np.ndarray, ...], int, float],
    reml: bool,
) -> np.ndarray:
    """:func:`gradient_hessian` at θ on the model ``kind`` names (as :func:`search`)."""
    arrays, n, sum_log_weights = model
    single, crossed = _arrays_of(kind, arrays)
    return gradient_hessian(
        np.asarray(theta, dtype=float), np.asarray(lower, dtype=float), HESSIAN_STEP, kind,
        single, crossed, n, reml, sum_log_weights,
    )  # fmt: skip
