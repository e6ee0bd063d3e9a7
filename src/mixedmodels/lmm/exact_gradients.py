"""The exact gradients of the profiled (RE)ML deviance in θ, compiled, for the models
whose deviance is one compiled call: one term of one or two columns
(:func:`single_term_gradient`, ``(1 | g)``, ``(x | g)``) and scalar terms, crossed or
nested, with a small dense tail (:func:`scalar_terms_gradient`, ``(1 | a) + (1 | b)``).

A gradient costs about two deviances, and the bounded quasi-Newton search of
:mod:`.compiled_search` reaches the optimum in ~15 of them, where BOBYQA takes 40-60
evaluations and its Python callback costs more than each of them.  Both gradients use
the envelope theorem for β̂ and σ̂: the deviance log|M| + log|S_XX| (REML) + dof log r²,
with M = ΛᵀZᵀZΛ + I and S = [X y]ᵀ[X y] − CᵀWC (C = Zᵀ[X y], W = ΛM⁻¹Λᵀ), moves along
θ_j by tr(M⁻¹∂M) − ⟨∂W, CGCᵀ⟩, G from :func:`_profiled_weights`.

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
>>> value, gradient = single_term_gradient(np.array([0.8, 0.1, 0.3]), kernel._A2, kernel._P,
...                                        kernel._XyXy, cp.n, True, 0.0)
>>> step = np.array([1e-6, 0.0, 0.0])
>>> numeric = (kernel.value(np.array([0.8, 0.1, 0.3]) + step, True)
...            - kernel.value(np.array([0.8, 0.1, 0.3]) - step, True)) / 2e-6
>>> bool(abs(gradient[0] - numeric) < 1e-4)
True
"""

from __future__ import annotations

import numpy as np

from ._kernels import _profiled_objective, njit, scalar_terms_factor, single_term_factor


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
def single_term_gradient(theta, A, P, XyXy, n, reml, sum_log_weights):
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
def _tail_modes_and_inverse(L22, R, lam):
    """The tail's modes U₂ = L₂₂⁻ᵀR of every column of [X y], B₂ = Λ₂U₂, and
    D⁻¹ = L₂₂⁻ᵀL₂₂⁻¹ (both triangles), from L₂₂⁻¹ formed row by row; every inner loop
    an axpy over contiguous memory, not a reduction (~3x faster at q₂ = 30)."""
    q2, s = R.shape
    inverse = np.zeros((q2, q2))  # L₂₂⁻¹, lower: row i = (e_i − Σ_k L_ik row k) / L_ii
    for i in range(q2):
        inverse[i, i] = 1.0
        for k in range(i):
            factor = L22[i, k]
            for j in range(k + 1):
                inverse[i, j] -= factor * inverse[k, j]
        diagonal = L22[i, i]
        for j in range(i + 1):
            inverse[i, j] /= diagonal
    U2 = np.zeros((q2, s))
    D_inverse = np.zeros((q2, q2))
    for k in range(q2):  # rank-one updates by the rows of L₂₂⁻¹
        for i in range(k + 1):
            factor = inverse[k, i]
            for c in range(s):
                U2[i, c] += factor * R[k, c]
            for j in range(i + 1):
                D_inverse[i, j] += factor * inverse[k, j]
    B2 = np.empty((q2, s))
    for i in range(q2):
        for c in range(s):
            B2[i, c] = lam[i] * U2[i, c]
        for j in range(i):
            D_inverse[j, i] = D_inverse[i, j]
    return U2, B2, D_inverse


@njit(cache=True, nogil=True)
def scalar_terms_gradient(
    theta, a, P, C1, indptr, rows, values, A22, C2, XyXy, tail_theta, n, reml, sum_log_weights
):
    """The profiled deviance of a model of scalar terms with a small dense tail and its
    exact gradient in θ (the arguments of
    :func:`~mixedmodels.lmm._kernels.scalar_terms_factor`); the numpy twin is
    :func:`mixedmodels.lmm.gradient.deviance_and_gradient`.

    With ∂Λ = E_j (the projector on term j's levels), ∂W = UE_jKᵀ + KE_jUᵀ for
    K = ΛM⁻¹, U = I − WA, so ⟨∂W, CGCᵀ⟩ = 2 Σ_{i∈j} (M⁻¹ΛC)_i G (Zᵀ(·) − ZᵀZΛM⁻¹ΛC)_iᵀ:
    the modes of every column of [X y] and their residuals' Zᵀ, from one backward
    solve.  tr(M⁻¹∂M) = 2 Σ_{i∈j} (AΛM⁻¹)_ii reads the diagonal of M⁻¹: 1/m_l plus the
    Schur correction θ₁²F_ll/m_l² on the first term (F = A₁₂Λ₂D⁻¹Λ₂A₂₁, summed over the
    non-zeros of A₂₁'s columns), (1 − D⁻¹_ii)/λ_i on the tail (0 at λ_i = 0, where
    the deviance is even in λ_i).

    Returns
    -------
    value : float, ``inf`` (and a zero gradient) when a block is not positive definite
    gradient : (len(θ),)
    """
    grad = np.zeros(theta.size)
    logdet, L22, R, L33, lam = scalar_terms_factor(
        theta, a, P, C1, indptr, rows, values, A22, C2, XyXy, tail_theta
    )
    if not np.isfinite(logdet):
        return np.inf, grad
    s = XyXy.shape[0]
    p = s - 1
    ell = a.shape[0]
    q2 = A22.shape[0]
    G = _profiled_weights(L33, n - p if reml else n, reml)[0]
    U2, B2, D_inverse = _tail_modes_and_inverse(L22, R, lam)
    scaled = np.empty(values.size)  # Λ₂A₂₁'s non-zeros
    for e in range(values.size):
        scaled[e] = values[e] * lam[rows[e]]
    t1 = theta[0]
    v = np.empty(s)
    first = 0.0
    for level in range(ell):
        m = 1.0 + t1 * t1 * a[level]
        start, stop = indptr[level], indptr[level + 1]
        for c in range(s):  # C₁ − A₁₂B₂ = mU₁/θ₁
            v[c] = C1[level, c]
        for e in range(start, stop):
            r, value = rows[e], values[e]
            for c in range(s):
                v[c] -= value * B2[r, c]
        weighted = 0.0  # U₁ᵀGU₁/θ₁ = θ₁vᵀGv/m²
        for b in range(s):
            for c in range(s):
                weighted += v[b] * G[b, c] * v[c]
        # F_ll = ‖L₂₂⁻¹Λ₂A₂₁[:, l]‖², from D⁻¹ on the pairs of the column's non-zeros
        schur = 0.0
        for e in range(start, stop):
            r = rows[e]
            pairs = 0.5 * scaled[e] * D_inverse[r, r]
            for f in range(start, e):
                pairs += scaled[f] * D_inverse[r, rows[f]]
            schur += 2.0 * scaled[e] * pairs
        first += 2.0 * t1 * (a[level] / m - (schur + weighted) / (m * m))
    grad[0] = first
    for i in range(q2):  # (2/λ_i)(1 − D⁻¹_ii − U_iᵀGU_i), 0 at λ_i = 0
        if lam[i] > 0.0:
            weighted = 0.0
            for b in range(s):
                for c in range(s):
                    weighted += U2[i, b] * G[b, c] * U2[i, c]
            grad[tail_theta[i]] += 2.0 * (1.0 - D_inverse[i, i] - weighted) / lam[i]
    return _profiled_objective(logdet, L33, n, reml, sum_log_weights), grad
