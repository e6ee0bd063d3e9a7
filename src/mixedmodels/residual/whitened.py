"""The deviance of an LMM with a residual structure, on whitened data.

For given residual parameters, ``[y − offset, X, Z]`` is multiplied by ``R^(−1/2)`` (the
structure's whitening transform, :mod:`.structures`), the cross-products are rebuilt (one
O(n) pass) and ``log|R|`` is added to the LMM engine's profiled deviance.  Fitting
(:mod:`mixedmodels.fitting.residual`) and the fitted model's objective
(:mod:`mixedmodels.models.objective`) both evaluate it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg as sla

from ..frontend.design_types import Design
from ..lmm.crossprods import CrossProducts
from ..lmm.deviance import deviance
from .structures import ResidualStructure


@dataclasses.dataclass
class WhitenedDeviance:
    """The deviance as a function of ``[θ, residual parameters]``.

    Keeps ``[y − offset, X, term matrices]`` as one array, whitened per evaluation; the
    cross-products of the last residual parameters are cached, so steps in θ alone (the
    finite differences of the convergence check) cost one deviance evaluation.
    """

    design: Design
    structure: ResidualStructure
    reml: bool
    n_theta: int
    data: np.ndarray = dataclasses.field(init=False)
    slices: list[slice] = dataclasses.field(init=False)
    _last: tuple[bytes, CrossProducts, float] | None = dataclasses.field(default=None, init=False)

    def __post_init__(self) -> None:
        y = self.design.y if self.design.offset is None else self.design.y - self.design.offset
        blocks = [y[:, None], self.design.X] + [t.matrix for t in self.design.terms]
        self.data = np.ascontiguousarray(np.column_stack(blocks))
        self.slices = []
        start = 0
        for block in blocks:
            self.slices.append(slice(start, start + block.shape[1]))
            start += block.shape[1]

    def crossprods(self, params: np.ndarray) -> tuple[CrossProducts, float]:
        key = np.asarray(params, dtype=float).tobytes()
        if self._last is not None and self._last[0] == key:
            return self._last[1], self._last[2]
        white, logdet = self.structure.whiten(params, self.data)
        terms = [
            dataclasses.replace(term, matrix=white[:, sl])
            for term, sl in zip(self.design.terms, self.slices[2:], strict=True)
        ]
        cp = CrossProducts.build(white[:, 0], white[:, self.slices[1]], terms)
        self._last = (key, cp, logdet)
        return cp, logdet

    def __call__(self, x: np.ndarray) -> float:
        x = np.asarray(x, dtype=float)
        try:
            cp, logdet = self.crossprods(x[self.n_theta :])
        except (np.linalg.LinAlgError, sla.LinAlgError, FloatingPointError, ValueError):
            return float("inf")
        if not np.isfinite(logdet):
            return float("inf")
        return deviance(cp, x[: self.n_theta], self.reml) + logdet
