"""The cross-product blocks of ``[Z X z]`` that PIRLS rebuilds at every step, for new
working weights and response, without rebuilding any sparse structure: each block is a
fixed map applied to the weights, precomputed once per model, or for scalar terms one
compiled pass over the rows (:mod:`mixedmodels.lmm._kernels`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from ..frontend.design_types import ReTerm
from ..lmm import _kernels
from ..lmm._kernels import HAVE_NUMBA
from ..lmm.crossprods import CrossProducts, _term_sparse


class WeightedCrossProducts:
    """The cross-product blocks of ``[Z X z]`` for new working weights and response,
    without rebuilding any sparse structure: each block is a fixed sparse map applied
    to the weights, precomputed once per model (PIRLS changes only w and z)."""

    def __init__(self, X: np.ndarray, terms: tuple[ReTerm, ...]):
        n = X.shape[0]
        self.X = X
        self.template = CrossProducts.build(np.zeros(n), X, terms)
        ordered = self.template.terms
        first, tail = ordered[0], ordered[1:]
        self.first = first
        self.Z1T = _term_sparse(first, None).T.tocsr()
        k1 = first.n_columns
        self.products = {
            (a, b): first.matrix[:, a] * first.matrix[:, b] for a in range(k1) for b in range(a, k1)
        }
        self.q2 = self.template.q2
        self.kernel_inputs = None
        if not tail:
            self.Z2T = None
            self._prepare_kernel(first, tail)
            return
        Z2 = sp.hstack([_term_sparse(t, None) for t in tail], format="csr")
        self.Z2T = Z2.T.tocsr()
        Z1 = _term_sparse(first, None)
        # every row contributes z2_i z1_j to A21[i, j] and z2_i z2_i' to A22[i, i']
        rows2, cols2, vals2 = _row_entries(Z2)
        rows1, cols1, vals1 = _row_entries(Z1)
        r21_row, i21, j21 = _pairs(rows2, cols2, rows1, cols1)
        v21 = vals2[i21] * vals1[j21]
        pattern = self.template.A21.tocsr()
        pattern.sort_indices()
        keys = np.repeat(np.arange(pattern.shape[0]), np.diff(pattern.indptr)).astype(np.int64)
        keys = keys * pattern.shape[1] + pattern.indices
        position = np.searchsorted(
            keys, cols2[i21].astype(np.int64) * pattern.shape[1] + cols1[j21]
        )
        self.A21_indices, self.A21_indptr = pattern.indices, pattern.indptr
        self.A21_shape = pattern.shape
        self.P21 = sp.csr_matrix((v21, (position, r21_row)), shape=(len(keys), n))
        r22_row, i22, k22 = _pairs(rows2, cols2, rows2, cols2)
        flat = cols2[i22].astype(np.int64) * self.q2 + cols2[k22]
        self.sparse_A22 = None
        size22 = self.q2**2
        if self.template.sparse_tail is not None:  # A₂₂ stays CSR, on the template's pattern
            pattern22 = self.template.A22
            keys22 = np.repeat(np.arange(self.q2, dtype=np.int64), np.diff(pattern22.indptr))
            flat = np.searchsorted(keys22 * self.q2 + pattern22.indices, flat)
            self.sparse_A22 = (pattern22.indices, pattern22.indptr)
            size22 = pattern22.nnz
        self.P22 = sp.csr_matrix((vals2[i22] * vals2[k22], (flat, r22_row)), shape=(size22, n))
        # the dense tail path: for a vector first term only while the q₂² q₁ product
        # is small (scipy's sparse products cost ~0.5 ms of overhead a call)
        q1 = first.n_levels * k1
        self.dense = (
            self.template.sparse_tail is None
            and self.template.tail_scalar
            and ((k1 == 1 and self.q2 * q1 <= 4_000_000) or self.q2 * self.q2 * q1 <= 20_000_000)
        )
        if self.dense:
            self._prepare_kernel(first, tail)

    def _prepare_kernel(self, first: ReTerm, tail: list[ReTerm]) -> None:
        """Inputs of the compiled one-pass kernel, when every term is scalar."""
        if not (HAVE_NUMBA and first.n_columns == 1 and all(t.n_columns == 1 for t in tail)):
            return
        n = len(first.codes)
        offsets = self.template.tail_offsets
        columns = np.empty((n, len(tail)), dtype=np.int64)
        values = np.empty((n, len(tail)))
        for index, term in enumerate(tail):
            columns[:, index] = offsets[index] + term.codes
            values[:, index] = term.matrix[:, 0]
        self.kernel_inputs = (
            np.ascontiguousarray(first.codes, dtype=np.int64),
            np.ascontiguousarray(first.matrix[:, 0], dtype=float),
            columns,
            values,
        )

    def evaluate(self, response: np.ndarray, weights: np.ndarray) -> CrossProducts:
        if self.kernel_inputs is not None:
            return self._evaluate_compiled(response, weights)
        Xz = np.column_stack([self.X, response])
        WXz = Xz * weights[:, None]
        first = self.first
        k1 = first.n_columns
        A11 = np.empty((first.n_levels, k1, k1))
        for (a, b), product in self.products.items():
            A11[:, a, b] = np.bincount(
                first.codes, weights=weights * product, minlength=first.n_levels
            )
            A11[:, b, a] = A11[:, a, b]
        C1 = np.asarray(self.Z1T @ WXz).reshape(first.n_levels, k1, Xz.shape[1])
        changes = {"A11": A11, "C1": C1, "XyXy": Xz.T @ WXz, "pair_map": None, "dense_A21": None}
        if self.Z2T is not None:
            A21 = sp.csr_matrix(
                (self.P21 @ weights, self.A21_indices, self.A21_indptr), shape=self.A21_shape
            )
            changes["_A21"] = A21
            if self.sparse_A22 is not None:
                changes["A22"] = sp.csr_matrix(
                    (self.P22 @ weights, *self.sparse_A22), shape=(self.q2, self.q2)
                )
            else:
                changes["A22"] = (self.P22 @ weights).reshape(self.q2, self.q2)
            changes["C2"] = np.asarray(self.Z2T @ WXz)
            if self.dense:
                changes["dense_A21"] = np.asfortranarray(A21.toarray())
        return dataclasses.replace(self.template, **changes)

    def _evaluate_compiled(self, response: np.ndarray, weights: np.ndarray) -> CrossProducts:
        """:meth:`evaluate` for scalar terms in one compiled pass; the tail's A₂₁ is
        dense only (``A21`` is None: the factorization reads ``dense_A21``)."""
        codes1, z1, columns, values = self.kernel_inputs
        Xz = np.column_stack([self.X, response])
        ell1 = self.first.n_levels
        A11, C1, A21, A22, C2 = _kernels.scalar_term_blocks(
            codes1, z1, columns, values, Xz, np.ascontiguousarray(weights), ell1, self.q2
        )
        changes = {
            "A11": A11.reshape(ell1, 1, 1),
            "C1": C1.reshape(ell1, 1, Xz.shape[1]),
            "XyXy": Xz.T @ (Xz * weights[:, None]),
            "pair_map": None,
            "dense_A21": None,
        }
        if self.q2:
            changes.update(_A21=None, A22=A22, C2=C2, dense_A21=np.asfortranarray(A21))
        return dataclasses.replace(self.template, **changes)


def _row_entries(Z: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Z = Z.tocsr()
    rows = np.repeat(np.arange(Z.shape[0]), np.diff(Z.indptr))
    return rows, Z.indices, Z.data


def _pairs(
    rows_a: np.ndarray, cols_a: np.ndarray, rows_b: np.ndarray, cols_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (entry of A, entry of B) pairs that share a row; A and B are row-sorted."""
    n = int(max(rows_a.max(initial=-1), rows_b.max(initial=-1))) + 1
    count_a = np.bincount(rows_a, minlength=n)
    count_b = np.bincount(rows_b, minlength=n)
    start_a = np.cumsum(count_a) - count_a
    start_b = np.cumsum(count_b) - count_b
    per_row = count_a * count_b
    row = np.repeat(np.arange(n), per_row)
    within = np.arange(per_row.sum()) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    cb = np.maximum(count_b[row], 1)
    i = start_a[row] + within // cb
    j = start_b[row] + within % cb
    return row, i, j
