"""Maps from the optimizer's parameters θ to a term's relative covariance factor T.

A term with k columns has covariance ``σ² T Tᵀ`` for the random effects of one level,
and Λ = I_ℓ ⊗ T over its ℓ levels.  lme4's unstructured T is lower triangular with
θ its column-major lower triangle; the diagonal structure keeps only the diagonal.

glmmTMB's structured covariances (``cs``, ``ar1``, ``toep``) are other maps θ -> T with
``T Tᵀ = S C S``: relative SDs ``S`` (bounded below by 0, like lme4's diagonal θ) and a
correlation matrix ``C`` whose parameters are unconstrained reals, so the bounded
optimizer needs no constraint beyond ``θ >= lower``.  T is ``S`` times the Cholesky
factor of ``C``.
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


def bounded_correlation(x: np.ndarray | float) -> np.ndarray:
    """Map unconstrained reals to (−1, 1) with ``x / sqrt(1 + x²)`` (glmmTMB's map for ρ)."""
    x = np.asarray(x, dtype=float)
    return x / np.sqrt(1.0 + x * x)


def ar1_cholesky(rho: float, k: int) -> np.ndarray:
    """Cholesky factor of the AR(1) correlation matrix ``C_ij = ρ^|i−j|`` in closed form.

    ``L_i0 = ρ^i`` and ``L_ij = ρ^(i−j) sqrt(1 − ρ²)`` for ``1 <= j <= i``: valid (and
    singular, never failing) at ``|ρ| = 1``.

    Examples
    --------
    >>> L = ar1_cholesky(0.5, 3)
    >>> np.allclose(L @ L.T, 0.5 ** np.abs(np.subtract.outer(range(3), range(3))))
    True
    """
    lag = np.subtract.outer(np.arange(k), np.arange(k))
    L = np.where(lag >= 0, float(rho) ** np.maximum(lag, 0), 0.0)
    L[:, 1:] *= np.sqrt(max(0.0, 1.0 - rho * rho))
    return L


def toeplitz_correlations(partial: np.ndarray) -> np.ndarray:
    """Autocorrelations ρ₁..ρ_m from partial autocorrelations in (−1, 1) (Durbin-Levinson).

    Any partial autocorrelations in (−1, 1) give a positive-definite Toeplitz matrix, so
    the optimizer can work on unconstrained values mapped by :func:`bounded_correlation`.

    Examples
    --------
    >>> toeplitz_correlations(np.array([0.5, 0.0]))  # an AR(1) with ρ = 0.5
    array([0.5 , 0.25])
    """
    m = len(partial)
    rho = np.zeros(m)
    coef = np.zeros(0)
    error = 1.0
    for j in range(m):
        phi = float(partial[j])
        rho[j] = phi * error + (coef @ rho[:j][::-1] if j else 0.0)
        coef = np.append(coef - phi * coef[::-1], phi)
        error *= 1.0 - phi * phi
    return rho


@dataclass(frozen=True)
class _Structured(CovarianceStructure):
    """Shared parts of the structures with SDs and an unconstrained correlation part."""

    @property
    def n_sd(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def n_correlation(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def n_theta(self) -> int:
        return self.n_sd + (self.n_correlation if self.k > 1 else 0)

    def lower_bounds(self) -> np.ndarray:
        return np.concatenate([np.zeros(self.n_sd), np.full(self.n_theta - self.n_sd, -np.inf)])

    def initial(self) -> np.ndarray:
        return np.concatenate([np.ones(self.n_sd), np.zeros(self.n_theta - self.n_sd)])

    def correlation_cholesky(self, params: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def factor(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        sd = np.broadcast_to(theta[: self.n_sd], (self.k,))
        if self.k == 1:
            return sd.reshape(1, 1).copy()
        return sd[:, None] * self.correlation_cholesky(theta[self.n_sd :])

    def correlation(self, theta: np.ndarray) -> np.ndarray:
        """The structure's correlation matrix at θ."""
        if self.k == 1:
            return np.ones((1, 1))
        L = self.correlation_cholesky(np.asarray(theta, dtype=float)[self.n_sd :])
        return L @ L.T


@dataclass(frozen=True)
class CompoundSymmetry(_Structured):
    """glmmTMB's ``cs``: one SD per column and one common correlation ρ.

    θ is ``k`` relative SDs then one unconstrained value mapped to ρ in (−1/(k−1), 1).

    Examples
    --------
    >>> cs = CompoundSymmetry(3)
    >>> T = cs.factor(np.array([1.0, 1.0, 1.0, 0.0]))
    >>> np.round(T @ T.T, 3)
    array([[1.  , 0.25, 0.25],
           [0.25, 1.  , 0.25],
           [0.25, 0.25, 1.  ]])
    """

    @property
    def n_sd(self) -> int:
        return self.k

    @property
    def n_correlation(self) -> int:
        return 1

    def initial(self) -> np.ndarray:
        start = super().initial()
        if self.k > 1:  # ρ = 0, as for the other structures
            lower = -1.0 / (self.k - 1)
            a = (-lower - 1.0) / (1.0 - lower)
            start[-1] = a / np.sqrt(1.0 - a * a)
        return start

    def rho(self, value: float) -> float:
        lower = -1.0 / (self.k - 1)
        return float(lower + (1.0 - lower) * (bounded_correlation(value) + 1.0) / 2.0)

    def correlation_cholesky(self, params: np.ndarray) -> np.ndarray:
        rho = self.rho(params[0])
        C = np.full((self.k, self.k), rho)
        np.fill_diagonal(C, 1.0)
        return np.linalg.cholesky(C)


@dataclass(frozen=True)
class AR1(_Structured):
    """glmmTMB's ``ar1``: one common SD and correlations ``ρ^|i−j|`` between columns.

    θ is the relative SD then one unconstrained value x with ``ρ = x / sqrt(1 + x²)``.

    Examples
    --------
    >>> T = AR1(3).factor(np.array([2.0, 1 / np.sqrt(3)]))  # ρ = 0.5
    >>> np.round(T @ T.T, 3)
    array([[4., 2., 1.],
           [2., 4., 2.],
           [1., 2., 4.]])
    """

    @property
    def n_sd(self) -> int:
        return 1

    @property
    def n_correlation(self) -> int:
        return 1

    def correlation_cholesky(self, params: np.ndarray) -> np.ndarray:
        return ar1_cholesky(float(bounded_correlation(params[0])), self.k)


@dataclass(frozen=True)
class Toeplitz(_Structured):
    """glmmTMB's ``toep``: one SD per column and one correlation per lag.

    θ is ``k`` relative SDs then ``k − 1`` unconstrained partial autocorrelations
    (mapped to (−1, 1)), which keep the Toeplitz correlation matrix positive definite.

    Examples
    --------
    >>> C = Toeplitz(3).correlation(np.array([1.0, 1.0, 1.0, 1 / np.sqrt(3), 0.0]))
    >>> np.round(C, 3)
    array([[1.  , 0.5 , 0.25],
           [0.5 , 1.  , 0.5 ],
           [0.25, 0.5 , 1.  ]])
    """

    @property
    def n_sd(self) -> int:
        return self.k

    @property
    def n_correlation(self) -> int:
        return self.k - 1

    def correlation_cholesky(self, params: np.ndarray) -> np.ndarray:
        rho = toeplitz_correlations(bounded_correlation(params))
        lags = np.abs(np.subtract.outer(np.arange(self.k), np.arange(self.k)))
        return np.linalg.cholesky(np.concatenate([[1.0], rho])[lags])


@dataclass(frozen=True)
class BlockDiagonal(CovarianceStructure):
    """Independent blocks, one structure each: the terms of one grouping factor merged.

    ``(1 | g) + ar1(0 + f | g)`` is one term of ``1 + k`` columns whose T is block
    diagonal; θ is the parts' θ in order, so the merged term has the same likelihood and
    parameters as the separate ones while its Λ block stays block diagonal per level.

    Examples
    --------
    >>> merged = BlockDiagonal(3, (Unstructured(1), AR1(2)))
    >>> merged.n_theta
    3
    >>> merged.factor(np.array([2.0, 1.0, 0.0]))
    array([[2., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    """

    parts: tuple[CovarianceStructure, ...] = ()

    @property
    def n_theta(self) -> int:
        return sum(p.n_theta for p in self.parts)

    def lower_bounds(self) -> np.ndarray:
        return np.concatenate([p.lower_bounds() for p in self.parts])

    def initial(self) -> np.ndarray:
        return np.concatenate([p.initial() for p in self.parts])

    def factor(self, theta: np.ndarray) -> np.ndarray:
        T = np.zeros((self.k, self.k))
        row = start = 0
        for part in self.parts:
            T[row : row + part.k, row : row + part.k] = part.factor(
                theta[start : start + part.n_theta]
            )
            row += part.k
            start += part.n_theta
        return T


_STRUCTURES: dict[str, type[CovarianceStructure]] = {
    "us": Unstructured,
    "diag": Diagonal,
    "cs": CompoundSymmetry,
    "ar1": AR1,
    "toep": Toeplitz,
}


def structure_for(name: str | CovarianceStructure, k: int) -> CovarianceStructure:
    """The covariance structure called ``name`` for a term with ``k`` columns (a structure
    instance, such as a :class:`BlockDiagonal` of merged terms, is returned as it is).

    Examples
    --------
    >>> structure_for("ar1", 6).n_theta
    2
    """
    if isinstance(name, CovarianceStructure):
        if name.k != k:
            raise ValueError(f"The structure has {name.k} columns; the term has {k}.")
        return name
    if name not in _STRUCTURES:
        raise ValueError(
            f"Unknown covariance structure {name!r}. Expecting one of {set(_STRUCTURES)}."
        )
    return _STRUCTURES[name](k)
