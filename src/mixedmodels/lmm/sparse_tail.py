"""A sparse Cholesky factor for the tail block of large partially crossed designs.

After the first (largest) term is eliminated level by level (:mod:`mixedmodels.lmm.deviance`), the
tail block is the Schur complement

    S = Λ₂ᵀ(A₂₂ − A₂₁ W A₂₁ᵀ)Λ₂ + I,      W = blockdiag(W_l),

whose entry (i, j) is non-zero only when tail effects i and j share a level of the first
term (two schools attended by one student) or a row (A₂₂).  In a partially crossed design
(students nested in schools but for the movers) that pattern stays sparse, and so does its
Cholesky factor after a fill-reducing ordering, when the dense block would not even fit
in memory (25,000 schools: 5 GB).

Everything that depends on the pattern alone is done once per model by :func:`analyse`:
the pattern itself, each product A₂₁[i, a] W[a, b] A₂₁[j, b] that lands on it (so that a
new W or new A₂₁ values, as in every PIRLS step, never rebuild a sparse structure), the
approximate minimum degree ordering, the elimination tree and the column counts of the
factor (its memory and flops, before any numeric work: a factor that would not fit is
refused), and CHOLMOD's symbolic analysis.  Each evaluation then only refactors
numerically (:meth:`SparseTail.factor`).

CHOLMOD comes from cvxopt's wheels (``cvxopt.cholmod``, SuiteSparse bundled, no system
library): scikit-sparse 0.5.0 ships only a source distribution that needs SuiteSparse
installed, and qdldl is neither supernodal nor able to reuse an AMD ordering of ours.
CHOLMOD chooses per pattern between its supernodal LLᵀ and its simplicial LDLᵀ by the
flops per factor entry (its own measured switch): the school designs, whose factor has
almost no fill, factor 4x faster simplicial; denser tails go supernodal.

Examples
--------
>>> import numpy as np, scipy.sparse as sp
>>> A21 = sp.csr_matrix(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))  # 2 tail, 3 first
>>> A22 = sp.csr_matrix(np.diag([2.0, 2.0]))
>>> tail = analyse(A21, A22, k1=1)
>>> W = np.full((3, 1, 1), 0.5)
>>> factor = tail.factor(A21.data, A22.data, W, np.ones(2))
>>> S = A22.toarray() - 0.5 * (A21 @ A21.T).toarray() + np.eye(2)
>>> bool(np.isclose(factor.logdet, np.linalg.slogdet(S)[1]))
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..errors import DataError
from ._kernels import njit

#: the factor may take at most this many bytes (values and row indices, 12 a non-zero)
MAX_FACTOR_BYTES = 4_000_000_000

# Per-evaluation costs, measured on the 2-core machine of this project (cvxopt 1.3.3) on the
# movers design of tests/test_sparse_tail.py: forming S took 3 ms for 110,000 products (~27
# ns each); CHOLMOD's numeric refactorization and the solves 6 ms for a factor of 30,000
# entries (~200 ns an entry, mostly per-column overhead at so little fill); denser factors
# run at ~1 GFLOP/s.  The dense path: OpenBLAS dpotrf at ~20 GFLOP/s on two cores, and
# forming the dense q₂ x q₂ Schur complement ~2 ns an entry.
_SPARSE_NS_PER_FLOP = 1.0
_SPARSE_NS_PER_ENTRY = 200.0
_SPARSE_NS_PER_PRODUCT = 27.0
_DENSE_NS_PER_FLOP = 0.05
_DENSE_NS_PER_ENTRY = 2.0


@njit(cache=True)
def _elimination_tree(indptr, indices, n):
    """Parent of each column in the elimination tree of a symmetric matrix given by the
    strict upper triangle of its permuted pattern in CSC (Liu's algorithm, path halving)."""
    parent = np.full(n, -1, dtype=np.int64)
    ancestor = np.full(n, -1, dtype=np.int64)
    for j in range(n):
        for position in range(indptr[j], indptr[j + 1]):
            i = indices[position]
            while i != -1 and i < j:
                following = ancestor[i]
                ancestor[i] = j
                if following == -1:
                    parent[i] = j
                i = following
    return parent


@njit(cache=True)
def _column_counts(indptr, indices, parent, n, budget):
    """Non-zeros of each column of the Cholesky factor (diagonal included), by walking the
    row subtrees: row j of L is the union of the tree paths from each i < j in row j of the
    matrix up to j.  Work is that of nnz(L); stops (returning a negative total) as soon as
    the total passes ``budget``, so a factor too large to store is never counted out."""
    counts = np.ones(n, dtype=np.int64)
    mark = np.full(n, -1, dtype=np.int64)
    total = n
    for j in range(n):
        mark[j] = j
        for position in range(indptr[j], indptr[j + 1]):
            i = indices[position]
            while i < j and mark[i] != j:
                mark[i] = j
                counts[i] += 1
                total += 1
                i = parent[i]
        if total > budget:
            return counts, -1
    return counts, total


@njit(cache=True)
def _inverse_on_pattern(indptr, indices, values, diagonal, unit):
    """The entries of (L Lᵀ)⁻¹ (or (L D Lᵀ)⁻¹ with unit L and D = ``diagonal`` when
    ``unit``) on the pattern of L, by the Takahashi recurrences, last column first:
    Z_jj = 1/d_j − Σ_k l_kj Z_kj and Z_ij = −Σ_k l_kj Z_ik over the rows k > j of column j,
    with l the unit factor.  Every Z_ik needed lies on the pattern, because the rows of a
    column of L form a clique of the filled graph.  Rows must be sorted in each column."""
    n = len(indptr) - 1
    Z = np.zeros(len(values))
    for j in range(n - 1, -1, -1):
        start, stop = indptr[j], indptr[j + 1]  # start is the diagonal
        d = diagonal[j]
        scale = 1.0 if unit else 1.0 / np.sqrt(d)  # d_j of LDLᵀ, or L_jj² of LLᵀ
        for a in range(stop - 1, start, -1):
            i = indices[a]
            total = 0.0
            for b in range(start + 1, stop):
                k = indices[b]
                lkj = values[b] * scale
                # Z_ik lies in column min(i, k), row max(i, k)
                col, row = (i, k) if i < k else (k, i)
                lo, hi = indptr[col], indptr[col + 1]
                while lo < hi:
                    middle = (lo + hi) // 2
                    if indices[middle] < row:
                        lo = middle + 1
                    else:
                        hi = middle
                total += lkj * Z[lo]
            Z[a] = -total
        total = 0.0
        for b in range(start + 1, stop):
            total += values[b] * scale * Z[b]
        Z[start] = 1.0 / d - total
    return Z


@dataclass
class SparseFactor:
    """The numeric factor of S at one evaluation: log|S| and solves with S."""

    tail: SparseTail
    values: np.ndarray  # S on the pattern: refactored from these if the factor moved on
    logdet: float
    stamp: int

    def _current(self):
        if self.tail._stamp != self.stamp:  # another evaluation refactored since
            self.tail._refactor(self.values)
            self.tail._stamp = self.stamp
        return self.tail._factor

    def solve(self, B: np.ndarray) -> np.ndarray:
        """S⁻¹B for a (q₂,) or (q₂, m) array."""
        from cvxopt import cholmod, matrix

        F = self._current()
        out = matrix(np.array(B, dtype=float, order="F"))
        cholmod.solve(F, out, sys=0)
        return np.asarray(out).reshape(B.shape)

    def inverse_entries(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Entries (rows[t], cols[t]) of S⁻¹, each of which must lie on S's pattern (any
        pair of tail effects that share a level of the first term, or the diagonal)."""
        Z, indptr, indices, permutation = self.tail._selected_inverse(self)
        inverse = np.empty_like(permutation)
        inverse[permutation] = np.arange(len(permutation))
        a, b = inverse[rows], inverse[cols]
        col, row = np.minimum(a, b), np.maximum(a, b)
        found = np.empty(len(col), dtype=np.int64)
        _locate(indptr, indices, col, row, found)
        return Z[found]


@njit(cache=True)
def _locate(indptr, indices, col, row, found):
    for t in range(len(col)):
        lo, hi = indptr[col[t]], indptr[col[t] + 1]
        while lo < hi:
            middle = (lo + hi) // 2
            if indices[middle] < row[t]:
                lo = middle + 1
            else:
                hi = middle
        found[t] = lo


@dataclass
class SparseTail:
    """What :func:`analyse` computes once per model; see the module docstring."""

    q2: int
    rows: np.ndarray  # lower-triangle pattern of S in CSC order (sorted rows per column)
    cols: np.ndarray
    diagonal: np.ndarray  # positions of the diagonal in the pattern
    a22_source: np.ndarray  # A₂₂ data positions (lower triangle) ...
    a22_target: np.ndarray  # ... and where they land in the pattern
    pair_target: np.ndarray  # for each product A₂₁[i, a] W_l[a, b] A₂₁[j, b]: its entry,
    pair_left: np.ndarray  # the A₂₁ data positions of its two factors,
    pair_right: np.ndarray
    pair_weight: np.ndarray  # and the position of W_l[a, b] in W.ravel()
    permutation: np.ndarray  # AMD: row t of the factor is tail effect permutation[t]
    factor_entries: int
    flops: float
    _matrix: object = field(default=None, repr=False)  # cvxopt spmatrix with the pattern
    _factor: object = field(default=None, repr=False)  # cvxopt CHOLMOD factor
    _supernodal: bool = False
    _stamp: int = 0  # which evaluation's values the CHOLMOD factor holds (-1: none)
    _generation: int = 0
    _inverse: tuple | None = field(default=None, repr=False)

    def cost_ns(self) -> float:
        """Predicted time of one evaluation's tail work on the sparse path, in ns."""
        return (
            _SPARSE_NS_PER_FLOP * self.flops
            + _SPARSE_NS_PER_ENTRY * self.factor_entries
            + _SPARSE_NS_PER_PRODUCT * len(self.pair_target)
        )

    def values(
        self,
        a21_data: np.ndarray,
        a22_data: np.ndarray,
        W: np.ndarray,
        lam2: np.ndarray,
    ) -> np.ndarray:
        """S on the pattern for A₂₁'s and A₂₂'s CSR data (in the analysed order), the
        first term's W (ℓ₁, k₁, k₁) and the tail's diagonal Λ₂."""
        products = a21_data[self.pair_left] * a21_data[self.pair_right]
        products *= W.reshape(-1)[self.pair_weight]
        values = -np.bincount(self.pair_target, weights=products, minlength=len(self.rows))
        values[self.a22_target] += a22_data[self.a22_source]
        values *= lam2[self.rows] * lam2[self.cols]
        values[self.diagonal] += 1.0
        return values

    def factor(
        self,
        a21_data: np.ndarray,
        a22_data: np.ndarray,
        W: np.ndarray,
        lam2: np.ndarray,
    ) -> SparseFactor:
        """Numeric refactorization at new values. ``np.linalg.LinAlgError`` when S is not
        positive definite."""
        values = self.values(a21_data, a22_data, W, lam2)
        logdet = self._refactor(values)
        self._generation += 1  # monotonic: stamps are never reused
        self._stamp = self._generation
        return SparseFactor(self, values, logdet, self._stamp)

    def _refactor(self, values: np.ndarray) -> float:
        from cvxopt import cholmod, matrix

        self._matrix.V = matrix(values)
        self._inverse = None
        try:
            cholmod.numeric(self._matrix, self._factor)
        except ArithmeticError as error:
            raise np.linalg.LinAlgError("tail block is not positive definite") from error
        if self._supernodal:
            diagonal = np.asarray(cholmod.diag(self._factor)).ravel()
            return 2.0 * float(np.sum(np.log(diagonal)))
        # simplicial LDLᵀ: D from one diagonal solve (sys 6 solves D x = b)
        ones = matrix(np.ones(self.q2))
        cholmod.solve(self._factor, ones, sys=6)
        inverse_d = np.asarray(ones).ravel()
        if not np.all(inverse_d > 0):
            raise np.linalg.LinAlgError("tail block is not positive definite")
        return -float(np.sum(np.log(inverse_d)))

    def _selected_inverse(self, factor: SparseFactor) -> tuple[np.ndarray, ...]:
        """S⁻¹ on the pattern of the factor (permuted order), with that pattern."""
        from cvxopt import cholmod

        if self._inverse is not None and self._inverse[0] == factor.stamp:
            return self._inverse[1:]
        factor._current()
        permutation = self.permutation
        colptr, rowind, vals = (np.asarray(x).ravel() for x in cholmod.getfactor(self._factor).CCS)
        # getfactor converts CHOLMOD's factor in place (to a simplicial LLᵀ): analyse anew
        # so that later evaluations factor as before
        self._symbolic()
        colptr = colptr.astype(np.int64)
        rowind = rowind.astype(np.int64)
        # diagonal first in each column (CCS rows are sorted and the factor is lower)
        diagonal = vals[colptr[:-1]]
        if self._supernodal:
            Z = _inverse_on_pattern(colptr, rowind, vals, diagonal**2, False)
        else:
            Z = _inverse_on_pattern(colptr, rowind, vals, diagonal, True)
        self._inverse = (factor.stamp, Z, colptr, rowind, permutation)
        return Z, colptr, rowind, permutation

    def _symbolic(self) -> None:
        """CHOLMOD's symbolic analysis on our ordering, then :func:`_ask_factor`."""
        from cvxopt import cholmod, matrix

        saved = dict(cholmod.options)
        try:
            cholmod.options["supernodal"] = 1  # CHOLMOD's own flops-per-entry switch
            cholmod.options["postorder"] = True
            self._factor = cholmod.symbolic(self._matrix, p=matrix(self.permutation.astype(int)))
        finally:
            cholmod.options.clear()
            cholmod.options.update(saved)
        _ask_factor(self)


def dense_cost_ns(q2: int, q1: int) -> float:
    """Predicted time of one evaluation's tail work on the dense path, in ns."""
    return _DENSE_NS_PER_FLOP * q2**3 / 3.0 + _DENSE_NS_PER_ENTRY * q2 * q2 + 10.0 * q1


def factor_bytes(entries: int) -> int:
    return 12 * entries


#: below this many tail effects the dense block is chosen without analysing the pattern
MIN_SPARSE_EFFECTS = 3_000


def choose(
    A21: sp.csr_matrix, A22: sp.csr_matrix, k1: int, dense_allowed: bool
) -> SparseTail | None:
    """The analysed sparse tail where it is predicted to be faster than the dense block (or
    where the dense block is not allowed), else None.  With the dense block allowed, a
    sparse factor holding more than a tenth of the dense one's entries is not even counted
    out; without it, None means that the factor would exceed :data:`MAX_FACTOR_BYTES`."""
    q2, q1 = A21.shape
    if dense_allowed and q2 < MIN_SPARSE_EFFECTS:
        return None
    limit = MAX_FACTOR_BYTES
    if dense_allowed:
        limit = min(limit, factor_bytes(q2 * q2 // 20))
    try:
        tail = analyse(A21, A22, k1, max_bytes=limit)
    except DataError:
        return None
    if dense_allowed and tail.cost_ns() >= dense_cost_ns(q2, q1):
        return None
    return tail


def analyse(
    A21: sp.csr_matrix,
    A22: sp.csr_matrix,
    k1: int,
    max_bytes: int | None = None,
) -> SparseTail:
    """Pattern, products map, ordering and symbolic factorization of the tail's S.

    ``A21`` (q₂ x ℓ₁k₁, level-major columns) and ``A22`` (q₂ x q₂, symmetric) must be CSR
    with sorted indices; later values must come in the same data order.  Raises
    :class:`~mixedmodels.errors.DataError` with the memory figure when the factor would
    need more than ``max_bytes`` (default :data:`MAX_FACTOR_BYTES`).
    """
    from cvxopt import amd, matrix, spmatrix

    q2 = A21.shape[0]
    if max_bytes is None:
        max_bytes = MAX_FACTOR_BYTES
    # A₂₁ non-zeros by first-term level, remembering their CSR data positions
    coo = A21.tocoo()
    position = np.arange(A21.nnz, dtype=np.int64)
    row, column = coo.row.astype(np.int64), coo.col.astype(np.int64)
    level, within = column // k1, column % k1
    order = np.lexsort((row, level))
    row, level, within, position = row[order], level[order], within[order], position[order]
    # every ordered pair of non-zeros sharing a level, kept where it lands on or below
    # the diagonal (the same pairing as lmm._PairMap, with the W entry remembered)
    left, right = pairs_within_groups(level)
    keep = row[left] >= row[right]
    left, right = left[keep], right[keep]
    pair_rows, pair_cols = row[left], row[right]
    pair_weight = level[left] * k1 * k1 + within[left] * k1 + within[right]

    lower22 = sp.tril(A22, format="coo")
    a22_source = data_positions(A22, lower22.row, lower22.col)
    diag = np.arange(q2, dtype=np.int64)
    keys = np.concatenate(
        [
            pair_cols * q2 + pair_rows,
            lower22.col.astype(np.int64) * q2 + lower22.row,
            diag * q2 + diag,
        ]
    )
    pattern = np.unique(keys)  # column-major, sorted rows: CHOLMOD's CCS order
    rows, cols = pattern % q2, pattern // q2

    lower = spmatrix(
        matrix(np.ones(len(pattern))), matrix(rows), matrix(cols), (q2, q2)
    )  # values do not matter to the ordering or the symbolic analysis
    permutation = np.asarray(amd.order(lower)).ravel().astype(np.int64)
    inverse = np.empty_like(permutation)
    inverse[permutation] = np.arange(q2)
    # the permuted strict upper triangle in CSC: column max(p_i, p_j), row min(p_i, p_j)
    pi, pj = inverse[rows], inverse[cols]
    off = pi != pj
    upper = sp.csc_matrix(
        (np.ones(int(off.sum())), (np.minimum(pi, pj)[off], np.maximum(pi, pj)[off])),
        shape=(q2, q2),
    )
    upper.sort_indices()
    indptr, indices = upper.indptr.astype(np.int64), upper.indices.astype(np.int64)
    parent = _elimination_tree(indptr, indices, q2)
    budget = max_bytes // factor_bytes(1)
    counts, entries = _column_counts(indptr, indices, parent, q2, budget)
    if entries < 0:
        raise DataError(
            f"The random-effects terms after the largest one have {q2} effects; even with a "
            f"fill-reducing ordering their sparse Cholesky factor would need more than "
            f"{max_bytes / 1e9:.1f} GB (its dense block {q2 * q2 * 8 / 1e9:.1f} GB), more "
            f"than this library allows itself. Fewer levels in the crossed factors, or a "
            f"nested coding of them, would fit."
        )
    flops = float(np.sum(counts.astype(float) ** 2))

    tail = SparseTail(
        q2=q2,
        rows=rows,
        cols=cols,
        diagonal=np.searchsorted(pattern, diag * q2 + diag),
        a22_source=a22_source,
        a22_target=np.searchsorted(pattern, lower22.col.astype(np.int64) * q2 + lower22.row),
        pair_target=np.searchsorted(pattern, pair_cols * q2 + pair_rows),
        pair_left=position[left],
        pair_right=position[right],
        pair_weight=pair_weight,
        permutation=permutation,
        factor_entries=int(entries),
        flops=flops,
        _matrix=lower,
    )
    tail._symbolic()
    return tail


def _ask_factor(tail: SparseTail) -> None:
    """Factor the identity once on the pattern and read what CHOLMOD chose: supernodal or
    not (``cholmod.diag`` answers for supernodal factors only) and its final permutation
    (it may postorder ours), by applying P to 0, 1, ... (sys 7: B := PB)."""
    from cvxopt import cholmod, matrix

    values = np.zeros(len(tail.rows))
    values[tail.diagonal] = 1.0
    tail._matrix.V = matrix(values)
    cholmod.numeric(tail._matrix, tail._factor)
    index = matrix(np.arange(tail.q2, dtype=float))
    cholmod.solve(tail._factor, index, sys=7)
    tail.permutation = np.rint(np.asarray(index).ravel()).astype(np.int64)
    try:
        cholmod.diag(tail._factor)
        tail._supernodal = True
    except ValueError:
        tail._supernodal = False
    tail._stamp = -1  # the identity is no evaluation's factor


def pairs_within_groups(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair (s, t) of positions with the same label, for labels sorted."""
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else group
    sizes = np.diff(np.r_[starts, len(group)])
    per_group = sizes * sizes
    owner = np.repeat(np.arange(len(starts)), per_group)
    offset = np.arange(per_group.sum()) - np.repeat(np.cumsum(per_group) - per_group, per_group)
    return starts[owner] + offset // sizes[owner], starts[owner] + offset % sizes[owner]


def conditional_covariances(
    A21: sp.csr_matrix,
    lam2: np.ndarray,
    T1: np.ndarray,
    M_inverse: np.ndarray,
    factor: SparseFactor,
) -> tuple[np.ndarray, np.ndarray]:
    """Conditional covariances of the spherical modes (σ² excluded) on the sparse path.

    For the first term, level l: M_l⁻¹ + R_lᵀ S⁻¹ R_l with R = Λ₂A₂₁ blockdiag(T₁M_l⁻¹), which
    needs S⁻¹ only at pairs of tail effects sharing level l, all on S's pattern; for the
    (scalar) tail effects, the diagonal of S⁻¹.  Both come from the selected inverse.
    Returns ((ℓ₁, k₁, k₁), (q₂,))."""
    ell1, k1 = M_inverse.shape[0], M_inverse.shape[1]
    blocks = T1[None] @ M_inverse  # (ℓ₁, k₁, k₁)
    # R[i, (l, b)] = λ_i Σ_a A₂₁[i, (l, a)] blocks[l, a, b]
    a21 = A21.tocoo()
    source_level, source_within = a21.col // k1, a21.col % k1
    R = (
        sp.coo_matrix(
            (
                (
                    (a21.data * lam2[a21.row])[:, None] * blocks[source_level, source_within, :]
                ).ravel(),
                (np.repeat(a21.row, k1), (source_level[:, None] * k1 + np.arange(k1)).ravel()),
            ),
            shape=A21.shape,
        )
        .tocsr()
        .tocoo()
    )  # duplicates summed
    level, within = R.col // k1, R.col % k1
    order = np.lexsort((R.row, level))
    row, level, within, value = R.row[order], level[order], within[order], R.data[order]
    left, right = pairs_within_groups(level)
    entries = factor.inverse_entries(row[left], row[right])
    flat = level[left] * k1 * k1 + within[left] * k1 + within[right]
    weights = value[left] * entries * value[right]
    extra = np.bincount(flat, weights=weights, minlength=ell1 * k1 * k1)
    diagonal = np.arange(factor.tail.q2)
    return M_inverse + extra.reshape(ell1, k1, k1), factor.inverse_entries(diagonal, diagonal)


def data_positions(A: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Positions in A.data (CSR, sorted indices) of the entries (rows, cols)."""
    n_cols = A.shape[1]
    keys = np.repeat(np.arange(A.shape[0], dtype=np.int64), np.diff(A.indptr)) * n_cols
    keys += A.indices
    return np.searchsorted(keys, rows.astype(np.int64) * n_cols + cols)
