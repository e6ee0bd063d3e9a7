"""The compiled deviance and fit of models whose random-effects terms are all scalar,
crossed or nested, with a small dense tail: ``(1 | a) + (1 | b)``, ``(1 | a/b)``.

On such a model :func:`mixedmodels.lmm.deviance.factorize` makes some thirty numpy and
LAPACK calls per evaluation on blocks of a few dozen rows, and their overhead, not the
arithmetic, is the evaluation's cost (~100 µs for the 50 x 30 pupils design, where one
compiled loop takes ~20 µs).  :func:`~mixedmodels.lmm._kernels.scalar_terms_deviance`
does the same elimination in one compiled loop: the first term's levels one at a time
(their Schur updates of the tail and of ``[X y]`` read only the non-zeros of
``Z_tailᵀZ₁``), then the tail's Cholesky factor.  The kernel also fits: its exact
gradient (:func:`~mixedmodels.lmm.exact_gradients.scalar_terms_gradient`) drives the
compiled BFGS of :mod:`.compiled_search` (:meth:`ScalarTermsKernel.search`).

Examples
--------
>>> import numpy as np
>>> from mixedmodels.frontend.design_types import ReTerm
>>> from mixedmodels.lmm.crossprods import CrossProducts
>>> from mixedmodels.lmm.deviance import factorize, objective
>>> rng = np.random.default_rng(3)
>>> g, h = rng.integers(0, 40, 300), rng.integers(0, 12, 300)
>>> y = rng.normal(size=300) + rng.normal(size=40)[g] + rng.normal(size=12)[h]
>>> terms = [ReTerm(n, c, np.arange(c.max() + 1).astype(str), np.ones((300, 1)),
...                 ("(Intercept)",), "us", "1", (n,)) for n, c in (("g", g), ("h", h))]
>>> cp = CrossProducts.build(y, np.ones((300, 1)), terms)
>>> kernel = scalar_terms_kernel(cp)
>>> theta = np.array([0.7, 1.3])
>>> bool(abs(kernel.profiled(True)(theta) - objective(cp, factorize(cp, theta), True)) < 1e-9)
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import _kernels, compiled_search
from ._kernels import COMPILED_LEVELS, COMPILED_TAIL, HAVE_NUMBA
from .covariance import Unstructured
from .crossprods import CrossProducts, compressed_rows


class ScalarTermsKernel:
    """The blocks of a model of scalar terms with a dense tail, laid out for
    :func:`mixedmodels.lmm._kernels.scalar_terms_deviance` (built by
    :func:`scalar_terms_kernel`)."""

    def __init__(self, cp: CrossProducts):
        C1 = np.ascontiguousarray(cp.C1[:, 0, :])
        self.XyXy = cp.XyXy
        self._a = np.ascontiguousarray(cp.A11[:, 0, 0])
        self._C1 = C1
        self._P = (C1[:, :, None] * C1[:, None, :]).reshape(len(C1), -1)
        if cp.dense_A21 is not None:  # column-major: its flat order is CSC's
            flat = cp.dense_A21.ravel(order="F")
            csc = compressed_rows(flat, cp.dense_A21.shape[1], cp.q2, np.int64)
        else:
            A21 = cp.A21.tocsc()
            A21.sort_indices()
            csc = A21.indptr, A21.indices, A21.data
        self._indptr = np.asarray(csc[0], dtype=np.int64)
        self._rows = np.asarray(csc[1], dtype=np.int64)
        self._values = np.asarray(csc[2], dtype=float)
        self._A22 = np.ascontiguousarray(cp.A22, dtype=float)
        self._C2 = np.ascontiguousarray(cp.C2, dtype=float)
        self._XyXy = np.ascontiguousarray(cp.XyXy, dtype=float)
        starts = [part.start for part in cp.theta_slices[1:]]
        self._tail_theta = np.repeat(
            np.array(starts, dtype=np.int64), [t.n_levels for t in cp.terms[1:]]
        )
        self._n, self._sum_log_weights = cp.n, cp.sum_log_weights

    def profiled(self, reml: bool) -> Callable[[np.ndarray], float]:
        """The profiled deviance as a function of θ, one compiled call an evaluation
        (``inf`` where a block is not positive definite).  Not kept on the kernel: the
        kernel is cached on the cross-products, which pickle."""
        compiled = _kernels.scalar_terms_deviance
        arrays, n, logw = self._gradient_arrays()

        def bound(theta: np.ndarray) -> float:
            return float(compiled(np.array(theta, dtype=float), *arrays, n, reml, logw))

        return bound

    def search(
        self, theta0: np.ndarray, lower: np.ndarray, reml: bool
    ) -> tuple[np.ndarray, float, np.ndarray, int, int]:
        """θ̂ by :func:`~mixedmodels.lmm.compiled_search.bounded_bfgs` on the exact
        gradient: θ, value, gradient, evaluations, status."""
        return compiled_search.search(
            theta0, lower, compiled_search.SCALAR_TERMS, self._gradient_arrays(), reml
        )

    def hessian(self, theta: np.ndarray, lower: np.ndarray, reml: bool) -> np.ndarray:
        """The Hessian at θ from differences of the exact gradient."""
        return compiled_search.hessian(
            theta, lower, compiled_search.SCALAR_TERMS, self._gradient_arrays(), reml
        )

    def _gradient_arrays(self) -> tuple[tuple[np.ndarray, ...], int, float]:
        arrays = (
            self._a, self._P, self._C1, self._indptr, self._rows, self._values,
            self._A22, self._C2, self._XyXy, self._tail_theta,
        )  # fmt: skip
        return arrays, self._n, self._sum_log_weights


def supports_scalar_terms_kernel(cp: CrossProducts) -> bool:
    """Every term scalar with lme4's parameterization, a dense tail of at most
    :data:`COMPILED_TAIL` effects, a first term of at most
    :data:`~mixedmodels.lmm._kernels.COMPILED_LEVELS` levels, and numba there."""
    return (
        HAVE_NUMBA
        and cp.q2 > 0
        and cp.sparse_tail is None
        and isinstance(cp.A22, np.ndarray)
        and cp.q2 <= COMPILED_TAIL
        and cp.A11.shape[0] <= COMPILED_LEVELS
        and cp.A11.shape[1] == 1
        and cp.tail_scalar
        and all(t.n_columns == 1 for t in cp.terms)
        and all(isinstance(s, Unstructured) for s in cp.structures)
    )


def scalar_terms_kernel(cp: CrossProducts) -> ScalarTermsKernel | None:
    """The kernel of ``cp`` (cached on it), or None when
    :func:`supports_scalar_terms_kernel` does not hold."""
    if not supports_scalar_terms_kernel(cp):
        return None
    kernel = cp.__dict__.get("_scalar_terms_kernel")
    if kernel is None or kernel.XyXy is not cp.XyXy:
        kernel = cp.__dict__["_scalar_terms_kernel"] = ScalarTermsKernel(cp)
    return kernel
