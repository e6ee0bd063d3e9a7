"""Profiled (RE)ML deviance of a linear mixed model on precomputed cross-products.

The model is ``y = Xβ + Zb + ε`` with ``b = Λu``, ``u ~ N(0, σ²I)``.  Following
lme4's PLS formulation (Bates et al. 2015) and MixedModels.jl's blocked storage,
the cross-products of ``[Z X y]`` are formed once (:class:`CrossProducts`, in
:mod:`.crossprods`); after that one deviance evaluation never touches the n rows.  This
module factors them at θ (:func:`factorize`), evaluates the profiled deviance
(:func:`deviance`) and solves for β, σ and the conditional modes (:func:`solve`).

Terms are ordered by number of levels, largest first.  The first term's block of
``ΛᵀZᵀZΛ + I`` is block diagonal (ℓ₁ small k₁ x k₁ blocks, factored as a stack);
all other terms form one dense "tail" block that absorbs the fill-in.  With

    W_l = T₁ (T₁ᵀ A_l T₁ + I)⁻¹ T₁ᵀ         (one k₁ x k₁ matrix per level of term 1)

the Schur complements that reach the tail and the [X y] rows are
``A₂₁ W A₂₁ᵀ``, ``A₂₁ W C₁`` and ``C₁ᵀ W C₁``, so no triangular factor of the first
block is needed on the hot path.

Examples
--------
>>> import numpy as np
>>> from mixedmodels.lmm.crossprods import CrossProducts
>>> from mixedmodels.lmm.deviance import deviance
>>> rng = np.random.default_rng(1)
>>> g = np.repeat(np.arange(10), 5)
>>> y = rng.normal(size=50) + rng.normal(size=10)[g]
>>> X = np.ones((50, 1))
>>> from mixedmodels.frontend.design_types import ReTerm
>>> term = ReTerm("g", g, np.arange(10).astype(str), np.ones((50, 1)), ("(Intercept)",),
...               "us", "1", ("g",))
>>> cp = CrossProducts.build(y, X, [term])
>>> round(float(deviance(cp, np.array([1.0]), reml=True)), 6) > 0
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.linalg.blas import dtrsm as _dtrsm
from scipy.linalg.lapack import dpotrf as _dpotrf
from scipy.linalg.lapack import dpotrs as _dpotrs

from . import _kernels, compiled_search
from ._kernels import COMPILED_LEVELS, HAVE_NUMBA
from .covariance import Unstructured
from .crossed_kernel import ScalarTermsKernel, scalar_terms_kernel
from .crossprods import CrossProducts
from .sparse_tail import SparseFactor, conditional_covariances


def block_diagonal(blocks: np.ndarray) -> sp.bsr_matrix:
    """A sparse block-diagonal matrix from an (ℓ, a, b) stack, without a Python loop."""
    ell, a, b = blocks.shape
    return sp.bsr_matrix(
        (np.ascontiguousarray(blocks), np.arange(ell), np.arange(ell + 1)),
        shape=(ell * a, ell * b),
    )


def _first_block(cp: CrossProducts, T1: np.ndarray) -> tuple[np.ndarray, float, np.ndarray | None]:
    """W_l = T₁ (T₁ᵀA_lT₁ + I)⁻¹ T₁ᵀ for every level, Σ log det(T₁ᵀA_lT₁ + I), and
    V_l = L_l⁻¹T₁ᵀ (so that W_l = V_lᵀV_l) for vector terms."""
    k = T1.shape[0]
    if k == 1:
        t = T1[0, 0]
        m = 1.0 + t * t * cp.A11[:, 0, 0]
        return (t * t / m)[:, None, None], float(np.sum(np.log(m))), None
    if k == 2:
        return _first_block_2x2(cp, T1)
    M = T1.T @ cp.A11 @ T1
    M[:, np.arange(k), np.arange(k)] += 1.0
    L = np.linalg.cholesky(M)
    logdet = 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
    V = np.linalg.solve(L, np.broadcast_to(T1.T, M.shape))
    return np.swapaxes(V, 1, 2) @ V, logdet, V


def _first_block_2x2(
    cp: CrossProducts, T1: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray | None]:
    """:func:`_first_block` for k = 2 written out elementwise: for a few dozen levels
    numpy's batched matmul and LAPACK calls cost more than the arithmetic (the hot loop of
    bootstrap and profile refits of random-slope models)."""
    t0, t1, t2 = T1[0, 0], T1[1, 0], T1[1, 1]
    a00, a01, a11 = cp.A11[:, 0, 0], cp.A11[:, 1, 0], cp.A11[:, 1, 1]
    m00 = t0 * t0 * a00 + 2.0 * t0 * t1 * a01 + t1 * t1 * a11 + 1.0
    m01 = t2 * (t0 * a01 + t1 * a11)
    m11 = t2 * t2 * a11 + 1.0
    det = m00 * m11 - m01 * m01
    if not (np.all(det > 0) and np.all(m00 > 0)):
        raise np.linalg.LinAlgError("first block is not positive definite")
    logdet = float(np.sum(np.log(det)))
    # W = T M⁻¹ Tᵀ with M⁻¹ = [[m11, −m01], [−m01, m00]] / det
    i00, i01, i11 = m11 / det, -m01 / det, m00 / det
    W = np.empty((len(det), 2, 2))
    W[:, 0, 0] = t0 * t0 * i00
    W[:, 0, 1] = W[:, 1, 0] = t0 * (t1 * i00 + t2 * i01)
    W[:, 1, 1] = t1 * t1 * i00 + 2.0 * t1 * t2 * i01 + t2 * t2 * i11
    V = None
    if cp.q2:  # only the sparse tail path needs V = L⁻¹T₁ᵀ (WᵀW factor)
        l11 = np.sqrt(m00)
        l21 = m01 / l11
        l22 = np.sqrt(m11 - l21 * l21)
        V = np.empty((len(det), 2, 2))
        V[:, 0, :] = T1.T[0][None, :] / l11[:, None]
        V[:, 1, :] = (T1.T[1][None, :] - l21[:, None] * V[:, 0, :]) / l22[:, None]
    return W, logdet, V


def _scale_sym(D: np.ndarray, lam: np.ndarray | sp.spmatrix) -> np.ndarray:
    """Λᵀ D Λ for a dense symmetric D (D may be overwritten)."""
    if isinstance(lam, np.ndarray):
        D *= lam[:, None]
        D *= lam[None, :]
        return D
    left = lam.T @ D
    return np.asarray((lam.T @ left.T).T)


def _scale_rows(C: np.ndarray, lam: np.ndarray | sp.spmatrix) -> np.ndarray:
    """Λᵀ C."""
    if isinstance(lam, np.ndarray):
        return C * lam[:, None]
    return np.asarray(lam.T @ C)


def cholesky_lower(M: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """The lower Cholesky factor (upper triangle zeroed) by LAPACK potrf called directly:
    scipy.linalg.cholesky's checks cost more than factoring the small blocks of PIRLS.

    Raises ``np.linalg.LinAlgError`` when M is not positive definite."""
    L, info = _dpotrf(M, lower=1, clean=1, overwrite_a=overwrite)
    if info != 0:
        raise np.linalg.LinAlgError(f"matrix is not positive definite (potrf info {info})")
    return L


def cholesky_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(LLᵀ)⁻¹B from the lower factor, by LAPACK potrs called directly."""
    x, info = _dpotrs(L, B, lower=1)
    if info != 0:
        raise ValueError(f"potrs: illegal argument {-info}")
    return x


def _triangular_solve_columns(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """L⁻¹B for a lower-triangular L: BLAS trsm called directly, whose scipy.linalg
    wrapper costs several times the solve on the small blocks PIRLS factors thousands
    of times (2 vs 9 µs for 24 x 24 with 7 columns)."""
    if B.shape[1] > 16 or not B.size:
        return sla.solve_triangular(L, B, lower=True, check_finite=False)
    return _dtrsm(1.0, L, B, lower=1)


@dataclass
class Factorization:
    """The pieces of the blocked Cholesky factor needed for the deviance and the solution."""

    logdet_z: float
    L22: np.ndarray | None
    L33: np.ndarray
    W: np.ndarray
    factors: list[np.ndarray]
    lam2: np.ndarray | sp.spmatrix | None
    tail_rhs: np.ndarray | None  # Λ₂ᵀ(C₂ − A₂₁WC₁), before the L22 solve
    sparse22: SparseFactor | None = None  # the tail's factor when cp.sparse_tail (L22 None)


def factorize(cp: CrossProducts, theta: np.ndarray) -> Factorization:
    """Blocked Cholesky of ``[ΛᵀZᵀZΛ + I, ΛᵀZᵀ[X y]; ...]`` at θ.

    Raises ``np.linalg.LinAlgError`` when a block is not positive definite.
    """
    factors = cp.factors(theta)
    W, logdet1, V = _first_block(cp, factors[0])
    C1 = cp.C1
    WC1 = W @ C1  # (ℓ, k, p+1)
    S33 = cp.XyXy - np.einsum("lka,lkb->ab", C1, WC1)
    L22 = None
    lam2 = None
    tail_rhs = None
    logdet = logdet1
    if cp.sparse_tail is not None:
        lam2 = cp.tail_lambda(factors)
        sparse22 = cp.sparse_tail.factor(cp.A21.data, cp.A22.data, W, lam2)
        tail_rhs = _scale_rows(cp.C2 - cp.A21 @ WC1.reshape(-1, C1.shape[2]), lam2)
        S33 = S33 - tail_rhs.T @ sparse22.solve(tail_rhs)
        L33 = cholesky_lower(S33)
        logdet += sparse22.logdet
        return Factorization(logdet, None, L33, W, factors, lam2, tail_rhs, sparse22)
    if cp.q2:
        lam2 = cp.tail_lambda(factors)
        if cp.pair_map is not None:
            D = cp.A22 - cp.pair_map.block(W[:, 0, 0])
        elif cp.dense_A21 is not None:
            if V is None:
                S = cp.dense_A21 * np.sqrt(W[:, 0, 0])[None, :]
            else:  # A₂₁ blockdiag(V_lᵀ), dense
                k1 = V.shape[1]
                S = np.einsum("qla,lba->qlb", cp.dense_A21.reshape(cp.q2, -1, k1), V)
                S = S.reshape(cp.q2, -1)
            D = cp.A22 - sla.blas.dsyrk(1.0, S, lower=1)
        else:
            if V is None:
                S = cp.A21.multiply(np.sqrt(W[:, 0, 0])[None, :]).tocsr()
            else:  # A₂₁ blockdiag(V_lᵀ), so that SSᵀ = A₂₁ W A₂₁ᵀ
                S = (cp.A21 @ block_diagonal(np.swapaxes(V, 1, 2))).tocsr()
            SS = S @ S.T
            D = cp.A22 - (SS.toarray() if sp.issparse(SS) else SS)
        M22 = _scale_sym(D, lam2)
        # + I through a strided view of the diagonal (any layout): fancy indexing with
        # diag_indices_from cost ~25 µs per evaluation on a 30 x 30 tail, the rest ~200
        M22.flat[:: M22.shape[0] + 1] += 1.0
        L22 = cholesky_lower(M22, overwrite=True)
        logdet += 2.0 * float(np.log(L22.diagonal()).sum())
        A21 = cp.dense_A21 if cp.dense_A21 is not None else cp.A21
        G = A21 @ WC1.reshape(-1, C1.shape[2])
        tail_rhs = _scale_rows(cp.C2 - G, lam2)
        L32T = _triangular_solve_columns(L22, tail_rhs)
        S33 = S33 - L32T.T @ L32T
    L33 = cholesky_lower(S33)
    return Factorization(logdet, L22, L33, W, factors, lam2, tail_rhs)


def objective(cp: CrossProducts, fac: Factorization, reml: bool) -> float:
    """The deviance (−2 log-likelihood; REML criterion when ``reml``) from a factorization."""
    return _objective(fac, cp.p, cp.n, reml, cp.sum_log_weights)


def _objective(fac: Factorization, p: int, n: int, reml: bool, sum_log_weights: float) -> float:
    """:func:`objective` from the sizes alone (a kernel's blocks without their model)."""
    r2 = fac.L33[p, p] ** 2
    if reml:
        logdet_x = 2.0 * float(np.sum(np.log(np.abs(np.diag(fac.L33)[:p]))))
        dof = n - p
        value = fac.logdet_z + logdet_x + dof * (1.0 + np.log(2.0 * np.pi * r2 / dof))
    else:
        value = fac.logdet_z + n * (1.0 + np.log(2.0 * np.pi * r2 / n))
    return float(value - sum_log_weights)


class _SingleTermKernel:
    """The deviance of a model with one scalar or 2-column term and nothing else, in a
    handful of numpy calls (the inner loop of bootstrap and profile refits), or one
    compiled call when numba is there and the term has at most :data:`COMPILED_LEVELS`
    levels (:attr:`compiled`).

    With k ≤ 2 the entries of M_l = TᵀA_lT + I and of W_l = T M_l⁻¹ Tᵀ are linear maps
    (3 x 3 for k = 2) of the per-level entries, and Σ_l C_lᵀ W_l C_l is one dot product
    with the per-level outer products of C_l, all precomputed here.
    """

    def __init__(self, cp: CrossProducts):
        self._build(cp.A11, cp.C1, cp.XyXy, cp.n, cp.sum_log_weights)

    @classmethod
    def of_blocks(
        cls, A11: np.ndarray, C1: np.ndarray, XyXy: np.ndarray, n: int
    ) -> _SingleTermKernel:
        """The numpy kernel of one term's blocks alone (ZᵀZ per level, Zᵀ[X y],
        [X y]ᵀ[X y]): the deviance of that term as the model's only one, without weights'
        constant, and without loading numba for it."""
        kernel = cls.__new__(cls)
        kernel._build(A11, C1, XyXy, n, 0.0)
        kernel.compiled = False
        return kernel

    def _build(
        self, A11: np.ndarray, C: np.ndarray, XyXy: np.ndarray, n: int, sum_log_weights: float
    ) -> None:
        k = A11.shape[1]
        if k == 1:
            self.A = A11[:, 0, 0].copy()
            self.P = np.einsum("la,lb->lab", C[:, 0], C[:, 0]).reshape(len(C), -1)
        else:
            self.A = np.stack([A11[:, 0, 0], A11[:, 1, 0], A11[:, 1, 1]])
            outer = np.einsum("lia,ljb->lijab", C, C)
            self.P = np.stack(
                [outer[:, 0, 0], outer[:, 0, 1] + outer[:, 1, 0], outer[:, 1, 1]]
            ).reshape(3 * len(C), -1)
        self.k = k
        self.XyXy = XyXy
        self.size = XyXy.shape[0]
        self._A2 = np.ascontiguousarray(self.A.reshape(1, -1) if k == 1 else self.A)
        self._P = np.ascontiguousarray(self.P)
        self._XyXy = np.ascontiguousarray(XyXy, dtype=float)
        self.compiled = HAVE_NUMBA and len(C) <= COMPILED_LEVELS
        self._n, self._sum_log_weights = n, sum_log_weights

    def value(self, theta: np.ndarray, reml: bool) -> float:
        """The profiled deviance at θ (``inf`` where not positive definite)."""
        theta = np.asarray(theta, dtype=float)
        if self.compiled:
            return float(
                _kernels.single_term_deviance(
                    theta, self._A2, self._P, self._XyXy, self._n, reml, self._sum_log_weights
                )
            )
        try:
            fac = self.factor(theta)
        except np.linalg.LinAlgError:
            return float("inf")
        return _objective(fac, self.size - 1, self._n, reml, self._sum_log_weights)

    def profiled(self, reml: bool) -> Callable[[np.ndarray], float]:
        """The compiled profiled deviance bound to this kernel's arrays (one call an
        evaluation: the optimizer's inner loop); only when :attr:`compiled`.  Not kept
        on the kernel: the kernel is cached on the cross-products, which pickle."""
        compiled = _kernels.single_term_deviance
        A, P, XyXy, n, logw = self._A2, self._P, self._XyXy, self._n, self._sum_log_weights

        def bound(theta: np.ndarray) -> float:
            return float(compiled(np.array(theta, dtype=float), A, P, XyXy, n, reml, logw))

        return bound

    def search(
        self, theta0: np.ndarray, lower: np.ndarray, reml: bool
    ) -> tuple[np.ndarray, float, np.ndarray, int, int]:
        """θ̂ by :func:`~mixedmodels.lmm.compiled_search.bounded_bfgs` (compiled
        quasi-Newton on the exact gradient): θ, value, gradient, evaluations, status."""
        return compiled_search.search(
            theta0, lower, compiled_search.SINGLE_TERM, self._gradient_arrays(), reml
        )

    def hessian(self, theta: np.ndarray, lower: np.ndarray, reml: bool) -> np.ndarray:
        """The Hessian of the profiled deviance at θ from differences of the exact
        gradient (:func:`~mixedmodels.lmm.compiled_search.gradient_hessian`)."""
        return compiled_search.hessian(
            theta, lower, compiled_search.SINGLE_TERM, self._gradient_arrays(), reml
        )

    def _gradient_arrays(self) -> tuple[tuple[np.ndarray, ...], int, float]:
        return (self._A2, self._P, self._XyXy), self._n, self._sum_log_weights

    def factor(self, theta: np.ndarray) -> Factorization:
        """log|L_Z|² and L₃₃ (the only fields filled); LinAlgError when not positive definite.

        One compiled loop when :attr:`compiled` (~5 µs instead of ~50 µs of numpy calls)."""
        if self.compiled:
            logdet_z, L33 = _kernels.single_term_factor(
                np.asarray(theta, dtype=float), self._A2, self._P, self._XyXy
            )
            if not np.isfinite(logdet_z):
                raise np.linalg.LinAlgError("not positive definite")
            return Factorization(float(logdet_z), None, L33, np.zeros((0, 1, 1)), [], None, None)
        if self.k == 1:
            t2 = theta[0] * theta[0]
            m = 1.0 + t2 * self.A
            logdet_z = float(np.sum(np.log(m)))
            W = t2 / m
        else:
            t0, t1, t2 = theta
            m00, m01, m11 = (
                np.array(
                    [[t0 * t0, 2 * t0 * t1, t1 * t1], [0.0, t0 * t2, t1 * t2], [0.0, 0.0, t2 * t2]]
                )
                @ self.A
            )
            m00 += 1.0
            m11 += 1.0
            det = m00 * m11 - m01 * m01
            if det.min() <= 0 or m00.min() <= 0:
                raise np.linalg.LinAlgError("first block is not positive definite")
            logdet_z = float(np.sum(np.log(det)))
            inverse = np.stack([m11, -m01, m00]) / det
            W = (
                np.array(
                    [[t0 * t0, 0.0, 0.0], [t0 * t1, t0 * t2, 0.0], [t1 * t1, 2 * t1 * t2, t2 * t2]]
                )
                @ inverse
            )
        S33 = self.XyXy - (W.reshape(-1) @ self.P).reshape(self.size, self.size)
        L33 = np.linalg.cholesky(S33)
        return Factorization(logdet_z, None, L33, np.zeros((0, 1, 1)), [], None, None)


def _single_term_kernel(cp: CrossProducts) -> _SingleTermKernel | None:
    """The precomputed kernel of a model with one term of one or two columns (cached on
    ``cp``), or None for any other model."""
    if cp.q2 == 0 and cp.A11.shape[1] <= 2 and isinstance(cp.structures[0], Unstructured):
        kernel = cp.__dict__.get("_single_term_kernel")
        if kernel is None or kernel.XyXy is not cp.XyXy:
            kernel = cp.__dict__["_single_term_kernel"] = _SingleTermKernel(cp)
        return kernel
    return None


def factorize_profiled(cp: CrossProducts, theta: np.ndarray) -> Factorization:
    """:func:`factorize` when only ``logdet_z`` and ``L33`` are needed (the deviance, σ, β):
    models with one term of one or two columns take the precomputed fast kernel."""
    theta = np.asarray(theta, dtype=float)
    kernel = _single_term_kernel(cp)
    if kernel is not None:
        return kernel.factor(theta)
    return factorize(cp, theta)


class _BlockTermKernel:
    """The compiled deviance of a model with one term of any k and any structure, and
    nothing else (:func:`~mixedmodels.lmm._kernels.block_term_deviance`): T from the
    structure in numpy, the levels' k x k blocks in one compiled loop.  The chapter's
    glmmTMB ar1 model, merged to one 7-column term on 200 students: ~600 µs of batched
    numpy LAPACK calls an evaluation before, where each 7 x 7 solve costs a microsecond
    of call overhead."""

    def __init__(self, cp: CrossProducts):
        self.XyXy = cp.XyXy
        self.structure = cp.structures[0]
        self._A = np.ascontiguousarray(cp.A11, dtype=float)
        self._Ct = np.ascontiguousarray(np.swapaxes(cp.C1, 1, 2), dtype=float)
        self._XyXy = np.ascontiguousarray(cp.XyXy, dtype=float)
        self._n, self._sum_log_weights = cp.n, cp.sum_log_weights

    def profiled(self, reml: bool) -> Callable[[np.ndarray], float]:
        """The profiled deviance at θ, bound to the blocks (see
        :meth:`_SingleTermKernel.profiled`)."""
        compiled = _kernels.block_term_deviance
        structure, A, Ct, XyXy = self.structure, self._A, self._Ct, self._XyXy
        n, logw = self._n, self._sum_log_weights

        def bound(theta: np.ndarray) -> float:
            try:  # a structure's own Cholesky (toep, cs) fails off its positive-definite set
                T = np.ascontiguousarray(structure.factor(np.asarray(theta, dtype=float)))
            except (np.linalg.LinAlgError, ValueError):
                return float("inf")
            return float(compiled(T, A, Ct, XyXy, n, reml, logw))

        return bound


def _block_term_kernel(cp: CrossProducts) -> _BlockTermKernel | None:
    """The compiled kernel of a one-term model (any k, any structure) of at most
    :data:`COMPILED_LEVELS` levels, cached on ``cp``; None for any other model."""
    if cp.q2 or len(cp.terms) != 1 or not HAVE_NUMBA or cp.A11.shape[0] > COMPILED_LEVELS:
        return None
    kernel = cp.__dict__.get("_block_term_kernel")
    if kernel is None or kernel.XyXy is not cp.XyXy:
        kernel = cp.__dict__["_block_term_kernel"] = _BlockTermKernel(cp)
    return kernel


def _compiled_kernel(
    cp: CrossProducts,
) -> _SingleTermKernel | _BlockTermKernel | ScalarTermsKernel | None:
    """The compiled kernel of this model: a single term of one or two columns, a single
    term of any other shape, or scalar terms with a small dense tail
    (:mod:`.crossed_kernel`); None for any other model."""
    kernel = _single_term_kernel(cp)
    if kernel is not None:
        return kernel if kernel.compiled else None
    block = _block_term_kernel(cp)
    if block is not None:
        return block
    return scalar_terms_kernel(cp)


def has_compiled_deviance(cp: CrossProducts) -> bool:
    """Whether :func:`compiled_deviance` has a compiled kernel for this model."""
    return _compiled_kernel(cp) is not None


def compiled_deviance(cp: CrossProducts, reml: bool) -> Callable[[np.ndarray], float] | None:
    """The profiled deviance as one compiled call per θ for the models that have a
    compiled kernel, else None."""
    kernel = _compiled_kernel(cp)
    return None if kernel is None else kernel.profiled(reml)


def deviance(cp: CrossProducts, theta: np.ndarray, reml: bool = True) -> float:
    """Profiled deviance at θ (β and σ profiled out).

    Parameters
    ----------
    cp : CrossProducts
    theta : ndarray
        Relative covariance parameters in internal term order.
    reml : bool
        REML criterion (default) or −2 log-likelihood.

    Returns
    -------
    float
        ``inf`` when θ gives a non-positive-definite system.
    """
    compiled = compiled_deviance(cp, reml)
    if compiled is not None:  # one compiled call: the optimizer's loop
        return compiled(theta)
    try:
        fac = factorize_profiled(cp, theta)
    except (np.linalg.LinAlgError, sla.LinAlgError, ValueError):
        return float("inf")
    return objective(cp, fac, reml)


def conditional_modes(cp: CrossProducts, fac: Factorization) -> tuple[np.ndarray, list[np.ndarray]]:
    """β̂ and the spherical conditional modes û per term, from a factorization alone.

    The lean path for PIRLS: block elimination with the pieces :func:`factorize`
    already has (the tail's Schur complement L₂₂ and its right-hand side), and the
    first term's k x k blocks solved level by level; no conditional variances.
    """
    p = cp.p
    L33 = fac.L33
    beta = (
        sla.solve_triangular(L33[:p, :p].T, L33[p, :p], lower=False, check_finite=False)
        if p
        else np.zeros(0)
    )
    xb = np.concatenate([-beta, [1.0]])  # C @ xb = Zᵀ W (y − Xβ)
    return beta, [u[:, :, 0] for u in solve_modes(cp, fac, xb[:, None])]


def solve_modes(cp: CrossProducts, fac: Factorization, combination: np.ndarray) -> list[np.ndarray]:
    """``(ΛᵀZᵀZΛ + I)⁻¹ΛᵀZᵀ[X y] c`` for each column c of ``combination`` ((p+1) x m):
    the spherical modes of m responses that are linear combinations of [X y], per
    internal term as (ℓ, k, m) arrays."""
    m = combination.shape[1]
    T1 = fac.factors[0]
    first = cp.terms[0]
    ell1, k1 = first.n_levels, first.n_columns
    r1 = cp.C1 @ combination  # (ℓ, k, m): Z₁ᵀ[X y]c per level
    modes = []
    if cp.q2:
        rhs = fac.tail_rhs @ combination
        u2 = fac.sparse22.solve(rhs) if fac.sparse22 is not None else cholesky_solve(fac.L22, rhs)
        lam2 = fac.lam2
        lam_u2 = lam2[:, None] * u2 if isinstance(lam2, np.ndarray) else lam2 @ u2
        A21 = cp.dense_A21 if cp.dense_A21 is not None else cp.A21
        r1 = r1 - np.asarray(A21.T @ lam_u2).reshape(ell1, k1, m)
        for index, term in enumerate(cp.terms[1:]):
            start, stop = cp.tail_offsets[index], cp.tail_offsets[index + 1]
            modes.append(u2[start:stop].reshape(term.n_levels, term.n_columns, m))
    r1 = T1.T[None] @ r1  # Λ₁ᵀ per level
    if k1 == 1:
        u1 = r1 / (1.0 + T1[0, 0] ** 2 * cp.A11)
    else:
        M = T1.T @ cp.A11 @ T1
        M[:, np.arange(k1), np.arange(k1)] += 1.0
        u1 = np.linalg.solve(M, r1)
    return [u1, *modes]


@dataclass
class Solution:
    """β, σ, the conditional modes and their conditional covariances at θ̂."""

    beta: np.ndarray
    sigma: float
    vcov_unscaled: np.ndarray  # (L_X L_Xᵀ)⁻¹
    b: list[np.ndarray]  # per internal term, (ℓ, k)
    b_cov: list[np.ndarray]  # per internal term, (ℓ, k, k), σ² included
    pwrss: float
    u_norm2: float
    u: list[np.ndarray] = field(default_factory=list)  # spherical modes per term, (ℓ, k)
    logdet_z: float = 0.0  # log|ΛᵀZᵀZΛ + I|


def solve(
    cp: CrossProducts, theta: np.ndarray, reml: bool, *, conditional_variances: bool = True
) -> Solution:
    """Fixed effects, σ and conditional modes (with conditional covariances) at θ."""
    fac = factorize(cp, theta)
    p = cp.p
    L33 = fac.L33
    Lx = L33[:p, :p]
    beta = (
        sla.solve_triangular(Lx.T, L33[p, :p], lower=False, check_finite=False)
        if p
        else np.zeros(0)
    )
    r2 = L33[p, p] ** 2
    sigma2 = r2 / (cp.n - p if reml else cp.n)
    sigma = float(np.sqrt(sigma2))
    vcov_unscaled = sla.cho_solve((Lx, True), np.eye(p)) if p else np.zeros((0, 0))
    if fac.sparse22 is not None:
        return _sparse_tail_solution(cp, fac, beta, sigma, vcov_unscaled, conditional_variances)
    factors = fac.factors
    T1 = factors[0]
    first = cp.terms[0]
    ell1, k1 = first.n_levels, first.n_columns
    # M_l = T₁ᵀA_lT₁ + I and its Cholesky
    M = T1.T @ cp.A11 @ T1
    M[:, np.arange(k1), np.arange(k1)] += 1.0
    L11 = np.linalg.cholesky(M)
    xb = np.concatenate([beta, [-1.0]])  # residual of the [X y] columns: y − Xβ (sign flipped)
    # u solves L_Zᵀ u = rhs, with rhs = Λᵀ Zᵀ(y − Xβ) forward-eliminated
    rhs1 = -(np.swapaxes(T1[None], 1, 2) @ (cp.C1 @ xb)[:, :, None])[:, :, 0]  # Λ₁ᵀZ₁ᵀ(y−Xβ)
    c1 = np.linalg.solve(L11, rhs1[:, :, None])[:, :, 0]  # L₁₁⁻¹ rhs₁
    b = []
    b_cov = []
    if cp.q2:
        lam2 = fac.lam2
        L22 = fac.L22
        # L21 = Λ₂ᵀ A₂₁ Λ₁ L₁₁⁻ᵀ, via the block-diagonal B_l = T₁ L_l⁻ᵀ
        B = T1[None] @ np.swapaxes(np.linalg.inv(L11), 1, 2)
        A21B = (cp.A21 @ block_diagonal(B)).tocsr()
        L21 = (
            sp.csr_matrix(lam2.T @ A21B)
            if not isinstance(lam2, np.ndarray)
            else sp.csr_matrix(A21B.multiply(lam2[:, None]))
        )
        rhs2 = -_scale_rows(cp.C2 @ xb[:, None], lam2)[:, 0]
        c2 = sla.solve_triangular(L22, rhs2 - L21 @ c1.ravel(), lower=True, check_finite=False)
        u2 = sla.solve_triangular(L22.T, c2, lower=False, check_finite=False)
        u1 = np.linalg.solve(
            np.swapaxes(L11, 1, 2), (c1.ravel() - L21.T @ u2).reshape(ell1, k1)[:, :, None]
        )[:, :, 0]
    else:
        u1 = np.linalg.solve(np.swapaxes(L11, 1, 2), c1[:, :, None])[:, :, 0]
        u2 = np.zeros(0)
    u_norm2 = float(np.sum(u1**2) + np.sum(u2**2))
    u_terms = [u1]
    b.append(u1 @ T1.T)
    if conditional_variances:
        Linv1 = np.linalg.inv(L11)  # (ℓ, k, k)
        cov_u1 = np.swapaxes(Linv1, 1, 2) @ Linv1
        if cp.q2:
            L22inv = sla.solve_triangular(L22, np.eye(cp.q2), lower=True)
            # C = −L22⁻¹ L21 L11⁻¹ ; add CᵀC's diagonal blocks to term 1
            L21L11inv = (L21 @ block_diagonal(Linv1)).toarray()
            Cm = L22inv @ L21L11inv
            Cm = Cm.reshape(cp.q2, ell1, k1)
            cov_u1 = cov_u1 + np.einsum("ila,ilb->lab", Cm, Cm)
        b_cov.append(sigma2 * (T1[None] @ cov_u1 @ T1.T[None]))
    for index, term in enumerate(cp.terms[1:], start=1):
        start, stop = cp.tail_offsets[index - 1], cp.tail_offsets[index]
        k = term.n_columns
        T = factors[index]
        u = u2[start:stop].reshape(term.n_levels, k)
        u_terms.append(u)
        b.append(u @ T.T)
        if conditional_variances:
            D = L22inv[:, start:stop].reshape(cp.q2, term.n_levels, k)
            cov_u = np.einsum("ila,ilb->lab", D, D)
            b_cov.append(sigma2 * (T[None] @ cov_u @ T.T[None]))
    pwrss = float(r2)
    return Solution(beta, sigma, vcov_unscaled, b, b_cov, pwrss, u_norm2, u_terms, fac.logdet_z)


def _sparse_tail_solution(
    cp: CrossProducts,
    fac: Factorization,
    beta: np.ndarray,
    sigma: float,
    vcov_unscaled: np.ndarray,
    conditional_variances: bool,
) -> Solution:
    """:func:`solve`'s remainder when the tail is factored sparse: the modes by block
    elimination (:func:`solve_modes`), the conditional covariances from the selected
    inverse of the tail (:func:`mixedmodels.lmm.sparse_tail.conditional_covariances`)."""
    p = cp.p
    combination = np.concatenate([-beta, [1.0]])[:, None]
    u_terms = [u[:, :, 0] for u in solve_modes(cp, fac, combination)]
    b = [u @ T.T for u, T in zip(u_terms, fac.factors, strict=True)]
    b_cov = []
    if conditional_variances:
        T1 = fac.factors[0]
        k1 = T1.shape[0]
        M = T1.T @ cp.A11 @ T1
        M[:, np.arange(k1), np.arange(k1)] += 1.0
        cov_u1, cov_u2 = conditional_covariances(
            cp.A21, fac.lam2, T1, np.linalg.inv(M), fac.sparse22
        )
        sigma2 = sigma * sigma
        b_cov.append(sigma2 * (T1[None] @ cov_u1 @ T1.T[None]))
        for index, T in enumerate(fac.factors[1:]):
            start, stop = cp.tail_offsets[index], cp.tail_offsets[index + 1]
            b_cov.append(sigma2 * T[0, 0] ** 2 * cov_u2[start:stop, None, None])
    u_norm2 = float(sum(np.sum(u**2) for u in u_terms))
    pwrss = float(fac.L33[p, p] ** 2)
    return Solution(beta, sigma, vcov_unscaled, b, b_cov, pwrss, u_norm2, u_terms, fac.logdet_z)
