"""The exact gradient of the Laplace deviance, for GLMMs with a canonical link: in β
always, in θ when every random-effects term is scalar (:func:`theta_gradient`).

At fixed θ the Laplace deviance is

    D(β) = −2 log p(y | η̂) + ‖û‖² + log|ΛᵀZᵀW(η̂)ZΛ + I|,   η̂ = offset + Xβ + ZΛû(β),

with û(β) the conditional modes.  The first two terms are minimised over u at û, so
their derivative is the partial one, −2Xᵀs with s the score ``w (y − μ)/μ_η``.  The
log-determinant moves with β through the working weights: with P = ΛᵀZᵀWZΛ + I and a
canonical link (observed information = the working weights W, so that
dû/dβ = −P⁻¹ΛᵀZᵀWX),

    ∂ log|P| / ∂β = X̃ᵀ (w′ ∘ h),   X̃ = X − ZΛP⁻¹ΛᵀZᵀWX,   h = diag(ZΛP⁻¹ΛᵀZᵀ),

where w′ = dw/dη.  X̃ᵀWX = XᵀWX̃ is the marginal information of β (lme4's RXᵀRX),
the Gauss-Newton curvature for Newton steps on β.

Everything is computed from the blocked factor of :mod:`mixedmodels.lmm.deviance`: the first
term's per-level blocks and the tail (dense, or a sparse factor whose selected inverse
:mod:`.sparse_gradient` reads), never a dense q x q inverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg as sla

from ..lmm import _kernels
from ..lmm._kernels import HAVE_NUMBA
from ..lmm.crossprods import CrossProducts
from ..lmm.deviance import Factorization, factorize, solve_modes
from . import sparse_gradient
from .families import Family

if TYPE_CHECKING:  # pragma: no cover - pirls imports this module
    from .._protocols import GlmmProblem, PirlsState


#: the leverages form q₂ x q₁ dense arrays (the tail against the first term): above this
#: many entries (80 MB) the derivative-free path is taken instead
MAX_DENSE_ENTRIES = 10_000_000


def has_beta_gradient(problem: GlmmProblem) -> bool:
    """Whether :func:`beta_gradient` applies: a canonical link, the Laplace deviance, some
    fixed effects, and a tail small enough for dense q₂ x q₁ arrays."""
    cp = problem.template
    if cp.sparse_tail is None:
        fits = cp.q1 * cp.q2 <= MAX_DENSE_ENTRIES
    else:  # the leverages from S⁻¹ on its pattern (:mod:`.sparse_gradient`): scalar terms
        fits = all(t.n_columns == 1 for t in cp.terms)
    return (
        problem.family.observed_information_weights
        and problem.nagq == 1
        and problem.X.shape[1] > 0
        and fits
    )


def weight_derivative(family: Family, mu: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """dw/dη for a canonical link: w = prior · V(μ) and dμ/dη = V(μ), so w′ = w · V′(μ)."""
    return weights * family.variance_derivative(mu)


def beta_gradient(
    problem: GlmmProblem, theta: np.ndarray, state: PirlsState
) -> tuple[np.ndarray, np.ndarray]:
    """The gradient of the Laplace deviance in β at a converged PIRLS state, and the
    marginal information ``XᵀWX̃`` of β (half the Gauss-Newton Hessian).

    Parameters
    ----------
    problem : GlmmProblem
    theta : ndarray
    state : PirlsState
        PIRLS converged at (θ, β) with β fixed.

    Returns
    -------
    gradient : ndarray (p,)
    information : ndarray (p, p)
    """
    mu, weights = state.mu, state.weights
    X = problem.X
    score = problem.prior_weights * (problem.y - mu)  # w (y − μ)/μ_η, canonical link
    w_prime = weight_derivative(problem.family, mu, weights)
    if problem.scalar_single:
        x_tilde, h = _scalar_pieces(problem, theta, weights)
        information = X.T @ (weights[:, None] * x_tilde)
        information = 0.5 * (information + information.T)
        log_det_gradient = x_tilde.T @ (w_prime * h)
    else:
        pieces = _blocked_pieces(problem, theta, state)
        information = pieces.information
        log_det_gradient = pieces.log_determinant_gradient(w_prime)
    return -2.0 * (X.T @ score) + log_det_gradient, information


def _scalar_pieces(
    problem: GlmmProblem, theta: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """X̃ and h for one scalar term: P is diagonal, 1 + λ² Σ w z² per level."""
    term = problem.ordered_terms[0]
    lam = float(problem.template.factors(theta)[0][0, 0])
    z, codes, ell = term.matrix[:, 0], term.codes, term.n_levels
    wz = weights * z
    diag = 1.0 + lam * lam * np.bincount(codes, weights=wz * z, minlength=ell)
    X = problem.X
    ZtWX = np.stack(
        [np.bincount(codes, weights=wz * X[:, j], minlength=ell) for j in range(X.shape[1])],
        axis=1,
    )
    modes = lam * ZtWX / diag[:, None]  # P⁻¹ΛᵀZᵀWX per level
    x_tilde = X - (lam * z)[:, None] * modes[codes]
    h = lam * lam * z * z / diag[codes]
    return x_tilde, h


@dataclass
class GradientPieces:
    """What the β gradient is made of, from one factor of the [Z X z] blocks."""

    x_tilde: np.ndarray  # X − ZΛP⁻¹ΛᵀZᵀWX, (n, p)
    leverages: np.ndarray  # h = diag(ZΛP⁻¹ΛᵀZᵀ), (n,)
    information: np.ndarray  # XᵀWX̃ = RXᵀRX, (p, p)
    #: P⁻¹ΛᵀZᵀW[X z] per internal term, (ℓ, k, p + 1): dû/dβ is minus the X columns,
    #: and the modes at β are ``modes[..., p] − modes[..., :p] @ β``
    modes: list[np.ndarray]

    def log_determinant_gradient(self, weight_derivative: np.ndarray) -> np.ndarray:
        """∂ log|P| / ∂β = X̃ᵀ(w′ ∘ h)."""
        return self.x_tilde.T @ (weight_derivative * self.leverages)

    def modes_at(self, beta: np.ndarray) -> list[np.ndarray]:
        """The PLS modes of the working response with the fixed effects at ``beta``."""
        p = beta.size
        return [m[..., p] - m[..., :p] @ beta for m in self.modes]


def gradient_pieces(problem: GlmmProblem, cp: CrossProducts, fac: Factorization) -> GradientPieces:
    """X̃, h, XᵀWX̃ and the modes of [X z] on the blocked factor of the joint blocks."""
    p = cp.p
    modes = solve_modes(cp, fac, np.eye(p + 1))
    x_tilde = np.array(problem.X, order="C")
    for term, T, u in zip(cp.terms, fac.factors, modes, strict=True):
        b = np.einsum("ab,lbm->alm", T, u[..., :p])  # Λ per level, (k, ℓ, p) contiguous
        for a in range(term.n_columns):
            x_tilde -= term.matrix[:, a : a + 1] * np.take(b[a], term.codes, axis=0)
    RX = fac.L33[:p, :p]
    return GradientPieces(x_tilde, _leverages(cp, fac), RX @ RX.T, modes)


def _blocked_pieces(problem: GlmmProblem, theta: np.ndarray, state: PirlsState) -> GradientPieces:
    """:func:`gradient_pieces` at a PIRLS state, reusing its factor when it kept one and
    keeping them on the state (the θ and β gradients share them)."""
    if state.pieces is None:
        state.pieces = gradient_pieces(problem, *_state_factor(problem, theta, state))
    return state.pieces


def _state_factor(
    problem: GlmmProblem, theta: np.ndarray, state: PirlsState
) -> tuple[CrossProducts, Factorization]:
    """The [Z X z] blocks at a state's weights and their factor (kept or formed)."""
    if state.factorization is not None:
        return state.factorization
    working = problem.working_response(state.eta, state.mu)
    cp = problem._blocks(True).evaluate(working, state.weights)
    return cp, factorize(cp, theta)


def _row_entries(cp) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """Each row's nonzeros of Z as (column in [first | tail] order, value, in first term)."""
    entries = []
    first = cp.terms[0]
    k1 = first.n_columns
    for a in range(k1):
        entries.append((first.codes * k1 + a, first.matrix[:, a], True))
    for index, term in enumerate(cp.terms[1:]):
        k = term.n_columns
        for a in range(k):
            entries.append((cp.tail_offsets[index] + term.codes * k + a, term.matrix[:, a], False))
    return entries


def _leverages(cp, fac) -> np.ndarray:
    """h = diag(ZΛP⁻¹ΛᵀZᵀ), by block elimination of P.

    With the first term's blocks M₁ (per level) and the tail's Schur factor L₂₂, a row
    with first-term part a = Λ₁ᵀz₁ and tail part t = Λ₂ᵀz₂ has
    h = aᵀM₁⁻¹a + ‖L₂₂⁻¹(BM₁⁻¹a − t)‖², B = Λ₂ᵀA₂₁Λ₁ (``fac.W`` holds Λ₁M₁⁻¹Λ₁ᵀ).
    The squared norm is read from the Gram matrix of V = [L₂₂⁻¹BM₁⁻¹Λ₁ᵀ, −L₂₂⁻¹Λ₂ᵀ] at
    the few column pairs each row touches: no n x q₂ array.
    """
    first = cp.terms[0]
    z1, c1 = first.matrix, first.codes
    h = np.einsum("nk,nka,na->n", z1, fac.W[c1], z1)
    if not cp.q2:
        return h
    if fac.sparse22 is not None:
        return h + sparse_gradient.tail_leverages(cp, fac)
    lam2 = fac.lam2
    lam2_dense = np.diag(lam2) if isinstance(lam2, np.ndarray) else lam2.toarray()
    K = sla.solve_triangular(fac.L22, lam2_dense.T, lower=True, check_finite=False)  # L₂₂⁻¹Λ₂ᵀ
    ell1, k1 = first.n_levels, first.n_columns
    A21 = cp.dense_A21 if cp.dense_A21 is not None else cp.A21.toarray()
    A21W = np.einsum("qla,lab->qlb", A21.reshape(cp.q2, ell1, k1), fac.W)
    R1 = K @ A21W.reshape(cp.q2, -1)  # (q₂, q₁)
    G11 = np.einsum("qla,qlb->lab", R1.reshape(cp.q2, ell1, k1), R1.reshape(cp.q2, ell1, k1))
    G12 = -(R1.T @ K)  # (q₁, q₂)
    G22 = K.T @ K
    if HAVE_NUMBA and k1 == 1 and cp.tail_scalar:  # one compiled pass over the rows
        tail = cp.terms[1:]
        columns = np.empty((len(c1), len(tail)), dtype=np.int64)
        values = np.empty((len(c1), len(tail)))
        for index, term in enumerate(tail):
            columns[:, index] = cp.tail_offsets[index] + term.codes
            values[:, index] = term.matrix[:, 0]
        return _kernels.scalar_leverages(
            np.ascontiguousarray(c1, dtype=np.int64),
            np.ascontiguousarray(z1[:, 0], dtype=float),
            columns,
            values,
            np.ascontiguousarray(fac.W[:, 0, 0]),
            np.ascontiguousarray(G11[:, 0, 0]),
            np.ascontiguousarray(G12),
            np.ascontiguousarray(G22),
        )
    entries = _row_entries(cp)
    for i, (col_i, val_i, first_i) in enumerate(entries):
        for j, (col_j, val_j, first_j) in enumerate(entries[: i + 1]):
            if first_i and first_j:
                gram = G11[c1, col_i % k1, col_j % k1]
            elif first_j:  # i in the tail, j in the first term
                gram = G12[col_j, col_i]
            else:
                gram = G22[col_i, col_j]
            h += (1.0 if i == j else 2.0) * val_i * val_j * gram
    return h


def has_theta_gradient(problem: GlmmProblem) -> bool:
    """Whether :func:`theta_gradient` applies: :func:`has_beta_gradient` and every
    random-effects term scalar (θ is then the relative SD of each term)."""
    return has_beta_gradient(problem) and all(t.n_columns == 1 for t in problem.ordered_terms)


def theta_gradient(problem: GlmmProblem, theta: np.ndarray, state: PirlsState) -> np.ndarray:
    """∂D/∂θ of the Laplace deviance at fixed β, for scalar terms (θ_t = λ_t), at a
    converged state that kept its factor.

    With s the score and û = ΛZᵀs, for term t with its block E_t:

    * the penalized deviance at fixed u moves by −2 u_tᵀZ_tᵀs;
    * log|P| moves directly by (2/λ_t)(ℓ_t − tr_t P⁻¹) (since P⁻¹ΛZᵀWZΛ = I − P⁻¹),
    * and through the working weights by Σ w′h dη/dλ_t, with
      dη/dλ_t = Z_tu_t + ZΛ P⁻¹(E_tZ_tᵀs − ΛZᵀW Z_tu_t).
    """
    cp, fac = _state_factor(problem, theta, state)
    terms = cp.terms
    mu, weights = state.mu, state.weights
    score = problem.prior_weights * (problem.y - mu)
    lam = np.array([T[0, 0] for T in fac.factors])
    pieces = _blocked_pieces(problem, theta, state)
    w_prime_h = weight_derivative(problem.family, mu, weights) * pieces.leverages
    if fac.sparse22 is not None:
        inverse = sparse_gradient.SparseScalarInverse(cp, fac, lam)
    else:
        inverse = _ScalarInverse(cp, fac, lam)
    z_score = [
        np.bincount(t.codes, weights=t.matrix[:, 0] * score, minlength=t.n_levels) for t in terms
    ]
    gradient = np.zeros(len(terms))
    for index, term in enumerate(terms):
        u_t = state.u[index][:, 0]
        v = term.matrix[:, 0] * u_t[term.codes]  # Z_t u_t
        rhs = [
            -lam[j]
            * np.bincount(
                other.codes, weights=other.matrix[:, 0] * weights * v, minlength=other.n_levels
            )
            for j, other in enumerate(terms)
        ]
        rhs[index] = rhs[index] + z_score[index]
        r = inverse.solve(rhs)
        deta = v.copy()
        for j, other in enumerate(terms):
            deta += lam[j] * other.matrix[:, 0] * r[j][other.codes]
        direct = 0.0
        if lam[index] > 0:
            direct = 2.0 / lam[index] * (term.n_levels - inverse.trace(index))
        gradient[index] = -2.0 * float(u_t @ z_score[index]) + direct + float(w_prime_h @ deta)
    # the engine's internal order to the formula's θ order
    out = np.empty_like(gradient)
    for index, sl in enumerate(cp.theta_slices):
        out[sl] = gradient[index]
    return out


class _ScalarInverse:
    """Solves with P = ΛZᵀWZΛ + I and its diagonal, for scalar terms, from the blocked
    factor: the first term's diagonal M₁ and the tail's Schur factor L₂₂."""

    def __init__(self, cp: CrossProducts, fac: Factorization, lam: np.ndarray):
        self.cp, self.fac = cp, fac
        self.m1 = 1.0 + lam[0] ** 2 * cp.A11[:, 0, 0]
        self.B = None
        if cp.q2:
            A21 = cp.dense_A21 if cp.dense_A21 is not None else cp.A21.toarray()
            self.B = fac.lam2[:, None] * A21 * lam[0]  # Λ₂A₂₁Λ₁

    def solve(self, rhs: list[np.ndarray]) -> list[np.ndarray]:
        cp = self.cp
        y1 = rhs[0] / self.m1
        if not cp.q2:
            return [y1]
        r2 = np.concatenate(rhs[1:]) - self.B @ y1
        y2 = sla.cho_solve((self.fac.L22, True), r2, check_finite=False)
        x1 = y1 - (self.B.T @ y2) / self.m1
        return [x1] + [
            y2[cp.tail_offsets[i] : cp.tail_offsets[i + 1]] for i in range(len(cp.terms) - 1)
        ]

    def trace(self, index: int) -> float:
        """Σ of P⁻¹'s diagonal over one term's block."""
        cp, L22 = self.cp, self.fac.L22
        if index == 0:
            total = float(np.sum(1.0 / self.m1))
            if cp.q2:
                F = sla.solve_triangular(L22, self.B, lower=True, check_finite=False) / self.m1
                total += float(np.sum(F * F))
            return total
        start, stop = cp.tail_offsets[index - 1], cp.tail_offsets[index]
        Linv = sla.solve_triangular(
            L22, np.eye(cp.q2)[:, start:stop], lower=True, check_finite=False
        )
        return float(np.sum(Linv * Linv))
