"""The cross-products of ``[Z X y]`` a linear mixed model's deviance is evaluated on,
formed once (:class:`CrossProducts`): terms ordered by number of levels, largest first; the
first term's block of ``ZᵀZ`` kept as a stack of ℓ₁ small k₁ x k₁ blocks, every other term
in one "tail" block (dense, or sparse when that pays, :mod:`.sparse_tail`), and the blocks
``Z₂ᵀZ₁``, ``Zᵀ[X y]`` and ``[X y]ᵀ[X y]``.  After they are formed one deviance evaluation
(:mod:`.deviance`) never touches the n rows; :class:`BlockSums` adds them up chunk by chunk
for data that do not fit in memory.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..errors import DataError
from ..frontend.design_types import ReTerm
from . import _kernels
from . import sparse_tail as sparse_tail_module
from .covariance import CovarianceStructure, structure_for
from .sparse_tail import SparseTail, choose

# above this many products the level-pair map of the scalar first term costs too much memory
_MAP_MAX_ENTRIES = 40_000_000
# the terms after the largest one share one dense block: 20,000² doubles is 3.2 GB
MAX_DENSE_EFFECTS = 20_000


def _term_sparse(term: ReTerm, weights_sqrt: np.ndarray | None) -> sp.csr_matrix:
    """The term's Z as a CSR matrix (n x ℓk), level-major columns; never densified."""
    n, k = term.matrix.shape
    values = term.matrix if weights_sqrt is None else term.matrix * weights_sqrt[:, None]
    cols = (term.codes[:, None] * k + np.arange(k)[None, :]).ravel()
    indptr = np.arange(0, n * k + 1, k)
    return sp.csr_matrix((values.ravel(), cols, indptr), shape=(n, term.n_levels * k))


def _block_diagonal_crossprod(term: ReTerm, weights: np.ndarray | None) -> np.ndarray:
    """ZᵢᵀZᵢ for one term as an (ℓ, k, k) stack: bincount per column pair, O(n k²)."""
    n, k = term.matrix.shape
    out = np.empty((term.n_levels, k, k))
    for a in range(k):
        for b in range(a, k):
            prod = term.matrix[:, a] * term.matrix[:, b]
            if weights is not None:
                prod = prod * weights
            out[:, a, b] = np.bincount(term.codes, weights=prod, minlength=term.n_levels)
            out[:, b, a] = out[:, a, b]
    return out


def _one_term_blocks_unstacked(
    term: ReTerm, tail: list[ReTerm], weights: np.ndarray | None, X: np.ndarray, y: np.ndarray
) -> tuple | None:
    """A₁₁, C₁, the empty tail blocks and [X y]ᵀ[X y] of an unweighted one-term model
    without stacking [X y] (its copy was 24 MB of a million-row fit's peak memory), by the
    bincounts of :func:`_level_crossprod` on X's and y's own columns (the same products,
    so the same sums); None for the other models (more terms, weights, a term whose
    blocks the compiled pass forms, or too many column pairs for bincounts)."""
    k = term.n_columns
    columns = [X[:, j] for j in range(X.shape[1])] + [y]
    if (
        tail
        or weights is not None
        or (_kernels.HAVE_NUMBA and term.n_levels <= _kernels.COMPILED_LEVELS)
        or k * len(columns) > _BINCOUNT_MAX_PAIRS
    ):
        return None
    C1 = np.empty((term.n_levels, k, len(columns)))
    for a in range(k):
        for c, column in enumerate(columns):
            C1[:, a, c] = np.bincount(
                term.codes, weights=term.matrix[:, a] * column, minlength=term.n_levels
            )
    Xty = X.T @ y
    XyXy = np.block([[X.T @ X, Xty[:, None]], [Xty[None, :], np.array([[y @ y]])]])
    empty = _empty_csr(term.n_levels * k), _empty_csr(0), np.zeros((0, len(columns)))
    return (_block_diagonal_crossprod(term, None), C1, *empty, XyXy)


def _compiled_first_term_blocks(
    term: ReTerm, weights: np.ndarray | None, sqrt_w: np.ndarray | None, Xy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_block_diagonal_crossprod` and :func:`_level_crossprod` in one compiled pass
    (:func:`~mixedmodels.lmm._kernels.first_term_blocks`): their ~10 bincounts and
    column products were ~50 µs of a sleepstudy fit."""
    Z = np.ascontiguousarray(term.matrix, dtype=float)
    Zw = Z if sqrt_w is None else np.ascontiguousarray(Z * sqrt_w[:, None])
    w = np.zeros(0) if weights is None else np.ascontiguousarray(weights, dtype=float)
    return _kernels.first_term_blocks(
        np.ascontiguousarray(term.codes, dtype=np.int64), Z, Zw,
        np.ascontiguousarray(Xy, dtype=float), w, term.n_levels,
    )  # fmt: skip


#: up to this many (column of Z₁, column of [X y]) pairs, Z₁ᵀ[X y] is summed by bincount
_BINCOUNT_MAX_PAIRS = 32


def _level_crossprod(term: ReTerm, sqrt_w: np.ndarray | None, Xy: np.ndarray) -> np.ndarray:
    """Z₁ᵀ[X y] per level as an (ℓ, k, p + 1) stack (``Xy`` already weighted).

    With few column pairs, one bincount per pair: the same products added in the same
    row order as the sparse product ``Z₁ᵀ @ Xy`` (so the same sums, bit for bit), without
    building the CSR matrix, its transpose and their index checks (~0.1 ms of a
    sleepstudy fit); with many, the sparse product's single pass over the rows."""
    n, k = term.matrix.shape
    width = Xy.shape[1]
    if k * width > _BINCOUNT_MAX_PAIRS:
        Z1 = _term_sparse(term, sqrt_w)
        return np.asarray(Z1.T @ Xy).reshape(term.n_levels, k, width)
    values = term.matrix if sqrt_w is None else term.matrix * sqrt_w[:, None]
    out = np.empty((term.n_levels, k, width))
    for a in range(k):
        for c in range(width):
            out[:, a, c] = np.bincount(
                term.codes, weights=values[:, a] * Xy[:, c], minlength=term.n_levels
            )
    return out


#: tails whose blocks Z_tailᵀZ₁ and Z_tailᵀZ_tail have at most this many entries each
#: are summed by bincount into dense arrays (:func:`_small_tail_blocks`)
_BINCOUNT_MAX_BLOCK = 1_000_000


def _small_tail(first: ReTerm, tail: list[ReTerm], width: int) -> bool:
    """Whether :func:`_small_tail_blocks` forms this tail's blocks: both blocks small and
    few enough column pairs that one bincount each costs less than scipy's sparse
    products (their construction and index checks were ~0.6 ms of a 1,000-row fit of
    two crossed terms, ten times the sums themselves)."""
    q1 = first.n_levels * first.n_columns
    q2 = sum(t.n_effects for t in tail)
    columns = sum(t.n_columns for t in tail)
    return (
        q2 * max(q1, q2) <= _BINCOUNT_MAX_BLOCK
        and columns * (first.n_columns + columns + width) <= 4 * _BINCOUNT_MAX_PAIRS
    )


def _small_tail_blocks(
    first: ReTerm, tail: list[ReTerm], sqrt_w: np.ndarray | None, Xy: np.ndarray
) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """``Z_tailᵀZ₁``, ``Z_tailᵀZ_tail`` (CSR) and ``Z_tailᵀ[X y]`` by one bincount per
    pair of columns.  Each entry of a block comes from one pair (a level and a column of
    each term), and its products are added in row order, as the sparse products add
    them."""

    def columns(term: ReTerm, offset: int) -> tuple[np.ndarray, np.ndarray]:
        k = term.n_columns
        index = offset + term.codes[:, None] * k + np.arange(k)[None, :]
        values = term.matrix if sqrt_w is None else term.matrix * sqrt_w[:, None]
        return index, values

    q1 = first.n_levels * first.n_columns
    index1, values1 = columns(first, 0)
    parts, offset = [], 0
    for term in tail:
        parts.append(columns(term, offset))
        offset += term.n_effects
    q2 = offset
    index2 = np.concatenate([index for index, _ in parts], axis=1)
    values2 = np.concatenate([values for _, values in parts], axis=1)
    A21 = np.zeros(q2 * q1)
    A22 = np.zeros(q2 * q2)
    C2 = np.zeros((q2, Xy.shape[1]))
    for b in range(index2.shape[1]):
        rows, values = index2[:, b], values2[:, b]
        for a in range(index1.shape[1]):
            A21 += np.bincount(
                rows * q1 + index1[:, a], weights=values * values1[:, a], minlength=q2 * q1
            )
        for c in range(index2.shape[1]):
            A22 += np.bincount(
                rows * q2 + index2[:, c], weights=values * values2[:, c], minlength=q2 * q2
            )
        for c in range(Xy.shape[1]):
            C2[:, c] += np.bincount(rows, weights=values * Xy[:, c], minlength=q2)
    return _dense_to_csr(A21, q2, q1), _dense_to_csr(A22, q2, q2), C2


def _compiled_scalar_blocks(first: ReTerm, tail: list[ReTerm]) -> bool:
    """Whether :func:`_scalar_blocks` forms the blocks: scalar terms crossed or nested,
    with a small tail, the models whose deviance is compiled too
    (:mod:`.crossed_kernel`), so that numba is loaded for them anyway."""
    return (
        bool(tail)
        and _kernels.HAVE_NUMBA
        and first.n_columns == 1
        and all(t.n_columns == 1 for t in tail)
        and first.n_levels <= _kernels.COMPILED_LEVELS
        and sum(t.n_levels for t in tail) <= _kernels.COMPILED_TAIL
    )


def _scalar_blocks(
    first: ReTerm,
    tail: list[ReTerm],
    weights: np.ndarray | None,
    Xy: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A₁₁, C₁, A₂₁, A₂₂ and C₂ of scalar terms in one compiled pass over the rows
    (:func:`~mixedmodels.lmm._kernels.scalar_term_blocks`, glmer's PIRLS pass), where the
    ~20 bincounts and sparse conversions of the numpy path cost ~0.15 ms on pupils.
    ``Xy`` is [X y] unweighted; A₂₁ and A₂₂ come dense (the tail is small), and
    :meth:`CrossProducts.from_sums` takes them as they are."""
    n = len(first.codes)
    columns = np.empty((n, len(tail)), dtype=np.int64)
    values = np.empty((n, len(tail)))
    offset = 0
    for index, term in enumerate(tail):
        columns[:, index] = offset + term.codes
        values[:, index] = term.matrix[:, 0]
        offset += term.n_levels
    w = np.ones(n) if weights is None else np.ascontiguousarray(weights, dtype=float)
    A11, C1, A21, A22, C2 = _kernels.scalar_term_blocks(
        np.ascontiguousarray(first.codes, dtype=np.int64),
        np.ascontiguousarray(first.matrix[:, 0], dtype=float),
        columns,
        values,
        np.ascontiguousarray(Xy, dtype=float),
        w,
        first.n_levels,
        offset,
    )
    ell = first.n_levels
    return A11.reshape(ell, 1, 1), C1.reshape(ell, 1, -1), A21, A22, C2


def compressed_rows(
    flat: np.ndarray, rows: int, columns: int, index_dtype: type = np.int32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CSR arrays (indptr, indices, data) of the non-zeros of a row-major dense
    block, indices sorted; of a column-major block's ``ravel(order="F")``, its CSC."""
    nonzero = np.flatnonzero(flat)
    counts = np.bincount(nonzero // columns, minlength=rows)
    indptr = np.zeros(rows + 1, dtype=index_dtype)
    np.cumsum(counts, out=indptr[1:])
    indices = (nonzero % columns).astype(index_dtype)
    return indptr, indices, flat[nonzero]


def _dense_to_csr(flat: np.ndarray, rows: int, columns: int) -> sp.csr_matrix:
    """A CSR matrix of the non-zeros of a row-major dense block, its indices sorted (the
    arrays given as they are: scipy's conversion from dense costs several times this)."""
    indptr, indices, data = compressed_rows(flat, rows, columns)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(rows, columns))
    matrix.has_sorted_indices = True
    return matrix


@dataclass
class _PairMap:
    """Precomputed linear map w (ℓ₁) -> entries of A₂₁ diag(w) A₂₁ᵀ (scalar first term)."""

    matrix: sp.csr_matrix  # (entries, ℓ₁): row t holds the lower-triangle entry targets[t]
    targets: np.ndarray  # the flat position i·Q₂ + j of each entry that any pair reaches
    q2: int
    target_rows: np.ndarray  # i and j of each target
    target_columns: np.ndarray

    def block(self, weights: np.ndarray) -> np.ndarray:
        """A₂₁ diag(weights) A₂₁ᵀ as a dense (Q₂, Q₂) block, its lower triangle filled."""
        out = np.zeros(self.q2 * self.q2)
        out[self.targets] = self.matrix @ weights
        return out.reshape(self.q2, self.q2)

    def weighted_trace(self, S: np.ndarray, lam: np.ndarray, weights: np.ndarray) -> float:
        """tr(S Λ F Λ) for F = A₂₁ diag(weights) A₂₁ᵀ and a symmetric S whose lower
        triangle is read, Λ = diag(lam): a sum over the entries the pairs reach, each
        off-diagonal one twice, without forming F."""
        entries = (self.matrix @ weights) * lam[self.target_rows] * lam[self.target_columns]
        entries *= S.ravel()[self.targets]
        diagonal = entries[self.target_rows == self.target_columns].sum()
        return float(2.0 * entries.sum() - diagonal)

    @classmethod
    def build(cls, A21: sp.csc_matrix, q2: int) -> _PairMap:
        """Every pair of non-zeros sharing a column of A₂₁ contributes to one entry of the
        lower triangle; (entry, column) pairs are unique, so no duplicates need summing."""
        A21 = A21.tocsc()
        A21.sort_indices()
        counts = np.diff(A21.indptr)
        flats, values, columns = [], [], []
        # columns with the same number of non-zeros are handled together (few distinct sizes)
        for size in np.unique(counts[counts > 0]):
            cols = np.flatnonzero(counts == size)
            entries = A21.indptr[cols][:, None] + np.arange(size)[None, :]
            rows = A21.indices[entries].astype(np.int64)
            data = A21.data[entries]
            first, second = np.tril_indices(size)  # rows are sorted: the lower triangle
            flats.append((rows[:, first] * q2 + rows[:, second]).ravel())
            values.append((data[:, first] * data[:, second]).ravel())
            columns.append(np.repeat(cols, len(first)))
        flat = np.concatenate(flats) if flats else np.zeros(0, dtype=np.int64)
        value = np.concatenate(values) if values else np.zeros(0)
        column = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
        # rows by entry of the dense block, then only the entries some pair reaches: the
        # mat-vec walks 142,330 rows on InstEval, not all 1.3M (4.8 -> 3.3 ms)
        full = sp.csr_matrix((value, (flat, column)), shape=(q2 * q2, A21.shape[1]))
        targets = np.flatnonzero(np.diff(full.indptr))
        indptr = np.concatenate([[0], full.indptr[1:][targets]])
        matrix = sp.csr_matrix(
            (full.data, full.indices, indptr), shape=(targets.size, A21.shape[1])
        )
        rows, columns = np.divmod(targets, q2)
        return cls(matrix, targets, q2, rows, columns)


def internal_order(terms: list[ReTerm] | tuple[ReTerm, ...]) -> np.ndarray:
    """The internal term order: by number of levels, largest first (stable)."""
    return np.argsort([-t.n_levels for t in terms], kind="stable")


def check_tail_size(ordered: list[ReTerm]) -> None:
    """Refuse, before any pass over the rows, a tail whose dense block is too large and
    that cannot be factored sparse (a vector term after the largest); a large scalar tail
    is decided after the pass, by its sparse factor's size (:mod:`.sparse_tail`)."""
    tail = ordered[1:]
    q2 = sum(t.n_effects for t in tail)
    if q2 > MAX_DENSE_EFFECTS and not all(t.n_columns == 1 for t in tail):
        sizes = ", ".join(f"{t.group} ({t.n_effects})" for t in tail)
        raise DataError(
            f"The random-effects terms after the largest one ({ordered[0].group}) have {q2} "
            f"random effects in all ({sizes}); their dense block would need "
            f"{q2 * q2 * 8 / 1e9:.1f} GB. Models with two grouping factors of more than "
            f"{MAX_DENSE_EFFECTS} levels each are supported only with scalar (intercept-only) "
            "terms after the largest."
        )


@dataclass
class BlockSums:
    """The row sums behind :class:`CrossProducts`: ``Z₁ᵀZ₁`` (block diagonal), ``Z_tailᵀZ₁``,
    ``Z_tailᵀZ_tail``, ``Zᵀ[X y]`` and ``[X y]ᵀ[X y]``, all weighted.

    Sums over disjoint sets of rows add (``a + b``), so the blocks of a table split in
    partitions are the sum of the partitions' blocks (:mod:`mixedmodels.scale`)."""

    n: int
    A11: np.ndarray
    C1: np.ndarray
    A21: sp.csr_matrix | np.ndarray  # dense (q₂ x ℓ₁, and A22) from the compiled pass
    A22: sp.csr_matrix | np.ndarray
    C2: np.ndarray
    XyXy: np.ndarray
    sum_log_weights: float

    @classmethod
    def of_rows(
        cls,
        y: np.ndarray,
        X: np.ndarray,
        ordered: list[ReTerm],
        weights: np.ndarray | None = None,
        offset: np.ndarray | None = None,
    ) -> BlockSums:
        """The sums over these rows; ``ordered`` are the terms in internal order."""
        n, p = X.shape
        if offset is not None:
            y = y - offset
        sqrt_w = None
        sum_log_weights = 0.0
        if weights is not None:
            sqrt_w = np.sqrt(weights)
            positive = weights > 0
            sum_log_weights = float(np.sum(np.log(weights[positive])))
        first = ordered[0]
        unstacked = _one_term_blocks_unstacked(first, ordered[1:], weights, X, y)
        if unstacked is not None:
            return cls(n, *unstacked, sum_log_weights)
        Xy = np.column_stack([X, y])
        if sqrt_w is not None:
            Xy = Xy * sqrt_w[:, None]
        k1 = first.n_columns
        tail = ordered[1:]
        if _compiled_scalar_blocks(first, tail):
            unweighted = Xy if weights is None else np.column_stack([X, y])
            A11, C1, A21, A22, C2 = _scalar_blocks(first, tail, weights, unweighted)
            return cls(n, A11, C1, A21, A22, C2, Xy.T @ Xy, sum_log_weights)
        if not tail and _kernels.HAVE_NUMBA and first.n_levels <= _kernels.COMPILED_LEVELS:
            # one term: its deviance is compiled too, so numba is loaded for it anyway
            A11, C1 = _compiled_first_term_blocks(first, weights, sqrt_w, Xy)
        else:
            A11 = _block_diagonal_crossprod(first, weights)
            C1 = _level_crossprod(first, sqrt_w, Xy)
        if tail and _small_tail(first, tail, Xy.shape[1]):
            A21, A22, C2 = _small_tail_blocks(first, tail, sqrt_w, Xy)
        elif tail:
            Z1 = _term_sparse(first, sqrt_w)
            Z2 = sp.hstack([_term_sparse(t, sqrt_w) for t in tail], format="csr")
            A21 = (Z2.T @ Z1).tocsr()
            A22 = (Z2.T @ Z2).tocsr()  # sparse: the tail may be factored sparse
            C2 = np.asarray(Z2.T @ Xy)
        else:
            A21, A22 = _empty_csr(first.n_levels * k1), _empty_csr(0)
            C2 = np.zeros((0, p + 1))
        return cls(n, A11, C1, A21, A22, C2, Xy.T @ Xy, sum_log_weights)

    def __add__(self, other: BlockSums) -> BlockSums:
        return BlockSums(
            self.n + other.n,
            self.A11 + other.A11,
            self.C1 + other.C1,
            _add_blocks(self.A21, other.A21),
            _add_blocks(self.A22, other.A22),
            self.C2 + other.C2,
            self.XyXy + other.XyXy,
            self.sum_log_weights + other.sum_log_weights,
        )


def _add_blocks(
    a: np.ndarray | sp.csr_matrix, b: np.ndarray | sp.csr_matrix
) -> np.ndarray | sp.csr_matrix:
    """The sum of two partitions' blocks: dense where both are (a small compiled tail),
    else CSR."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a + b
    return (sp.csr_matrix(a) + sp.csr_matrix(b)).tocsr()


@functools.lru_cache(maxsize=64)
def _empty_csr(columns: int) -> sp.csr_matrix:
    """The 0 x ``columns`` CSR block of a model without a tail, made once per width: a
    one-term fit built two of them (~25 µs of sleepstudy's 0.5 ms); nothing is stored in
    a matrix without rows, so sharing it is safe."""
    return sp.csr_matrix((0, columns))


def _level_sums(codes: np.ndarray, values: np.ndarray, n_levels: int) -> np.ndarray:
    """Σ of ``values`` (n, m) over the rows of each level: (n_levels, m)."""
    if values.shape[1] == 1:
        return np.bincount(codes, weights=values[:, 0], minlength=n_levels)[:, None]
    rows = np.arange(len(codes))
    indicator = sp.csr_matrix((np.ones(len(codes)), (codes, rows)), shape=(n_levels, len(codes)))
    return np.asarray(indicator @ values)


@dataclass
class ResponseSums:
    """The y parts of the blocks for m responses on one design at once: ``Z₁ᵀWy`` per
    level, ``Z_tailᵀWy``, ``XᵀWy`` and ``yᵀWy`` (y less the offset).  Sums over disjoint
    rows add, as :class:`BlockSums`: the parametric bootstrap of a fit on Dask data
    draws every replicate's response in one pass over the partitions."""

    C1: np.ndarray  # (ℓ₁, k₁, m)
    C2: np.ndarray  # (q₂, m)
    Xy: np.ndarray  # (p, m)
    yy: np.ndarray  # (m,)

    @classmethod
    def of_rows(
        cls,
        Y: np.ndarray,
        X: np.ndarray,
        ordered: list[ReTerm],
        weights: np.ndarray | None = None,
        offset: np.ndarray | None = None,
    ) -> ResponseSums:
        """The sums of responses ``Y`` (n, m) over these rows; ``ordered`` the terms in
        internal order, with their codes and matrices."""
        if offset is not None:
            Y = Y - offset[:, None]
        YW = Y if weights is None else Y * weights[:, None]
        first = ordered[0]
        C1 = np.stack(
            [
                _level_sums(first.codes, first.matrix[:, a : a + 1] * YW, first.n_levels)
                for a in range(first.n_columns)
            ],
            axis=1,
        )
        tail = []
        for term in ordered[1:]:
            k = term.n_columns
            block = np.empty((term.n_levels, k, Y.shape[1]))
            for a in range(k):
                block[:, a] = _level_sums(term.codes, term.matrix[:, a : a + 1] * YW, term.n_levels)
            tail.append(block.reshape(term.n_effects, -1))
        C2 = np.concatenate(tail) if tail else np.zeros((0, Y.shape[1]))
        return cls(C1, C2, X.T @ YW, np.einsum("nm,nm->m", Y, YW))

    def __add__(self, other: ResponseSums) -> ResponseSums:
        return ResponseSums(
            self.C1 + other.C1, self.C2 + other.C2, self.Xy + other.Xy, self.yy + other.yy
        )


@dataclass
class CrossProducts:
    """Cross-product blocks of ``[Z X y]``, formed once per model.

    Attributes
    ----------
    terms : list of ReTerm
        Terms in internal (largest first) order.
    order : ndarray of int
        ``order[i]`` is the formula position of internal term ``i``.
    structures : list of CovarianceStructure
    A11 : ndarray (ℓ₁, k₁, k₁)
        Block-diagonal ``Z₁ᵀZ₁``.
    C1 : ndarray (ℓ₁, k₁, p + 1)
        ``Z₁ᵀ[X y]`` per level.
    A21 : sparse (Q₂, q₁)
        ``Z_tailᵀ Z₁`` (a property: the compiled row pass's dense block is made CSR on
        first read, which a compiled fit never makes).
    A22 : ndarray (Q₂, Q₂)
        ``Z_tailᵀ Z_tail``, dense.
    C2 : ndarray (Q₂, p + 1)
        ``Z_tailᵀ[X y]``.
    XyXy : ndarray (p + 1, p + 1)
    """

    n: int
    p: int
    terms: list[ReTerm]
    order: np.ndarray
    structures: list[CovarianceStructure]
    theta_slices: list[slice]
    A11: np.ndarray
    C1: np.ndarray
    _A21: sp.csr_matrix | np.ndarray | None
    A22: np.ndarray
    C2: np.ndarray
    XyXy: np.ndarray
    tail_offsets: list[int]
    sum_log_weights: float
    pair_map: _PairMap | None = field(default=None, repr=False)
    dense_A21: np.ndarray | None = field(default=None, repr=False)
    tail_scalar: bool = True
    # set when the tail is factored sparse (A22 is then CSR): mixedmodels.lmm.sparse_tail
    sparse_tail: SparseTail | None = field(default=None, repr=False)

    @property
    def A21(self) -> sp.csr_matrix | None:
        """``Z_tailᵀZ₁`` as CSR, indices sorted (None where a caller keeps only
        :attr:`dense_A21`)."""
        if isinstance(self._A21, np.ndarray):
            self._A21 = _dense_to_csr(self._A21.ravel(), *self._A21.shape)
        return self._A21

    @classmethod
    def build(
        cls,
        y: np.ndarray,
        X: np.ndarray,
        terms: list[ReTerm] | tuple[ReTerm, ...],
        weights: np.ndarray | None = None,
        offset: np.ndarray | None = None,
    ) -> CrossProducts:
        """Form every block once: O(n) passes, memory bounded by the blocks."""
        order = internal_order(terms)
        ordered = [terms[i] for i in order]
        check_tail_size(ordered)
        sums = BlockSums.of_rows(y, X, ordered, weights, offset)
        return cls.from_sums(sums, ordered, order)

    @classmethod
    def from_sums(cls, sums: BlockSums, ordered: list[ReTerm], order: np.ndarray) -> CrossProducts:
        """The blocks from their row sums (of one table, or added over partitions), with
        the fast-path maps of the factorization; ``ordered`` are the terms largest first
        (their rows are not read)."""
        structures = [structure_for(t.structure, t.n_columns) for t in ordered]
        theta_slices = []
        start = 0
        for s in structures:
            theta_slices.append(slice(start, start + s.n_theta))
            start += s.n_theta
        first = ordered[0]
        k1 = first.n_columns
        tail = ordered[1:]
        tail_offsets = [0]
        for t in tail:
            tail_offsets.append(tail_offsets[-1] + t.n_effects)
        q2 = tail_offsets[-1]
        tail_scalar = all(t.n_columns == 1 for t in tail)
        sparse_tail = None
        dense_blocks = isinstance(sums.A21, np.ndarray)  # a small tail: never factored sparse
        if dense_blocks:  # made CSR when first read (CrossProducts.A21)
            A21 = sums.A21
        else:
            A21 = sums.A21.tocsr()
            A21.sort_indices()  # the sparse tail reads the data in this order
        A22 = sums.A22
        if tail and not dense_blocks:
            A22 = A22.tocsr()
            A22.sort_indices()
            if tail_scalar:
                sparse_tail = choose(A21, A22, k1, dense_allowed=q2 <= MAX_DENSE_EFFECTS)
        if q2 > MAX_DENSE_EFFECTS and sparse_tail is None:
            sizes = ", ".join(f"{t.group} ({t.n_effects})" for t in tail)
            sparse_note = (
                f", and their sparse Cholesky factor (after a fill-reducing ordering) more "
                f"than {sparse_tail_module.MAX_FACTOR_BYTES / 1e9:.1f} GB"
                if tail_scalar
                else ""
            )
            raise DataError(
                f"The random-effects terms after the largest one ({first.group}) have {q2} "
                f"random effects in all ({sizes}); their dense block would need "
                f"{q2 * q2 * 8 / 1e9:.1f} GB{sparse_note}. Models with two grouping factors "
                f"of more than {MAX_DENSE_EFFECTS} levels each are supported only with "
                f"scalar (intercept-only) terms after the largest, whose sparse factor fits."
            )
        if sparse_tail is None and not dense_blocks:
            A22 = A22.toarray() if tail else np.zeros((0, 0))
        pair_map = None
        dense_A21 = None
        # Both fast paths fill the lower triangle of A₂₁WA₂₁ᵀ only: valid while Λ₂ is
        # diagonal.  Rough costs per evaluation in ns: the map reads each pair once (and
        # costs ~80 ns a pair to build, spread over ~50 evaluations); BLAS syrk runs at
        # ~20 GFLOP/s on two cores.
        if tail and k1 == 1 and tail_scalar and sparse_tail is None:
            # non-zeros per column of A₂₁ (no CSC copy: ~50 µs on a small tail)
            counts = (
                np.count_nonzero(A21, axis=0).astype(np.int64)
                if dense_blocks
                else np.bincount(A21.indices, minlength=A21.shape[1]).astype(np.int64)
            )
            pairs = int(np.sum(counts * (counts + 1) // 2))
            map_cost = 2.6 * pairs
            dense_cost = q2 * q2 * first.n_levels / 40 + q2 * first.n_levels
            if pairs <= _MAP_MAX_ENTRIES and map_cost <= dense_cost:
                csc = sp.csc_matrix(A21) if dense_blocks else A21.tocsc()
                pair_map = _PairMap.build(csc, q2)
            elif q2 * first.n_levels <= _MAP_MAX_ENTRIES:
                dense_A21 = np.asfortranarray(A21 if dense_blocks else A21.toarray())
        return cls(
            n=sums.n,
            p=sums.XyXy.shape[0] - 1,
            terms=ordered,
            order=order,
            structures=structures,
            theta_slices=theta_slices,
            A11=sums.A11,
            C1=sums.C1,
            _A21=A21,
            A22=A22,
            C2=sums.C2,
            XyXy=sums.XyXy,
            tail_offsets=tail_offsets,
            sum_log_weights=sums.sum_log_weights,
            pair_map=pair_map,
            dense_A21=dense_A21,
            tail_scalar=tail_scalar,
            sparse_tail=sparse_tail,
        )

    def with_response(
        self,
        y: np.ndarray,
        X: np.ndarray,
        weights: np.ndarray | None = None,
        offset: np.ndarray | None = None,
    ) -> CrossProducts:
        """The same design with a new response ``y`` (e.g. a parametric-bootstrap draw).

        Only the y column of ``C1``, ``C2`` and the y row/column of ``XyXy`` are recomputed
        (one O(n) pass, :class:`ResponseSums`); Z's blocks and the fast-path maps are
        shared with ``self``.  ``X``, ``weights`` and ``offset`` must be those the blocks
        were built from.
        """
        sums = ResponseSums.of_rows(np.asarray(y)[:, None], X, self.terms, weights, offset)
        return self.with_response_sums(sums, 0)

    def with_response_sums(self, sums: ResponseSums, index: int) -> CrossProducts:
        """The same design with the y parts of response ``index`` of ``sums``."""
        from dataclasses import replace

        C1 = self.C1.copy()
        C1[:, :, -1] = sums.C1[:, :, index]
        C2 = self.C2.copy()
        C2[:, -1] = sums.C2[:, index]
        XyXy = self.XyXy.copy()
        p = self.p
        XyXy[:p, p] = XyXy[p, :p] = sums.Xy[:, index]
        XyXy[p, p] = sums.yy[index]
        return replace(self, C1=C1, C2=C2, XyXy=XyXy)

    @property
    def n_theta(self) -> int:
        return self.theta_slices[-1].stop

    @property
    def q1(self) -> int:
        return self.A11.shape[0] * self.A11.shape[1]

    @property
    def q2(self) -> int:
        return self.A22.shape[0]

    def lower_bounds(self) -> np.ndarray:
        return np.concatenate([s.lower_bounds() for s in self.structures])

    def initial_theta(self) -> np.ndarray:
        return np.concatenate([s.initial() for s in self.structures])

    def factors(self, theta: np.ndarray) -> list[np.ndarray]:
        return [
            s.factor(theta[sl]) for s, sl in zip(self.structures, self.theta_slices, strict=True)
        ]

    def tail_lambda(self, factors: list[np.ndarray]) -> np.ndarray | sp.spmatrix:
        """Λ₂ for the tail: a vector when every tail term is scalar, else sparse."""
        if self.tail_scalar:  # each term's relative SD repeated over its levels
            values = [T[0, 0] for T in factors[1:]]
            return np.repeat(np.array(values, dtype=float), [t.n_levels for t in self.terms[1:]])
        blocks = [
            sp.kron(sp.identity(t.n_levels, format="csr"), sp.csr_matrix(T))
            for t, T in zip(self.terms[1:], factors[1:], strict=True)
        ]
        return sp.block_diag(blocks, format="csr")
