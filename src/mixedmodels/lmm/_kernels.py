"""Compiled (numba) kernels for the per-step passes over the rows that PIRLS repeats.

Each kernel has a numpy twin elsewhere in the package (used when numba is missing): the
kernels fuse the twin's array calls into one loop with the same formulas, so the two
agree to rounding, and tests/test_kernels.py compares them.  numba compiles on first
use and caches the machine code beside this file.

numba itself is imported at the first call of a kernel, not with the package: its import
was most of ``import mixedmodels``'s time, and a session that only builds designs, reads
results or plots never calls a kernel.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

HAVE_NUMBA = importlib.util.find_spec("numba") is not None

#: one-term models with more levels than this take the numpy twin of the compiled kernel.
#: Per evaluation (2 cores, idle; a (x | g) term) compiled / numpy: 18 levels 3 / 56 µs,
#: 1,000 levels 20 / 105 µs, 10,000 levels 216 / 337 µs, 20,000 levels 407 / 568 µs: above
#: a few thousand levels both are bound by memory and a fit's ~60 evaluations gain ~10 ms,
#: less than loading numba costs a process (~0.7 s the first time, ~100 MB of peak memory;
#: the 1M-row (x | g) benchmark, 20,000 groups: 437 -> 334 MB)
COMPILED_LEVELS = 5000

#: the largest dense tail the compiled loop of :mod:`.crossed_kernel` factors: its loops
#: run at a fraction of BLAS's speed, which overtakes them near q₂ = 100.  Per evaluation
#: (2 cores, idle; compiled / numpy): pupils (q₂ = 30, 50 x 30) 22 / 100 µs; random
#: designs q₂ = 60 with 300 levels first ~100 / ~200 µs, q₂ = 100 with 1,000
#: ~280 / ~270 µs, q₂ = 150 495 / 397 µs
COMPILED_TAIL = 80

#: numba's ``fastmath`` flags of the kernels whose reductions may be reordered
#: (vectorized); no finite-math assumption, since the kernels test for non-finite values
FAST_MATH = {"reassoc", "contract", "nsz"}


def njit(**options: Any) -> Callable[[Callable], Callable]:
    """``numba.njit(**options)``, applied at the kernel's first call.

    The compiled function then replaces the stand-in in its module, so later calls through
    the module (``_kernels.single_term_factor(...)``), and kernels that call it, go
    straight to the machine code.  Without numba the kernel runs as plain Python.
    """

    def wrap(function: Callable) -> Callable:
        @functools.wraps(function)
        def first_call(*args: Any) -> Any:
            return _compiled(first_call)(*args)

        first_call.numba_options = options  # type: ignore[attr-defined]
        return first_call

    return wrap


def _compiled(stand_in: Any) -> Callable:
    """The machine code behind a stand-in of :func:`njit`, compiling it (and first the
    kernels it calls, which numba must see compiled) on the first call."""
    compiled = getattr(stand_in, "compiled", None)
    if compiled is not None:
        return compiled
    function = stand_in.__wrapped__
    namespace = function.__globals__
    for name in function.__code__.co_names:
        callee = namespace.get(name)
        if hasattr(callee, "numba_options"):  # a kernel of this or another module
            namespace[name] = _compiled(callee)
    if HAVE_NUMBA:
        import numba

        compiled = numba.njit(**stand_in.numba_options)(function)
    else:  # pragma: no cover - numba is a declared dependency
        compiled = function
    stand_in.compiled = compiled
    if namespace.get(function.__name__) is stand_in:
        namespace[function.__name__] = compiled
    return compiled


@njit(cache=True, nogil=True)
def scalar_term_blocks(codes1, z1, tail_columns, tail_values, Xz, w, n_levels1, q2):
    """The weighted cross-product blocks of ``[Z X z]`` when every random-effects term
    is scalar, in one pass over the rows.

    Parameters
    ----------
    codes1, z1 : (n,) level and value of the first (largest) term
    tail_columns, tail_values : (n, T) column in the tail (term offset + level) and value
        of each later term
    Xz : (n, m) the fixed-effects columns and the working response
    w : (n,) working weights
    n_levels1, q2 : sizes of the first term and of the tail

    Returns
    -------
    A11 (ℓ₁,), C1 (ℓ₁, m), A21 (q₂, ℓ₁), A22 (q₂, q₂), C2 (q₂, m); [X z]ᵀW[X z] is
    left to BLAS.
    """
    n, m = Xz.shape
    n_tail = tail_columns.shape[1]
    A11 = np.zeros(n_levels1)
    C1 = np.zeros((n_levels1, m))
    A21 = np.zeros((q2, n_levels1))
    A22 = np.zeros((q2, q2))
    C2 = np.zeros((q2, m))
    wx = np.empty(m)
    for i in range(n):
        wi = w[i]
        level = codes1[i]
        wz1 = wi * z1[i]
        A11[level] += wz1 * z1[i]
        for a in range(m):
            wx[a] = wi * Xz[i, a]
            C1[level, a] += z1[i] * wx[a]
        for t in range(n_tail):
            column = tail_columns[i, t]
            zt = tail_values[i, t]
            A21[column, level] += wz1 * zt
            for a in range(m):
                C2[column, a] += zt * wx[a]
            A22[column, column] += wi * zt * zt
            for s in range(t):
                other = tail_columns[i, s]
                value = wi * zt * tail_values[i, s]
                A22[column, other] += value
                A22[other, column] += value
    return A11, C1, A21, A22, C2


@njit(cache=True, nogil=True)
def first_term_blocks(codes, Z, Zw, Xy, w, n_levels):
    """Z₁ᵀZ₁ per level (ℓ, k, k) and Z₁ᵀ[X y] per level (ℓ, k, m) in one pass over the
    rows: the products ``crossprods._block_diagonal_crossprod`` and
    ``_level_crossprod`` form, (z_a z_b) w and (z_a √w)(xy_c √w), added per level in row
    order as their bincounts add them (so the same sums, bit for bit).

    Parameters
    ----------
    codes : (n,) levels; Z : (n, k) the term's columns; Zw : (n, k) Z √w (Z unweighted)
    Xy : (n, m) [X y], weighted by √w; w : (n,) weights, or (0,) for none
    """
    n, k = Z.shape
    m = Xy.shape[1]
    A11 = np.zeros((n_levels, k, k))
    C1 = np.zeros((n_levels, k, m))
    weighted = w.size > 0
    for i in range(n):
        level = codes[i]
        for a in range(k):
            for b in range(a, k):
                product = Z[i, a] * Z[i, b]
                A11[level, a, b] += product * w[i] if weighted else product
            for c in range(m):
                C1[level, a, c] += Zw[i, a] * Xy[i, c]
    for level in range(n_levels):
        for a in range(k):
            for b in range(a + 1, k):
                A11[level, b, a] = A11[level, a, b]
    return A11, C1


#: a running product of determinants is folded into the log before it leaves this range
_PRODUCT_LIMIT = 1e150


@njit(cache=True, nogil=True, inline="always")
def _log_accumulate(logdet, product, value):
    """Add log(value) to ``logdet + log(product)``: values are multiplied into
    ``product`` and one log taken when it leaves [1/limit, limit] (a log per level cost
    a third of a 20,000-level evaluation)."""
    if value > _PRODUCT_LIMIT or value < 1.0 / _PRODUCT_LIMIT:
        return logdet + np.log(value), product
    product *= value
    if product > _PRODUCT_LIMIT or product < 1.0 / _PRODUCT_LIMIT:
        return logdet + np.log(product), 1.0
    return logdet, product


@njit(cache=True, nogil=True)
def single_term_factor(theta, A, P, XyXy):
    """log|L_Z|² and the lower Cholesky factor L₃₃ of a model with one random-effects
    term of one or two columns, from the per-level linear maps of
    :class:`mixedmodels.lmm.deviance._SingleTermKernel` (the numpy twin of this loop).

    Parameters
    ----------
    theta : (1,) or (3,) relative covariance factor entries
    A : (1, ℓ) for k = 1 (the A_l), or (3, ℓ) for k = 2 (a00, a10, a11 per level)
    P : (ℓ, s²) or (3ℓ, s²) per-level products of Zᵀ[X y] (s = p + 1)
    XyXy : (s, s)

    Returns
    -------
    logdet : float, or NaN when a block is not positive definite
    L33 : (s, s)
    """
    s = XyXy.shape[0]
    ell = A.shape[1]
    S = XyXy.copy().reshape(s * s)
    logdet = 0.0
    if A.shape[0] == 1:
        t2 = theta[0] * theta[0]
        product = 1.0
        for level in range(ell):
            m = 1.0 + t2 * A[0, level]
            logdet, product = _log_accumulate(logdet, product, m)
            w = t2 / m
            for j in range(s * s):
                S[j] -= w * P[level, j]
    else:
        t0, t1, t2 = theta[0], theta[1], theta[2]
        product = 1.0
        for level in range(ell):
            a00, a10, a11 = A[0, level], A[1, level], A[2, level]
            m00 = t0 * t0 * a00 + 2.0 * t0 * t1 * a10 + t1 * t1 * a11 + 1.0
            m01 = t0 * t2 * a10 + t1 * t2 * a11
            m11 = t2 * t2 * a11 + 1.0
            det = m00 * m11 - m01 * m01
            if det <= 0.0 or m00 <= 0.0:
                return np.nan, np.zeros((s, s))
            logdet, product = _log_accumulate(logdet, product, det)
            reciprocal = 1.0 / det
            i00, i01, i11 = m11 * reciprocal, -m01 * reciprocal, m00 * reciprocal
            w0 = t0 * t0 * i00
            w1 = t0 * t1 * i00 + t0 * t2 * i01
            w2 = t1 * t1 * i00 + 2.0 * t1 * t2 * i01 + t2 * t2 * i11
            for j in range(s * s):
                S[j] -= w0 * P[level, j] + w1 * P[ell + level, j] + w2 * P[2 * ell + level, j]
    logdet += np.log(product)
    S33 = S.reshape(s, s)
    L = np.zeros((s, s))
    for j in range(s):
        d = S33[j, j]
        for k in range(j):
            d -= L[j, k] * L[j, k]
        if d <= 0.0:
            return np.nan, L
        L[j, j] = np.sqrt(d)
        for i in range(j + 1, s):
            v = S33[i, j]
            for k in range(j):
                v -= L[i, k] * L[j, k]
            L[i, j] = v / L[j, j]
    return logdet, L


@njit(cache=True, nogil=True)
def single_term_deviance(theta, A, P, XyXy, n, reml, sum_log_weights):
    """The profiled deviance (REML criterion when ``reml``) of a one-term model, as
    ``lmm.objective`` computes it from :func:`single_term_factor`'s factor, without
    leaving compiled code; ``inf`` when a block is not positive definite."""
    logdet_z, L = single_term_factor(theta, A, P, XyXy)
    if not np.isfinite(logdet_z):
        return np.inf
    return _profiled_objective(logdet_z, L, n, reml, sum_log_weights)


@njit(cache=True, nogil=True, inline="always")
def _profiled_objective(logdet_z, L, n, reml, sum_log_weights):
    """``lmm.objective``: the profiled deviance (REML criterion when ``reml``) from
    log|L_Z|² and the lower Cholesky factor L of S₃₃ (its diagonal positive)."""
    p = L.shape[0] - 1
    r2 = L[p, p] * L[p, p]
    if reml:
        logdet_x = 0.0
        for j in range(p):
            logdet_x += np.log(np.abs(L[j, j]))
        dof = n - p
        value = logdet_z + 2.0 * logdet_x + dof * (1.0 + np.log(2.0 * np.pi * r2 / dof))
    else:
        value = logdet_z + n * (1.0 + np.log(2.0 * np.pi * r2 / n))
    return value - sum_log_weights


_EPS = np.finfo(np.float64).eps


@njit(cache=True, nogil=True)
def logit_inverse(eta):
    """``families._logit_inverse`` in one pass: 1/(1 + e^−η) on η cut at ±40, kept inside
    (ε, 1 − ε)."""
    out = np.empty(eta.size)
    for i in range(eta.size):
        e = min(max(eta[i], -40.0), 40.0)
        mu = 1.0 / (1.0 + np.exp(-e))
        out[i] = min(max(mu, _EPS), 1.0 - _EPS)
    return out


@njit(cache=True, nogil=True)
def scalar_leverages(codes1, z1, columns, values, W1, G11, G12, G22):
    """h = diag(ZΛP⁻¹ΛᵀZᵀ) of scalar terms from the Gram blocks of
    ``glmm_gradient._leverages`` (its numpy twin): each row touches the first term's
    level and one tail column per later term.

    Parameters
    ----------
    codes1, z1 : (n,) level and value of the first term
    columns, values : (n, T) tail column and value of each later term
    W1 : (ℓ₁,) Λ₁M₁⁻¹Λ₁ᵀ per level; G11 : (ℓ₁,); G12 : (ℓ₁, q₂); G22 : (q₂, q₂)
    """
    n, n_tail = columns.shape
    h = np.empty(n)
    for i in range(n):
        level = codes1[i]
        z = z1[i]
        value = z * z * (W1[level] + G11[level])
        for t in range(n_tail):
            column = columns[i, t]
            v = values[i, t]
            value += 2.0 * z * v * G12[level, column] + v * v * G22[column, column]
            for s in range(t):
                value += 2.0 * v * values[i, s] * G22[column, columns[i, s]]
        h[i] = value
    return h


@njit(cache=True, nogil=True, inline="always")
def _cholesky_in_place(M):
    """The lower Cholesky factor of M (its lower triangle read) written over M, the upper
    triangle zeroed; False when M is not positive definite."""
    size = M.shape[0]
    for j in range(size):
        d = M[j, j]
        for k in range(j):
            d -= M[j, k] * M[j, k]
        if not d > 0.0:  # NaN too
            return False
        d = np.sqrt(d)
        M[j, j] = d
        for i in range(j + 1, size):
            v = M[i, j]
            for k in range(j):
                v -= M[i, k] * M[j, k]
            M[i, j] = v / d
        for i in range(j):
            M[i, j] = 0.0
    return True


@njit(cache=True, nogil=True, inline="always")
def scalar_terms_factor(theta, a, P, C1, indptr, rows, values, A22, C2, XyXy, tail_theta):
    """The blocked Cholesky factor of a model whose terms are all scalar, with a small
    dense tail, in one compiled loop: the first term's levels one at a time (their Schur
    updates of the tail and of ``[X y]`` read only the non-zeros of ``Z_tailᵀZ₁``), then
    the tail's factor and that of ``[X y]``'s Schur complement.  The numpy twin is
    :func:`mixedmodels.lmm.deviance.factorize` on the same blocks.

    Parameters
    ----------
    theta : (T,) relative SDs, first term first
    a : (ℓ₁,) the first term's Z₁ᵀZ₁ per level
    P : (ℓ₁, s²) the outer products C₁_l C₁_lᵀ per level (s = p + 1)
    C1 : (ℓ₁, s) Z₁ᵀ[X y] per level
    indptr, rows, values : A₂₁ = Z_tailᵀZ₁ in CSC form, row indices sorted in each column
    A22 : (q₂, q₂) Z_tailᵀZ_tail; C2 : (q₂, s) Z_tailᵀ[X y]; XyXy : (s, s)
    tail_theta : (q₂,) the position in θ of each tail column's relative SD

    Returns
    -------
    logdet : log|L_Z|², NaN when a block is not positive definite
    L22 : (q₂, q₂) the lower factor of Λ₂(A₂₂ − A₂₁ diag(θ₁²/m) A₁₂)Λ₂ + I
    R : (q₂, s) L₂₂⁻¹Λ₂(C₂ − A₂₁ diag(θ₁²/m) C₁), the tail's rows of the factor of [X y]
    L33 : (s, s) the lower factor of [X y]'s Schur complement
    lam : (q₂,) Λ₂'s diagonal
    """
    s = XyXy.shape[0]
    ell = a.shape[0]
    q2 = A22.shape[0]
    t2 = theta[0] * theta[0]
    S = XyXy.copy()
    flat = S.reshape(s * s)
    D = A22.copy()
    G = np.zeros((q2, s))
    R = np.empty((q2, s))
    lam = np.empty(q2)
    logdet = 0.0
    product = 1.0
    for level in range(ell):
        m = 1.0 + t2 * a[level]
        logdet, product = _log_accumulate(logdet, product, m)
        w = t2 / m
        for j in range(s * s):
            flat[j] -= w * P[level, j]
        for e in range(indptr[level], indptr[level + 1]):
            r = rows[e]
            v = w * values[e]
            for c in range(s):
                G[r, c] += v * C1[level, c]
            for f in range(indptr[level], e + 1):  # rows sorted: the lower triangle
                D[r, rows[f]] -= v * values[f]
    logdet += np.log(product)
    for i in range(q2):
        lam[i] = theta[tail_theta[i]]
    for i in range(q2):
        for j in range(i + 1):
            D[i, j] *= lam[i] * lam[j]
        D[i, i] += 1.0
    if not _cholesky_in_place(D):
        return np.nan, D, R, S, lam
    product = 1.0
    for i in range(q2):
        logdet, product = _log_accumulate(logdet, product, D[i, i] * D[i, i])
    logdet += np.log(product)
    # R = L₂₂⁻¹ Λ₂(C₂ − G), then S₃₃ −= RᵀR
    for i in range(q2):
        for c in range(s):
            v = lam[i] * (C2[i, c] - G[i, c])
            for k in range(i):
                v -= D[i, k] * R[k, c]
            R[i, c] = v / D[i, i]
    for b in range(s):
        for c in range(b + 1):
            v = 0.0
            for i in range(q2):
                v += R[i, b] * R[i, c]
            S[b, c] -= v
    if not _cholesky_in_place(S):
        return np.nan, D, R, S, lam
    return logdet, D, R, S, lam


@njit(cache=True, nogil=True)
def scalar_terms_deviance(
    theta, a, P, C1, indptr, rows, values, A22, C2, XyXy, tail_theta, n, reml, sum_log_weights
):
    """The profiled deviance (REML criterion when ``reml``) of a model whose terms are all
    scalar, with a small dense tail (the arguments of :func:`scalar_terms_factor`), in one
    compiled call; ``inf`` when a block is not positive definite."""
    logdet, _, _, L33, _ = scalar_terms_factor(
        theta, a, P, C1, indptr, rows, values, A22, C2, XyXy, tail_theta
    )
    if not np.isfinite(logdet):
        return np.inf
    return _profiled_objective(logdet, L33, n, reml, sum_log_weights)


@njit(cache=True, nogil=True, fastmath=FAST_MATH)
def block_term_deviance(T, A, Ct, XyXy, n, reml, sum_log_weights):
    """The profiled deviance (REML criterion when ``reml``) of a model with one
    random-effects term of any number of columns k and nothing else (the merged
    glmmTMB-style terms of :mod:`mixedmodels.lmm.structured`, ``(1 + x + z | g)``).
    The numpy twin is :func:`mixedmodels.lmm.deviance.factorize` with ``objective``.

    M_l = TᵀA_lT + I and TᵀC_l come from three matrix products over all levels at once
    (BLAS; written as per-level loops they cost 4x, bound by the latency of their short
    sums), then per level M_l is factored in place and S₃₃ −= (L_l⁻¹TᵀC_l)ᵀ(L_l⁻¹TᵀC_l).

    Parameters
    ----------
    T : (k, k) the term's relative covariance factor at θ
    A : (ℓ, k, k) Z_lᵀZ_l per level; Ct : (ℓ, s, k) (Z_lᵀ[X y])ᵀ per level (s = p + 1)
    XyXy : (s, s)

    Returns
    -------
    float : the deviance, ``inf`` when a block is not positive definite
    """
    ell, k = A.shape[0], A.shape[1]
    s = XyXy.shape[0]
    AT = (A.reshape(ell * k, k) @ T).reshape(ell, k, k)
    TA = np.empty((ell, k, k))  # (A_lT)ᵀ = TᵀA_l
    for level in range(ell):
        for i in range(k):
            for j in range(k):
                TA[level, i, j] = AT[level, j, i]
    M = (TA.reshape(ell * k, k) @ T).reshape(ell, k, k)
    R = (Ct.reshape(ell * s, k) @ T).reshape(ell, s, k)  # row c of R_l: (TᵀC_l)[:, c]
    S = XyXy.copy()
    logdet = 0.0
    product = 1.0
    for level in range(ell):
        L = M[level]
        for i in range(k):
            L[i, i] += 1.0
        if not _cholesky_in_place(L):
            return np.inf
        for i in range(k):
            logdet, product = _log_accumulate(logdet, product, L[i, i] * L[i, i])
        Rl = R[level]
        for c in range(s):  # L_l⁻¹TᵀC_l by forward substitution, column by column
            for i in range(k):
                v = Rl[c, i]
                for m in range(i):
                    v -= L[i, m] * Rl[c, m]
                Rl[c, i] = v / L[i, i]
        for b in range(s):
            for c in range(b + 1):
                v = 0.0
                for i in range(k):
                    v += Rl[b, i] * Rl[c, i]
                S[b, c] -= v
    logdet += np.log(product)
    if not _cholesky_in_place(S):
        return np.inf
    return _profiled_objective(logdet, S, n, reml, sum_log_weights)
