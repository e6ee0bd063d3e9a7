"""BLAS threads for fits made of many small matrix products.

A GLMM fit calls BLAS a few thousand times on matrices of a few dozen rows (the tail
block, XᵀWX); OpenBLAS's thread hand-off costs more than such a product, most of all
when another process holds the other core. Measured on VerbAgg (2 cores): 0.31 s with
two threads, 0.22 s with one. threadpoolctl switches the threads of every loaded BLAS
(numpy's and scipy's) for the duration of a block and restores them after.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager, nullcontext

#: dense tails up to this size are factored faster by one BLAS thread than by several
SMALL_TAIL = 500


@functools.cache
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def single_threaded_blas(active: bool = True) -> AbstractContextManager:
    """A context in which BLAS runs on one thread (a no-op when ``active`` is False).

    Examples
    --------
    >>> import numpy as np
    >>> with single_threaded_blas():
    ...     float(np.ones((3, 3)) @ np.ones(3) @ np.ones(3))
    9.0
    """
    if not active:
        return nullcontext()
    return _controller().limit(limits=1, user_api="blas")


def blas_threads_for(q2: int) -> AbstractContextManager:
    """One BLAS thread for a model whose dense tail has ``q2`` ≤ :data:`SMALL_TAIL`
    columns (every fit, profile and bootstrap of it is made of small products)."""
    return single_threaded_blas(q2 <= SMALL_TAIL)
