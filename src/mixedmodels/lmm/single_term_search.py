"""The fit of a one-term model (``(1 | g)``, ``(x | g)``) as one compiled call: the exact
gradient of its profiled deviance and a bounded quasi-Newton search on it.

On these models an evaluation of the deviance is ~1.5 µs compiled (sleepstudy), and
BOBYQA's own work and its Python callback cost three times that for each of its ~60
evaluations.  :func:`single_term_search` runs the whole search inside compiled code on the
exact gradient (:func:`deviance_gradient`, about two deviances), reaching the optimum in
~15 gradients.  It refuses, for the caller to take BOBYQA's path, wherever it is not sure:
an estimate on a bound (a singular fit, whose restarts BOBYQA's path owns), a failed line
search or too many iterations.

Examples
--------
>>> import numpy as np, pandas as pd
>>> import mixedmodels as mm
>>> from mixedmodels.lmm.deviance import _single_term_kernel
>>> rng = np.random.default_rng(2)
>>> g = np.repeat(np.arange(20), 6)
>>> x = rng.normal(size=120)
>>> y = x + rng.normal(size=20)[g] + 0.5 * rng.normal(size=20)[g] * x + rng.normal(size=120)
>>> cp = mm.lmer("y ~ x + (x | g)", pd.DataFrame({"y": y, "x": x, "g": g})).crossprods
>>> kernel = _single_term_kernel(cp)
>>> theta, value, gradient, evaluations, status = kernel.search(cp.initial_theta(),
...                                                              cp.lower_bounds(), True)
>>> bool(status == 0 and np.max(np.abs(gradient)) < 1e-4)
True
"""

from __future__ import annotations

import numpy as np

from ._kernels import njit, single_term_factor

#: the search's statuses
CONVERGED, NOT_CONVERGED, ON_BOUND, FAILED = 0, 1, 2, 3
#: a projected gradient below this times max(1, |deviance|) in every coordinate ends the
#: search: the deviance is then within ~1e-12 of its minimum (sleepstudy: the gradient's
#: rounding floor is ~1e-6 on a deviance of 1744)
GRADIENT_TOLERANCE = 1e-8
#: a line search that finds no decrease ends the search as converged when the gradient is
#: below this (relative, as above): the step is then below the deviance's rounding
NOISE_TOLERANCE = 1e-6
#: the largest change of a θ in the first step (steepest descent, before any curvature)
FIRST_STEP = 0.5
#: the most quasi-Newton iterations, and halvings of one line search
MAX_ITERATIONS, MAX_HALVINGS = 200, 30


@njit(cache=True, nogil=True, inline="always")
def _profiled_weights(L, dof, reml):
    """G with Σ_l ⟨∂W_l, C_l G C_lᵀ⟩ the part of the gradient through [X y]: S_XX⁻¹ padded
    (REML) + (dof/r²) ccᵀ with c = (−β̂, 1), from the factor L of S; and log|L_XX|."""
    s = L.shape[0]
    p = s - 1
    r2 = L[p, p] * L[p, p]
    c = np.zeros(s)
    c[p] = 1.0
    for i in range(p - 1, -1, -1):  # L_XXᵀβ = L_yX by back substitution
        v = L[p, i]
        for k in range(i + 1, p):
            v -= L[k, i] * c[k]
        c[i] = v / L[i, i]
    for i in range(p):
        c[i] = -c[i]
    G = np.empty((s, s))
    for i in range(s):
        for j in range(s):
            G[i, j] = dof / r2 * c[i] * c[j]
    logdet_x = 0.0
    if reml:  # S_XX⁻¹ = L_XX⁻ᵀL_XX⁻¹ from the inverse of the lower factor
        Li = np.zeros((p, p))
        for j in range(p):
            Li[j, j] = 1.0 / L[j, j]
            for i in range(j + 1, p):
                v = 0.0
                for k in range(j, i):
                    v -= L[i, k] * Li[k, j]
                Li[i, j] = v / L[i, i]
        for i in range(p):
            logdet_x += np.log(L[i, i])
            for j in range(p):
                v = 0.0
                for k in range(max(i, j), p):
                    v += Li[k, i] * Li[k, j]
                G[i, j] += v
    return G, logdet_x, r2


@njit(cache=True, nogil=True)
def deviance_gradient(theta, A, P, XyXy, n, reml, sum_log_weights):
    """The profiled deviance of a one-term model and its exact gradient in θ.

    With M_l = ΛᵀA_lΛ + I, W_l = ΛM_l⁻¹Λᵀ and S = [X y]ᵀ[X y] − Σ_l C_lᵀW_lC_l (what
    :func:`~mixedmodels.lmm._kernels.single_term_factor` factors), the deviance is
    Σ log|M_l| + log|S_XX| (REML) + dof log r².  Along θ_j it moves by
    Σ_l tr(M_l⁻¹∂M_l) − Σ_l ⟨∂W_l, C_l G C_lᵀ⟩ (β̂ and σ profiled: the envelope
    theorem; G from :func:`_profiled_weights`).  For ∂Λ = e_r e_cᵀ, K = ΛM⁻¹ and B = AΛ,
    ∂W = u k_cᵀ + k_c uᵀ with u = e_r − K B[r]ᵀ, and ⟨∂W_l, C_l G C_lᵀ⟩ reads the same
    per-level products P as the deviance.

    Returns
    -------
    value : float, ``inf`` (and a zero gradient) when a block is not positive definite
    gradient : (len(θ),)
    """
    grad = np.zeros(theta.size)
    logdet_z, L = single_term_factor(theta, A, P, XyXy)
    if not np.isfinite(logdet_z):
        return np.inf, grad
    s = XyXy.shape[0]
    p = s - 1
    ell = A.shape[1]
    dof = n - p if reml else n
    G, logdet_x, r2 = _profiled_weights(L, dof, reml)
    Gf = G.reshape(s * s)
    if A.shape[0] == 1:
        t = theta[0]
        for level in range(ell):
            m = 1.0 + t * t * A[0, level]
            q = 0.0
            for j in range(s * s):
                q += P[level, j] * Gf[j]
            grad[0] += 2.0 * t * A[0, level] / m - 2.0 * t / (m * m) * q
    else:
        t0, t1, t2 = theta[0], theta[1], theta[2]
        for level in range(ell):
            a00, a10, a11 = A[0, level], A[1, level], A[2, level]
            m00 = t0 * t0 * a00 + 2.0 * t0 * t1 * a10 + t1 * t1 * a11 + 1.0
            m01 = t0 * t2 * a10 + t1 * t2 * a11
            m11 = t2 * t2 * a11 + 1.0
            reciprocal = 1.0 / (m00 * m11 - m01 * m01)
            n00, n01, n11 = m11 * reciprocal, -m01 * reciprocal, m00 * reciprocal
            q0, q1, q2 = 0.0, 0.0, 0.0
            for j in range(s * s):
                q0 += P[level, j] * Gf[j]
                q1 += P[ell + level, j] * Gf[j]
                q2 += P[2 * ell + level, j] * Gf[j]
            k00, k01 = t0 * n00, t0 * n01  # K = ΛM⁻¹
            k10, k11 = t1 * n00 + t2 * n01, t1 * n01 + t2 * n11
            b00, b01 = a00 * t0 + a10 * t1, a10 * t2  # B = AΛ
            b10, b11 = a10 * t0 + a11 * t1, a11 * t2
            for index in range(3):  # θ₀, θ₁, θ₂ at (r, c) = (0, 0), (1, 0), (1, 1)
                r = 0 if index == 0 else 1
                br0, br1 = (b00, b01) if r == 0 else (b10, b11)
                nc0, nc1 = (n00, n01) if index < 2 else (n01, n11)
                kc0, kc1 = (k00, k10) if index < 2 else (k01, k11)
                u0 = (1.0 if r == 0 else 0.0) - (k00 * br0 + k01 * br1)
                u1 = (1.0 if r == 1 else 0.0) - (k10 * br0 + k11 * br1)
                dw = 2.0 * u0 * kc0 * q0 + (u0 * kc1 + u1 * kc0) * q1 + 2.0 * u1 * kc1 * q2
                grad[index] += 2.0 * (nc0 * br0 + nc1 * br1) - dw
    if reml:
        value = logdet_z + 2.0 * logdet_x + dof * (1.0 + np.log(2.0 * np.pi * r2 / dof))
    else:
        value = logdet_z + n * (1.0 + np.log(2.0 * np.pi * r2 / n))
    return value - sum_log_weights, grad


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
def single_term_search(theta0, lower, A, P, XyXy, n, reml, sum_log_weights):
    """Minimize the profiled deviance of a one-term model from ``theta0`` subject to
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
    f, g = deviance_gradient(x, A, P, XyXy, n, reml, sum_log_weights)
    evaluations = 1
    if not np.isfinite(f):
        return x, f, g, evaluations, FAILED
    H = np.eye(k)
    first = True
    for _ in range(MAX_ITERATIONS):
        held = (x <= lower) & (g > 0.0)
        largest = 0.0
        for j in range(k):
            if not held[j]:
                largest = max(largest, abs(g[j]))
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
            f_trial, g_trial = deviance_gradient(trial, A, P, XyXy, n, reml, sum_log_weights)
            evaluations += 1
            if np.isfinite(f_trial) and f_trial <= f + 1e-4 * np.dot(g, trial - x):
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
def gradient_hessian(theta, lower, delta, A, P, XyXy, n, reml, sum_log_weights):
    """The Hessian at θ by central differences of the exact gradient (forward next to a
    bound), symmetrized: :func:`mixedmodels.lmm.gradient_search.gradient_derivatives` in one
    compiled call (the 2 len(θ) gradients of lme4's convergence check)."""
    k = theta.size
    hess = np.empty((k, k))
    for i in range(k):
        up = theta.copy()
        up[i] += delta
        g_up = deviance_gradient(up, A, P, XyXy, n, reml, sum_log_weights)[1]
        down = theta.copy()
        if theta[i] - delta < lower[i]:
            g_down = deviance_gradient(down, A, P, XyXy, n, reml, sum_log_weights)[1]
            width = delta
        else:
            down[i] -= delta
            g_down = deviance_gradient(down, A, P, XyXy, n, reml, sum_log_weights)[1]
            width = 2.0 * delta
        for j in range(k):
            hess[j, i] = (g_up[j] - g_down[j]) / width
    return 0.5 * (hess + hess.T)
