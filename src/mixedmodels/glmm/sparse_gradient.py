"""The Laplace gradient's pieces where the tail of the random effects is a sparse factor.

:mod:`.gradient` needs two things from P = ΛᵀZᵀWZΛ + I beyond solves with it: the
leverages h = diag(ZΛP⁻¹ΛᵀZᵀ) and the traces of P⁻¹ over each term.  With every term
scalar and the first term eliminated level by level (diagonal M₁), P⁻¹ is

    [M₁⁻¹ + M₁⁻¹BᵀS⁻¹BM₁⁻¹, −M₁⁻¹BᵀS⁻¹;  −S⁻¹BM₁⁻¹, S⁻¹],   B = Λ₂A₂₁Λ₁,

with S the tail's Schur complement.  A row touches one level l of the first term and one
effect of each tail term, and level l couples only the tail effects that share it (the
non-zeros of A₂₁'s column l), so every entry of S⁻¹ these need lies on S's pattern: the
selected inverse of :class:`mixedmodels.lmm.sparse_tail.SparseFactor` gives them, never
a dense q₂ x q₁ or q₂ x q₂ array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..lmm.crossprods import CrossProducts
from ..lmm.deviance import Factorization
from ..lmm.sparse_tail import data_positions, pairs_within_groups


@dataclass
class _ByLevel:
    """A₂₁'s non-zeros grouped by first-term level (the CSR of A₂₁ᵀ) and every ordered
    pair of them within a level."""

    transposed: sp.csr_matrix  # A₂₁ᵀ, (ℓ₁, q₂), sorted indices
    level: np.ndarray
    effect: np.ndarray  # the tail effect of each non-zero
    left: np.ndarray
    right: np.ndarray

    @classmethod
    def of(cls, cp: CrossProducts) -> _ByLevel:
        transposed = cp.A21.T.tocsr()
        transposed.sort_indices()
        level = np.repeat(np.arange(transposed.shape[0]), np.diff(transposed.indptr))
        left, right = pairs_within_groups(level)
        return cls(transposed, level, transposed.indices.astype(np.int64), left, right)

    def inverse_pairs(self, fac: Factorization) -> np.ndarray:
        """S⁻¹ at each within-level pair."""
        return fac.sparse22.inverse_entries(self.effect[self.left], self.effect[self.right])


def _scaled_inverse(fac: Factorization, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(Λ₂S⁻¹Λ₂) at (rows[t], cols[t]), zero where ``rows`` < 0 (an entry not needed)."""
    out = np.zeros(len(rows))
    needed = rows >= 0
    r, c = rows[needed], cols[needed]
    out[needed] = fac.lam2[r] * fac.lam2[c] * fac.sparse22.inverse_entries(r, c)
    return out


def tail_leverages(cp: CrossProducts, fac: Factorization) -> np.ndarray:
    """The tail's share of h = diag(ZΛP⁻¹ΛᵀZᵀ) on the sparse path, scalar terms: what
    :func:`mixedmodels.glmm.gradient._leverages` adds to the first term's z₁²W_l.

    With G = Λ₂S⁻¹Λ₂ and A = A₂₁ diag(W) (W_l = λ₁²/M_l), a row at level l with tail
    effects t and values v adds z₁²·AᵀGA|_l − 2z₁ Σ v_t (AᵀG)_{l,t} + Σ v_t v_s G_{t,s}.
    """
    first = cp.terms[0]
    c1, z1 = first.codes, first.matrix[:, 0]
    pairs = _ByLevel.of(cp)
    weighted = pairs.transposed.data * fac.W[:, 0, 0][pairs.level]  # A at each non-zero
    g = fac.lam2[pairs.effect[pairs.left]] * fac.lam2[pairs.effect[pairs.right]]
    g *= pairs.inverse_pairs(fac)
    cross = np.bincount(pairs.right, weights=weighted[pairs.left] * g, minlength=len(weighted))
    level_part = np.bincount(pairs.level, weights=weighted * cross, minlength=first.n_levels)
    h = z1 * z1 * level_part[c1]
    tail = [
        (cp.tail_offsets[i] + term.codes.astype(np.int64), term.matrix[:, 0])
        for i, term in enumerate(cp.terms[1:])
    ]
    for m, (effects, values) in enumerate(tail):
        touched = z1 * values != 0.0  # elsewhere A₂₁ may hold no entry for the pair
        position = data_positions(pairs.transposed, c1[touched], effects[touched])
        h[touched] -= 2.0 * z1[touched] * values[touched] * cross[position]
        for other_effects, other_values in tail[: m + 1]:
            product = values * other_values
            rows = np.where(product != 0.0, effects, -1)
            weight = 1.0 if other_effects is effects else 2.0
            h += weight * product * _scaled_inverse(fac, rows, other_effects)
    return h


class SparseScalarInverse:
    """Solves with P and its traces per term, for scalar terms on the sparse tail (the
    counterpart of :class:`mixedmodels.glmm.gradient._ScalarInverse`)."""

    def __init__(self, cp: CrossProducts, fac: Factorization, lam: np.ndarray):
        self.cp, self.fac, self.lam1 = cp, fac, float(lam[0])
        self.m1 = 1.0 + lam[0] ** 2 * cp.A11[:, 0, 0]
        self.B = sp.csr_matrix(sp.diags(fac.lam2) @ cp.A21) * self.lam1  # Λ₂A₂₁Λ₁

    def solve(self, rhs: list[np.ndarray]) -> list[np.ndarray]:
        """P⁻¹ applied to a right-hand side split by term."""
        cp = self.cp
        y1 = rhs[0] / self.m1
        y2 = self.fac.sparse22.solve(np.concatenate(rhs[1:]) - self.B @ y1)
        x1 = y1 - (self.B.T @ y2) / self.m1
        offsets = cp.tail_offsets
        return [x1] + [y2[offsets[i] : offsets[i + 1]] for i in range(len(cp.terms) - 1)]

    def trace(self, index: int) -> float:
        """Σ of P⁻¹'s diagonal over one term's block."""
        if index == 0:
            pairs = _ByLevel.of(self.cp)
            b = pairs.transposed.data * self.fac.lam2[pairs.effect] * self.lam1
            b /= self.m1[pairs.level]  # (BM₁⁻¹) at each non-zero
            inner = b[pairs.left] * b[pairs.right] * pairs.inverse_pairs(self.fac)
            return float(np.sum(1.0 / self.m1) + np.sum(inner))
        start, stop = self.cp.tail_offsets[index - 1], self.cp.tail_offsets[index]
        effects = np.arange(start, stop)
        return float(np.sum(self.fac.sparse22.inverse_entries(effects, effects)))
