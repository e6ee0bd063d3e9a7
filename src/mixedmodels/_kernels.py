"""Compiled (numba) kernels for the per-step passes over the rows that PIRLS repeats.

Each kernel has a numpy twin elsewhere in the package (used when numba is missing); the
kernels only fuse loops, they change no arithmetic, so tests compare the two paths.
numba compiles on first use and caches the machine code beside this file.
"""

from __future__ import annotations

import numpy as np

try:
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a declared dependency
    HAVE_NUMBA = False

    def njit(*args, **kwargs):
        def wrap(function):
            return function

        return wrap


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
