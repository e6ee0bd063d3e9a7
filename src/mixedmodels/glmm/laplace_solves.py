"""Solves with the factor of a scalar-term Laplace state (:mod:`.scalar_laplace`): the
first term's levels a diagonal M₁, eliminated into the lower Cholesky factor of the Schur
complement S of ``[tail, X, z]``; ``Bf`` stacks [ΛA₂₁Λ₁; Λ₁C₁ᵀ].  The modes of the PLS
system, the pieces of P⁻¹ the gradients need, P⁻¹ times a vector and (L_XX L_XXᵀ)⁻¹."""

from __future__ import annotations

import numpy as np

from ..lmm._kernels import FAST_MATH, njit


@njit(cache=True, nogil=True, fastmath=FAST_MATH)
def pls_modes(Bf, M, S, p):
    """P⁻¹ΛᵀZᵀW[X z], stacked (q, p + 1) over the first term's levels and the tail, and
    the PLS β."""
    ell1 = M.size
    q2 = S.shape[0] - p - 1
    modes = np.empty((ell1 + q2, p + 1))
    for j in range(p + 1):  # the tail: L₂₂ᵀ x = L₃₂[j]
        for a in range(q2 - 1, -1, -1):
            v = S[q2 + j, a]
            for c in range(a + 1, q2):
                v -= S[c, a] * modes[ell1 + c, j]
            modes[ell1 + a, j] = v / S[a, a]
    first = np.empty((p + 1, ell1))  # M₁⁻¹(Λ₁C₁ − BᵀX₂), level-contiguous
    for j in range(p + 1):
        for level in range(ell1):
            first[j, level] = Bf[q2 + j, level]
        for a in range(q2):
            x = modes[ell1 + a, j]
            for level in range(ell1):
                first[j, level] -= Bf[a, level] * x
        for level in range(ell1):
            modes[level, j] = first[j, level] / M[level]
    beta = np.empty(p)  # L_XXᵀ β = L_zX
    for j in range(p - 1, -1, -1):
        v = S[q2 + p, q2 + j]
        for k in range(j + 1, p):
            v -= S[q2 + k, q2 + j] * beta[k]
        beta[j] = v / S[q2 + j, q2 + j]
    return modes, beta


@njit(cache=True, nogil=True, fastmath=FAST_MATH)
def inverse_pieces(Bf, M, S, q2):
    """diag P⁻¹₁₁, F (P⁻¹₁₂ = −Fᵀ) and G = P⁻¹₂₂ from the factor, by substitutions that
    run along the first term's levels."""
    ell1 = M.size
    diag11 = 1.0 / M
    K = np.empty((q2, ell1))  # L₂₂⁻¹BM₁⁻¹
    for a in range(q2):
        row = K[a]
        for level in range(ell1):
            row[level] = Bf[a, level] / M[level]
        for c in range(a):
            f = S[a, c]
            for level in range(ell1):
                row[level] -= f * K[c, level]
        inverse = 1.0 / S[a, a]
        for level in range(ell1):
            row[level] *= inverse
            diag11[level] += row[level] * row[level]
    F = K.copy()  # L₂₂⁻ᵀK
    for a in range(q2 - 1, -1, -1):
        row = F[a]
        for c in range(a + 1, q2):
            f = S[c, a]
            for level in range(ell1):
                row[level] -= f * F[c, level]
        inverse = 1.0 / S[a, a]
        for level in range(ell1):
            row[level] *= inverse
    lower = np.zeros((q2, q2))  # L₂₂⁻¹
    for a in range(q2):
        lower[a, a] = 1.0 / S[a, a]
        for b in range(a):
            v = 0.0
            for c in range(b, a):
                v -= S[a, c] * lower[c, b]
            lower[a, b] = v / S[a, a]
    G = np.zeros((q2, q2))
    for a in range(q2):
        for b in range(a + 1):
            v = 0.0
            for c in range(a, q2):
                v += lower[c, a] * lower[c, b]
            G[a, b] = v
            G[b, a] = v
    return diag11, F, G


@njit(cache=True, nogil=True, fastmath=FAST_MATH)
def solve_p(rhs, Bf, M, S, q2):
    """P⁻¹ rhs by block elimination (``gradient._ScalarInverse.solve``)."""
    ell1 = M.size
    x = np.empty(rhs.size)
    for level in range(ell1):
        x[level] = rhs[level] / M[level]
    r = np.empty(q2)
    for a in range(q2):
        v = rhs[ell1 + a]
        for level in range(ell1):
            v -= Bf[a, level] * x[level]
        for c in range(a):
            v -= S[a, c] * r[c]
        r[a] = v / S[a, a]
    for a in range(q2 - 1, -1, -1):
        v = r[a]
        for c in range(a + 1, q2):
            v -= S[c, a] * x[ell1 + c]
        x[ell1 + a] = v / S[a, a]
    inverse = 1.0 / M
    for a in range(q2):
        xa = x[ell1 + a]
        for level in range(ell1):
            x[level] -= Bf[a, level] * xa * inverse[level]
    return x


@njit(cache=True, nogil=True, fastmath=FAST_MATH)
def solve_fixed_block(S, q2, p, rhs):
    """(L_XX L_XXᵀ)⁻¹ rhs with L_XX the X block of the factored S."""
    x = np.empty(p)
    for j in range(p):
        v = rhs[j]
        for k in range(j):
            v -= S[q2 + j, q2 + k] * x[k]
        x[j] = v / S[q2 + j, q2 + j]
    for j in range(p - 1, -1, -1):
        v = x[j]
        for k in range(j + 1, p):
            v -= S[q2 + k, q2 + j] * x[k]
        x[j] = v / S[q2 + j, q2 + j]
    return x


@njit(cache=True, nogil=True, fastmath=FAST_MATH)
def modes_at(modes, beta):
    """The stacked PLS modes with the fixed effects at β: ``modes[:, p] − modes[:, :p] β``."""
    p = beta.size
    u = np.empty(modes.shape[0])
    for k in range(modes.shape[0]):
        v = modes[k, p]
        for j in range(p):
            v -= modes[k, j] * beta[j]
        u[k] = v
    return u
