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

#: tails smaller than this are factored faster, fit for fit, by one BLAS thread
#: (2 cores, measured): VerbAgg (q₂ = 24) 0.31 → 0.22 s and the 500k crossed benchmark
#: (q₂ = 500) 2.3 → 1.5 s with one thread, although its 500² x 5000 syrk alone runs
#: 26 → 18 ms with two.  InstEval (q₂ = 1142) gained 12% from two threads on an idle
#: machine but lost tenfold with other processes on the cores (one deviance 0.07 s with
#: one thread, 0.72 s with two; OpenBLAS's threads spin waiting for each other), so the
#: limit sits above every dense tail we factor
SMALL_TAIL = 4000


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


def blas_threads_for(cp) -> AbstractContextManager:
    """One BLAS thread for a model whose dense tail has fewer than :data:`SMALL_TAIL`
    columns: every fit, profile and bootstrap of it is then made of products too small
    for BLAS's threads to pay."""
    return single_threaded_blas(cp.q2 < SMALL_TAIL)
