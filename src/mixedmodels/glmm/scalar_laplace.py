"""Compiled Laplace states of binomial-logit and Poisson-log GLMMs whose random-effects
terms are all scalar, with a small dense tail: ``(1 | g)``, ``(1 | a) + (1 | b)``.

On such a model a converged state of
:meth:`~mixedmodels.glmm.pirls.GlmmProblem.laplace_pirls` with its θ gradient takes some
sixty numpy and LAPACK calls a step on row-sized arrays (2.6 ms on VerbAgg's 7,584 rows,
1.1 ms on speed dating's 7,366).  :class:`ScalarLaplace` runs the same iterations, the
same convergence rules and the same exact θ and β gradients
(:mod:`mixedmodels.glmm.gradient`) inside numba: from a warm start at the same θ, 0.56
and 0.30 ms.  What makes it pay: the reductions over rows are column dot products that
vectorize; the rows are held sorted by the first term's levels, so that each level's sums
stay in registers over its run of rows (a sum into memory per row waits for the one
before); no division sits in a vectorized loop; and the θ gradient's row sums are
cross-products of ``Zᵀs``, ``Zᵀ(w′ ∘ h)`` and the blocks already formed.

* :meth:`ScalarLaplace.joint` is ``laplace_pirls``: β and the modes together at θ;
* :meth:`ScalarLaplace.fixed` is ``pirls`` at a fixed (θ, β) with its step halving,
  then the gradient in (θ, β) that the Hessian of :mod:`mixedmodels.glmm.optimize`
  differences.

A state that does not settle (steps that stop shrinking, a factor that fails) is
reported, and the caller takes the numpy path, which has the fallbacks.

The factor is that of :func:`mixedmodels.lmm.deviance.factorize` in dense form (its solves
are in :mod:`.laplace_solves`): the first term's levels are a diagonal M₁ = λ₁²A₁₁ + I,
eliminated into the Schur complement S of ``[tail, X, z]``, whose lower Cholesky factor
holds L₂₂ (the tail's), L₃₂ and L₃₃ (``[X z]``'s).  With B = ΛZ_tailᵀWZ₁Λ₁ the blocks of P⁻¹ are
P⁻¹₂₂ = S₂₂⁻¹ = G, P⁻¹₁₂ = −Fᵀ with F = GBM₁⁻¹, and diag P⁻¹₁₁ = M₁⁻¹ + Σ K² with
K = L₂₂⁻¹BM₁⁻¹.

Examples
--------
>>> import numpy as np
>>> from mixedmodels.frontend.design_types import ReTerm
>>> from mixedmodels.glmm.families import get_family
>>> from mixedmodels.glmm.pirls import GlmmProblem
>>> rng = np.random.default_rng(1)
>>> g, h = rng.integers(0, 30, 600), rng.integers(0, 6, 600)
>>> eta = 0.3 + rng.normal(size=30)[g] + 0.5 * rng.normal(size=6)[h]
>>> y = (rng.random(600) < 1 / (1 + np.exp(-eta))).astype(float)
>>> terms = tuple(ReTerm(n, c, np.arange(c.max() + 1).astype(str), np.ones((600, 1)),
...                      ("(Intercept)",), "us", "1", (n,)) for n, c in (("g", g), ("h", h)))
>>> problem = GlmmProblem(y, np.ones((600, 1)), terms, np.ones(600), np.zeros(600),
...                       get_family("binomial"))
>>> kernel = ScalarLaplace.of(problem)
>>> theta, beta = np.array([0.9, 0.4]), np.array([0.2])
>>> state = kernel.fixed(theta, beta)
>>> reference = problem.pirls(theta, beta)
>>> bool(abs(state.deviance - reference.deviance) < 1e-9)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..lmm._kernels import COMPILED_TAIL, HAVE_NUMBA, _cholesky_in_place, njit
from .laplace_solves import (
    FAST_MATH,
    inverse_pieces,
    modes_at,
    pls_modes,
    solve_fixed_block,
    solve_p,
)
from .pirls import LAPLACE_TOLERANCE, MAX_HALVINGS, PIRLS_MAX_ITERATIONS, GlmmProblem

#: the families the kernel knows, by (family, link): the canonical links of the
#: fixed-dispersion families, where the working weights are the observed information
FAMILY_CODES = {("binomial", "logit"): 0, ("poisson", "log"): 1}

#: statuses of the compiled iterations
CONVERGED, NOT_CONTRACTING, BROKE_DOWN, NOT_CONVERGED = 0, 1, 2, 3


@dataclass
class LaplaceState:
    """A converged Laplace state from :class:`ScalarLaplace`.

    ``theta_gradient`` is in the formula's θ order; ``beta_gradient`` and
    ``information`` (XᵀWX̃) are those of :func:`~mixedmodels.glmm.gradient.beta_gradient`;
    ``u`` the stacked modes and ``mode_slopes`` (q, p) their derivative in β, −dû/dβ, at
    the state's weights (so ``u − mode_slopes @ δ`` starts PIRLS at β + δ).
    """

    beta: np.ndarray
    deviance: float
    theta_gradient: np.ndarray
    beta_gradient: np.ndarray
    information: np.ndarray
    u: np.ndarray
    mode_slopes: np.ndarray


class ScalarLaplace:
    """The compiled Laplace iterations of one :class:`GlmmProblem` (see the module)."""

    def __init__(self, problem: GlmmProblem, family_code: int):
        self.problem = problem
        self.family_code = family_code
        cp = problem.template
        terms = cp.terms
        first, tail = terms[0], terms[1:]
        n = len(problem.y)
        self.ell1, self.q2 = first.n_levels, cp.q2
        # the rows in the order of the first term's levels, so that each level's rows are
        # one run that the factor sums in registers (VerbAgg's rows go by item: runs of
        # one row); the kernels return nothing per row, so the order is theirs alone
        order = np.argsort(first.codes, kind="stable")
        self.codes1 = np.ascontiguousarray(first.codes[order], dtype=np.int64)
        self.z1 = np.ascontiguousarray(first.matrix[order, 0], dtype=float)
        self.columns = np.empty((len(tail), n), dtype=np.int64)  # a row per later term
        self.values = np.empty((len(tail), n))
        self.column_term = np.empty(self.q2, dtype=np.int64)
        for index, term in enumerate(tail):
            self.columns[index] = cp.tail_offsets[index] + term.codes[order]
            self.values[index] = term.matrix[order, 0]
            self.column_term[cp.tail_offsets[index] : cp.tail_offsets[index + 1]] = index + 1
        #: where each internal term's modes start in the stacked u, and end
        self.bounds = np.array([0, *(self.ell1 + np.asarray(cp.tail_offsets))], dtype=np.int64)
        #: the formula's θ position of each internal term
        self.theta_index = np.array([sl.start for sl in cp.theta_slices], dtype=np.int64)
        self.XT = np.ascontiguousarray(np.asarray(problem.X, dtype=float)[order].T)  # (p, n)
        self.y = np.ascontiguousarray(np.asarray(problem.y, dtype=float)[order])
        self.prior = np.ascontiguousarray(np.asarray(problem.prior_weights, dtype=float)[order])
        self.offset = np.ascontiguousarray(
            np.broadcast_to(problem.offset, (n,))[order], dtype=float
        )

    @classmethod
    def of(cls, problem: GlmmProblem) -> ScalarLaplace | None:
        """The kernel of ``problem``, or None where it does not apply: without numba, for
        other families or links, adaptive quadrature, no fixed effects, a vector term, or
        a tail beyond :data:`~mixedmodels.lmm._kernels.COMPILED_TAIL` effects."""
        cp = problem.template
        code = FAMILY_CODES.get((problem.family.name, problem.family.link.name))
        if (
            not HAVE_NUMBA
            or not isinstance(problem, GlmmProblem)
            or code is None
            or problem.nagq != 1
            or problem.X.shape[1] == 0
            or problem._kernel_constant is None
            or cp.sparse_tail is not None
            or cp.q2 > COMPILED_TAIL
            or any(t.n_columns != 1 for t in cp.terms)
        ):
            return None
        # built once per problem (the search and the Hessian both use it)
        kernel = problem.__dict__.get("_scalar_laplace")
        if kernel is None:
            kernel = problem.__dict__["_scalar_laplace"] = cls(problem, code)
        return kernel

    # -- the two iterations ------------------------------------------------------------
    def joint(
        self, theta: np.ndarray, beta: np.ndarray, tolerance: float = LAPLACE_TOLERANCE
    ) -> LaplaceState | None:
        """``laplace_pirls`` at θ from β and the problem's warm modes, until neither β nor
        a mode moves by ``tolerance``; None when its steps do not settle (the caller then
        takes the numpy path)."""
        return self._run(0, theta, beta, tolerance=tolerance)

    def fixed(
        self, theta: np.ndarray, beta: np.ndarray, start: np.ndarray | None = None
    ) -> LaplaceState | None:
        """``pirls`` at the fixed (θ, β), with the gradient in (θ, β); None when PIRLS
        breaks down or does not converge (the numpy path then counts the failure).
        ``start``: the stacked modes to start from, else the problem's warm modes."""
        return self._run(1, theta, beta, start)

    def keep_modes(self, theta: np.ndarray, state: LaplaceState) -> None:
        """Make the modes of ``state`` (found at θ) the problem's warm start, as a run
        at θ leaves them (without running it again)."""
        self.problem._u = [
            state.u[a:b, None] for a, b in zip(self.bounds[:-1], self.bounds[1:], strict=True)
        ]
        self.problem._u_theta = np.asarray(theta, dtype=float).copy()

    def _run(
        self,
        mode: int,
        theta: np.ndarray,
        beta: np.ndarray,
        start: np.ndarray | None = None,
        tolerance: float = LAPLACE_TOLERANCE,
    ) -> LaplaceState | None:
        problem = self.problem
        theta = np.asarray(theta, dtype=float)
        lam = np.ascontiguousarray(theta[self.theta_index])
        if start is None:
            u = np.concatenate([m[:, 0] for m in problem._warm_modes(theta)])
        else:
            u = np.array(start, dtype=float)
        status, beta_out, u_out, deviance, gradient, beta_gradient, information, slopes = (
            _laplace_state(
                mode,
                self.family_code,
                lam,
                self.column_term,
                self.bounds,
                np.array(beta, dtype=float),
                u,
                self.y,
                self.prior,
                self.offset,
                self.XT,
                self.codes1,
                self.z1,
                self.columns,
                self.values,
                problem._kernel_constant,
                25 if mode == 0 else PIRLS_MAX_ITERATIONS,
                tolerance,
                MAX_HALVINGS,
            )
        )
        if status != CONVERGED or not np.isfinite(deviance):
            return None
        if mode == 0:
            problem._beta = beta_out
        out = np.empty_like(gradient)
        out[self.theta_index] = gradient
        state = LaplaceState(beta_out, deviance, out, beta_gradient, information, u_out, slopes)
        self.keep_modes(theta, state)
        return state


# -- kernels ----------------------------------------------------------------------------
_EPS = np.finfo(np.float64).eps
_FAST = FAST_MATH


@njit(cache=True, nogil=True)
def _predictor(eta, beta, u, lam, column_term, XT, offset, codes1, z1, columns, values):
    """η = offset + Xβ + ZΛu."""
    p, n = XT.shape
    ell1 = u.size - column_term.size
    for i in range(n):
        eta[i] = offset[i] + lam[0] * z1[i] * u[codes1[i]]
    for j in range(p):
        b = beta[j]
        for i in range(n):
            eta[i] += XT[j, i] * b
    for t in range(columns.shape[0]):
        for i in range(n):
            column = columns[t, i]
            eta[i] += lam[column_term[column]] * values[t, i] * u[ell1 + column]


@njit(cache=True, nogil=True)
def _moments(family, eta, y, prior, offset, mu_, w_, dvar_, work_, with_kernel):
    """μ, the working weights w, V′(μ) and the working response at η, into the arrays;
    with ``with_kernel`` also returns −2 log p(y | μ) up to the family's constant (the
    binomial's from the one exponential: log μ = −log(1 + e^−η), as
    ``Family.loglik_kernel`` of the clipped μ wherever |η| < 36)."""
    total = 0.0
    for i in range(eta.size):
        e = eta[i]
        if family == 0:  # binomial, logit
            ec = min(max(e, -40.0), 40.0)
            t = np.exp(-ec)
            mu = min(max(1.0 / (1.0 + t), _EPS), 1.0 - _EPS)
            var = max(mu * (1.0 - mu), _EPS)
            dvar = 1.0 - 2.0 * mu
            if with_kernel:
                if abs(ec) < 36.0:
                    total += 2.0 * prior[i] * (np.log1p(t) + (1.0 - y[i]) * ec)
                else:
                    total -= 2.0 * prior[i] * (y[i] * np.log(mu) + (1.0 - y[i]) * np.log1p(-mu))
        else:  # poisson, log
            mu = max(np.exp(min(e, 700.0)), _EPS)
            var = mu
            dvar = 1.0
            if with_kernel:
                log_mu = e if -36.0 < e < 700.0 else np.log(mu)
                total += 2.0 * prior[i] * (mu - y[i] * log_mu)
        mu_[i] = mu
        w_[i] = prior[i] * var
        dvar_[i] = dvar
        work_[i] = e - offset[i] + (y[i] - mu) / var
    return total


@njit(cache=True, nogil=True, fastmath=_FAST)
def _factor(lam, lamq, XT, codes1, z1, columns, values, ws):
    """The blocks of ``[Z X z]`` at the working weights and response in ``ws`` and their
    factor: A₁₁, A₂₁, A₂₂ (unscaled, for the θ gradient), M₁, the stacked
    [ΛA₂₁Λ₁; Λ₁C₁ᵀ] and the factored S.  Returns (ok, log|P|)."""
    w, work, A11, A21, A22, M, Bf, S = ws[1], ws[3], ws[5], ws[6], ws[7], ws[8], ws[9], ws[10]
    p, n = XT.shape
    q2 = A21.shape[0]
    ell1 = M.size
    m = S.shape[0]
    n_tail = columns.shape[0]
    A11[:] = 0.0
    A21[:, :] = 0.0
    A22[:, :] = 0.0
    Bf[:, :] = 0.0
    S[:, :] = 0.0
    # A₁₁ and C₁ᵀ (into Bf's last rows) summed over each run of rows of one level in
    # registers: a sum into memory per row waits for the row before (~5 cycles) when
    # the rows of a group are adjacent, as they usually are
    sums = np.empty(p + 2)
    i = 0
    while i < n:
        level = codes1[i]
        sums[:] = 0.0
        while i < n and codes1[i] == level:
            wz = w[i] * z1[i]
            for j in range(p):
                sums[j] += wz * XT[j, i]
            sums[p] += wz * work[i]
            sums[p + 1] += wz * z1[i]
            i += 1
        A11[level] += sums[p + 1]
        for j in range(p + 1):
            Bf[q2 + j, level] += sums[j]
    for t in range(n_tail):  # C₂ into S
        for i in range(n):
            wv = w[i] * values[t, i]
            column = columns[t, i]
            for j in range(p):
                S[q2 + j, column] += wv * XT[j, i]
            S[q2 + p, column] += wv * work[i]
    for t in range(n_tail):
        for i in range(n):
            column = columns[t, i]
            wv = w[i] * values[t, i]
            A21[column, codes1[i]] += wv * z1[i]
            for s in range(n_tail):
                A22[column, columns[s, i]] += wv * values[s, i]
    for j in range(p + 1):  # [X z]ᵀW[X z], vectorized dot products
        for k in range(j + 1):
            v = 0.0
            if j < p:
                for i in range(n):
                    v += w[i] * XT[j, i] * XT[k, i]
            elif k < p:
                for i in range(n):
                    v += w[i] * work[i] * XT[k, i]
            else:
                for i in range(n):
                    v += w[i] * work[i] * work[i]
            S[q2 + j, q2 + k] = v
    lam1 = lam[0]
    for level in range(ell1):
        M[level] = lam1 * lam1 * A11[level] + 1.0
    for a in range(q2):
        la = lamq[ell1 + a]
        for b in range(a + 1):
            S[a, b] = la * lamq[ell1 + b] * A22[a, b]
        S[a, a] += 1.0
        for j in range(p + 1):
            S[q2 + j, a] *= la
        for level in range(ell1):
            Bf[a, level] = la * lam1 * A21[a, level]
    for j in range(p + 1):
        for level in range(ell1):
            Bf[q2 + j, level] *= lam1
    inverse = 1.0 / M  # (a division in the loop below would keep it from vectorizing)
    for a in range(m):  # S −= Bf M₁⁻¹ Bfᵀ
        for c in range(a + 1):
            v = 0.0
            for level in range(ell1):
                v += Bf[a, level] * Bf[c, level] * inverse[level]
            S[a, c] -= v
    if not _cholesky_in_place(S):
        return False, np.nan
    logdet = 0.0
    for level in range(ell1):
        logdet += np.log(M[level])
    for a in range(q2):
        logdet += 2.0 * np.log(S[a, a])
    return True, logdet


@njit(cache=True, nogil=True)
def _weighted_leverages(lam, column_term, codes1, z1, columns, values, w, dvar, diag11, F, G, wh):
    """w′ ∘ h per row, h = diag(ZΛP⁻¹ΛᵀZᵀ), into ``wh``."""
    n = codes1.size
    n_tail = columns.shape[0]
    a = np.empty(n_tail)
    for i in range(n):
        level = codes1[i]
        a1 = lam[0] * z1[i]
        h = a1 * a1 * diag11[level]
        for t in range(n_tail):
            column = columns[t, i]
            a[t] = lam[column_term[column]] * values[t, i]
            h += a[t] * (a[t] * G[column, column] - 2.0 * a1 * F[column, level])
            for s in range(t):
                h += 2.0 * a[t] * a[s] * G[column, columns[s, i]]
        wh[i] = w[i] * dvar[i] * h


@njit(cache=True, nogil=True, fastmath=_FAST)
def _transpose_products(vector, XT, codes1, z1, columns, values, ell1, q):
    """Xᵀv (p) and Zᵀv (q, stacked) of one row vector."""
    p, n = XT.shape
    x_part = np.empty(p)
    for j in range(p):
        v = 0.0
        for i in range(n):
            v += XT[j, i] * vector[i]
        x_part[j] = v
    z_part = np.zeros(q)
    i = 0
    while i < n:  # over runs of rows of one level, as in _factor
        level = codes1[i]
        v = 0.0
        while i < n and codes1[i] == level:
            v += z1[i] * vector[i]
            i += 1
        z_part[level] += v
    for t in range(columns.shape[0]):
        for i in range(n):
            z_part[ell1 + columns[t, i]] += values[t, i] * vector[i]
    return x_part, z_part


@njit(cache=True, nogil=True, fastmath=_FAST)
def _theta_gradient(lam, lamq, bounds, u, ws, score_z, wh_z, diag11, G):
    """∂D/∂θ at fixed β of scalar terms (``gradient.theta_gradient``), internal order.

    The row sums of that function are cross-products here: with s the score and
    ω = w′ ∘ h, ΣωZ_tu_t = u_tᵀZ_tᵀω, Σω ZΛr = rᵀΛZᵀω and ZᵀWZ_tu_t is A's column
    block times u_t, so only Zᵀs and Zᵀω come from the rows."""
    A11, A21, A22, M, Bf, S = ws[5], ws[6], ws[7], ws[8], ws[9], ws[10]
    ell1 = M.size
    q2 = A21.shape[0]
    q = u.size
    n_terms = bounds.size - 1
    lam_wh = lamq * wh_z
    gradient = np.zeros(n_terms)
    for term in range(n_terms):
        start, stop = bounds[term], bounds[term + 1]
        cross = np.zeros(q)  # ZᵀWZ_t u_t
        if term == 0:
            for level in range(ell1):
                cross[level] = A11[level] * u[level]
            for a in range(q2):
                v = 0.0
                for level in range(ell1):
                    v += A21[a, level] * u[level]
                cross[ell1 + a] = v
        else:
            for k in range(start, stop):
                uk = u[k]
                for level in range(ell1):
                    cross[level] += A21[k - ell1, level] * uk
                for a in range(q2):
                    cross[ell1 + a] += A22[a, k - ell1] * uk
        rhs = -lamq * cross
        quadratic = 0.0
        own = 0.0
        for k in range(start, stop):
            rhs[k] += score_z[k]
            quadratic += u[k] * score_z[k]
            own += u[k] * wh_z[k]
        r = solve_p(rhs, Bf, M, S, q2)
        through = own
        for k in range(q):
            through += r[k] * lam_wh[k]
        direct = 0.0
        if lam[term] > 0.0:
            trace = 0.0
            if term == 0:
                for level in range(ell1):
                    trace += diag11[level]
            else:
                for k in range(start - ell1, stop - ell1):
                    trace += G[k, k]
            direct = 2.0 / lam[term] * ((stop - start) - trace)
        gradient[term] = -2.0 * quadratic + direct + through
    return gradient


@njit(cache=True, nogil=True)
def _log_determinant_gradient(
    lam, lamq, column_term, XT, codes1, z1, columns, values, ws, modes, diag11, F, G
):
    """ω = w′ ∘ h into ``ws`` and ∂log|P|/∂β = X̃ᵀω = Xᵀω − modes[:, :p]ᵀΛZᵀω, with Zᵀω."""
    p = XT.shape[0]
    ell1 = ws[8].size
    q = modes.shape[0]
    wh = ws[4]
    _weighted_leverages(
        lam, column_term, codes1, z1, columns, values, ws[1], ws[2], diag11, F, G, wh
    )
    x_wh, z_wh = _transpose_products(wh, XT, codes1, z1, columns, values, ell1, q)
    for j in range(p):
        v = 0.0
        for k in range(q):
            v += modes[k, j] * lamq[k] * z_wh[k]
        x_wh[j] -= v
    return x_wh, z_wh


@njit(cache=True, nogil=True)
def _laplace_state(
    mode,
    family,
    lam,
    column_term,
    bounds,
    beta,
    u,
    y,
    prior,
    offset,
    XT,
    codes1,
    z1,
    columns,
    values,
    kernel_constant,
    max_iterations,
    tolerance,
    max_halvings,
):
    """The iterations of ``laplace_pirls`` (mode 0) or of ``pirls`` at fixed β (mode 1)
    and the gradient at the converged state.  Returns (status, β, u, deviance,
    ∂D/∂θ in internal order, ∂D/∂β, XᵀWX̃).  The tolerances are arguments, not
    globals: numba's cache would keep a constant imported from another module as it
    was when the kernel was compiled."""
    p, n = XT.shape
    ell1 = bounds[1]
    q = u.size
    q2 = q - ell1
    m = q2 + p + 1
    lamq = np.empty(q)  # λ of each random effect
    for k in range(ell1):
        lamq[k] = lam[0]
    for a in range(q2):
        lamq[ell1 + a] = lam[column_term[a]]
    # μ, w, V′, z, ω; A₁₁, A₂₁, A₂₂, M₁, Bf, S
    ws = (
        np.empty(n),
        np.empty(n),
        np.empty(n),
        np.empty(n),
        np.empty(n),
        np.empty(ell1),
        np.empty((q2, ell1)),
        np.empty((q2, q2)),
        np.empty(ell1),
        np.empty((m, ell1)),
        np.empty((m, m)),
    )
    rows = (y, prior, offset, XT, codes1, z1, columns, values)
    eta = np.empty(n)
    _predictor(eta, beta, u, lam, column_term, XT, offset, codes1, z1, columns, values)
    if mode == 0:
        status, beta, u, kernel, logdet = _joint_iterations(
            family, lam, lamq, column_term, beta, u, eta, rows, ws, max_iterations, tolerance
        )
    else:
        status, u, kernel, logdet = _fixed_iterations(
            family, lam, lamq, column_term, beta, u, eta, rows, ws, max_iterations, max_halvings
        )
    if status != CONVERGED:
        empty = np.zeros(0)
        return status, beta, u, np.nan, empty, empty, np.zeros((p, p)), np.zeros((q, p))
    theta_gradient, beta_gradient, information, slopes = _gradients(
        lam, lamq, column_term, bounds, u, rows, ws
    )
    deviance = kernel + u @ u + kernel_constant + logdet
    return CONVERGED, beta, u, deviance, theta_gradient, beta_gradient, information, slopes


@njit(cache=True, nogil=True)
def _joint_iterations(
    family, lam, lamq, column_term, beta, u, eta, rows, ws, max_iterations, tolerance
):
    """``laplace_pirls``'s steps from (β, u) at η: returns (status, β, u, the family's
    −2 log-likelihood kernel, log|P|) of the converged state, whose factor ``ws`` holds."""
    y, prior, offset, XT, codes1, z1, columns, values = rows
    p = XT.shape[0]
    q = u.size
    q2 = ws[6].shape[0]
    previous = np.inf
    settled = False
    for iteration in range(1, max_iterations + 1):
        kernel = _moments(family, eta, y, prior, offset, ws[0], ws[1], ws[2], ws[3], True)
        ok, logdet = _factor(lam, lamq, XT, codes1, z1, columns, values, ws)
        if not ok or not np.isfinite(logdet):
            return BROKE_DOWN, beta, u, np.nan, np.nan
        if settled:  # the step that led here was predicted to be the last
            return CONVERGED, beta, u, kernel, logdet
        modes, beta_pls = pls_modes(ws[9], ws[8], ws[10], p)
        diag11, F, G = inverse_pieces(ws[9], ws[8], ws[10], q2)
        log_det_gradient, _z_wh = _log_determinant_gradient(
            lam, lamq, column_term, XT, codes1, z1, columns, values, ws, modes, diag11, F, G
        )
        new_beta = beta_pls - 0.5 * solve_fixed_block(ws[10], q2, p, log_det_gradient)
        new_u = modes_at(modes, new_beta)
        moved = 0.0
        for j in range(p):
            moved = max(moved, abs(new_beta[j] - beta[j]))
        for k in range(q):
            moved = max(moved, abs(new_u[k] - u[k]))
        if not np.isfinite(moved) or (iteration > 2 and moved > previous):
            return NOT_CONTRACTING, beta, u, np.nan, np.nan
        settled = iteration > 1 and moved * moved / previous < tolerance
        previous = moved
        if moved < tolerance:
            return CONVERGED, beta, u, kernel, logdet
        beta, u = new_beta, new_u
        _predictor(eta, beta, u, lam, column_term, XT, offset, codes1, z1, columns, values)
    return NOT_CONTRACTING, beta, u, np.nan, np.nan


@njit(cache=True, nogil=True)
def _fixed_iterations(
    family, lam, lamq, column_term, beta, u, eta, rows, ws, max_iterations, max_halvings
):
    """``pirls``'s steps on u at fixed β, halved on the penalized deviance: returns
    (status, u, kernel, log|P|) of the converged state, whose factor ``ws`` holds."""
    y, prior, offset, XT, codes1, z1, columns, values = rows
    p, n = XT.shape
    q = u.size
    # the trial step's μ, w, V′ and z, kept when the step is accepted
    trial = (np.empty(n), np.empty(n), np.empty(n), np.empty(n))
    trial_eta = np.empty(n)
    kernel = _moments(family, eta, y, prior, offset, ws[0], ws[1], ws[2], ws[3], True)
    pdev = kernel + u @ u
    moved = np.inf
    status = NOT_CONVERGED
    for _iteration in range(max_iterations):
        ok, logdet = _factor(lam, lamq, XT, codes1, z1, columns, values, ws)
        if not ok:
            return BROKE_DOWN, u, np.nan, np.nan
        modes, _pls = pls_modes(ws[9], ws[8], ws[10], p)
        new_u = modes_at(modes, beta)
        step = 1.0
        accepted = False
        trial_u = u.copy()
        trial_pdev = np.inf
        trial_kernel = np.inf
        for _halving in range(max_halvings):
            for k in range(q):
                trial_u[k] = u[k] + step * (new_u[k] - u[k])
            _predictor(
                trial_eta,
                beta,
                trial_u,
                lam,
                column_term,
                XT,
                offset,
                codes1,
                z1,
                columns,
                values,
            )
            trial_kernel = _moments(
                family, trial_eta, y, prior, offset, trial[0], trial[1], trial[2], trial[3], True
            )
            trial_pdev = trial_kernel + trial_u @ trial_u
            if np.isfinite(trial_pdev) and trial_pdev <= pdev + 1e-10 * abs(pdev):
                accepted = True
                break
            step /= 2.0
        if not accepted:  # no decrease possible: at the mode up to rounding
            status = CONVERGED
            break
        moved = 0.0
        for k in range(q):
            moved = max(moved, abs(trial_u[k] - u[k]))
        u = trial_u
        eta[:] = trial_eta
        pdev = trial_pdev
        kernel = trial_kernel
        ws[0][:] = trial[0]
        ws[1][:] = trial[1]
        ws[2][:] = trial[2]
        ws[3][:] = trial[3]
        if moved < 1e-6:  # Newton's step (canonical link): see GlmmProblem.pirls
            status = CONVERGED
            break
    if status != CONVERGED and moved > 1e-6:
        return NOT_CONVERGED, u, np.nan, np.nan
    ok, logdet = _factor(lam, lamq, XT, codes1, z1, columns, values, ws)
    if not ok or not np.isfinite(logdet):
        return BROKE_DOWN, u, np.nan, np.nan
    return CONVERGED, u, kernel, logdet


@njit(cache=True, nogil=True)
def _gradients(lam, lamq, column_term, bounds, u, rows, ws):
    """∂D/∂θ (internal order), ∂D/∂β, XᵀWX̃ and −dû/dβ at a converged state's factor."""
    y, prior, offset, XT, codes1, z1, columns, values = rows
    p, n = XT.shape
    ell1 = bounds[1]
    q = u.size
    q2 = q - ell1
    modes, _pls = pls_modes(ws[9], ws[8], ws[10], p)
    diag11, F, G = inverse_pieces(ws[9], ws[8], ws[10], q2)
    log_det_gradient, z_wh = _log_determinant_gradient(
        lam, lamq, column_term, XT, codes1, z1, columns, values, ws, modes, diag11, F, G
    )
    score = np.empty(n)
    for i in range(n):
        score[i] = prior[i] * (y[i] - ws[0][i])
    x_score, z_score = _transpose_products(score, XT, codes1, z1, columns, values, ell1, q)
    theta_gradient = _theta_gradient(lam, lamq, bounds, u, ws, z_score, z_wh, diag11, G)
    beta_gradient = log_det_gradient - 2.0 * x_score
    S = ws[10]
    information = np.zeros((p, p))
    for j in range(p):
        for k in range(p):
            v = 0.0
            for c in range(min(j, k) + 1):
                v += S[q2 + j, q2 + c] * S[q2 + k, q2 + c]
            information[j, k] = v
    return theta_gradient, beta_gradient, information, np.ascontiguousarray(modes[:, :p])
