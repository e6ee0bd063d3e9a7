"""Maps from the optimizer's parameters θ to a term's relative covariance factor T.

A term with k columns has covariance ``σ² T Tᵀ`` for the random effects of one level,
and Λ = I_ℓ ⊗ T over its ℓ levels.  lme4's unstructured T is lower triangular with
θ its column-major lower triangle; the diagonal structure keeps only the diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def _lower_triangle(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the column-major lower triangle, the order lme4 uses for θ."""
    cols, rows = np.triu_indices(k)
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


@dataclass(frozen=True)
class CovarianceStructure:
    """Base class: ``k`` columns, ``n_theta`` parameters, bounds and the map θ -> T."""

    k: int

    @property
    def n_theta(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def lower_bounds(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def initial(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def factor(self, theta: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def diagonal_mask(self) -> np.ndarray:
        """Which θ are diagonal elements of T (bounded below by 0)."""
        return self.lower_bounds() == 0.0


@dataclass(frozen=True)
class Unstructured(CovarianceStructure):
    """lme4's general positive semi-definite covariance (``(x | g)``, glmmTMB ``us``).

    Examples
    --------
    >>> Unstructured(2).factor(np.array([1.0, 0.5, 2.0]))
    array([[1. , 0. ],
           [0.5, 2. ]])
    """

    @property
    def n_theta(self) -> int:
        return self.k * (self.k + 1) // 2

    def _rows_cols(self) -> tuple[np.ndarray, np.ndarray]:
        return _lower_triangle(self.k)

    def lower_bounds(self) -> np.ndarray:
        rows, cols = self._rows_cols()
        return np.where(rows == cols, 0.0, -np.inf)

    def initial(self) -> np.ndarray:
        rows, cols = self._rows_cols()
        return np.where(rows == cols, 1.0, 0.0)

    def factor(self, theta: np.ndarray) -> np.ndarray:
        T = np.zeros((self.k, self.k))
        rows, cols = self._rows_cols()
        T[rows, cols] = theta
        return T


@dataclass(frozen=True)
class Diagonal(CovarianceStructure):
    """Independent random effects with their own variances (glmmTMB ``diag``).

    Examples
    --------
    >>> Diagonal(2).factor(np.array([1.0, 2.0]))
    array([[1., 0.],
           [0., 2.]])
    """

    @property
    def n_theta(self) -> int:
        return self.k

    def lower_bounds(self) -> np.ndarray:
        return np.zeros(self.k)

    def initial(self) -> np.ndarray:
        return np.ones(self.k)

    def factor(self, theta: np.ndarray) -> np.ndarray:
        return np.diag(np.asarray(theta, dtype=float))


def structure_for(name: str, k: int) -> CovarianceStructure:
    """The covariance structure called ``name`` for a term with ``k`` columns."""
    if name == "us":
        return Unstructured(k)
    if name == "diag":
        return Diagonal(k)
    raise ValueError(f"Unknown covariance structure {name!r}. Expecting one of {{'us', 'diag'}}.")
