"""The gradient of the Laplace deviance in β, for GLMMs with a canonical link.

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

Everything is computed from the blocked factor of :mod:`mixedmodels.lmm`: the first
term's per-level blocks and the dense tail, never a dense q x q inverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg as sla

from .families import Family
from .lmm import CrossProducts, Factorization, factorize, solve_modes

if TYPE_CHECKING:
    from .glmm import GlmmProblem, PirlsResult


def has_beta_gradient(problem: GlmmProblem) -> bool:
    """Whether :func:`beta_gradient` applies: a canonical link, the Laplace deviance and
    some fixed effects."""
    return (
        problem.family.observed_information_weights and problem.nagq == 1 and problem.X.shape[1] > 0
    )


def weight_derivative(family: Family, mu: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """dw/dη for a canonical link: w = prior · V(μ) and dμ/dη = V(μ), so w′ = w · V′(μ)."""
    if family.name == "binomial":
        return weights * (1.0 - 2.0 * mu)
    return weights  # poisson: V′ = 1


def beta_gradient(
    problem: GlmmProblem, theta: np.ndarray, state: PirlsResult
) -> tuple[np.ndarray, np.ndarray]:
    """The gradient of the Laplace deviance in β at a converged PIRLS state, and the
    marginal information ``XᵀWX̃`` of β (half the Gauss-Newton Hessian).

    Parameters
    ----------
    problem : GlmmProblem
    theta : ndarray
    state : PirlsResult
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


def _blocked_pieces(problem: GlmmProblem, theta: np.ndarray, state: PirlsResult) -> GradientPieces:
    """:func:`gradient_pieces` at a PIRLS state, reusing its factor when it kept one."""
    if state.factorization is None:
        link = problem.family.link
        working = state.eta - problem.offset + (problem.y - state.mu) / link.mu_eta(state.eta)
        cp = problem._blocks(True).evaluate(working, state.weights)
        fac = factorize(cp, theta)
    else:
        cp, fac = state.factorization
    return gradient_pieces(problem, cp, fac)


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
