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

import math
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

    # -- the structure's own SD/correlation scale (profiles, intervals, bootstrap) --------
    def sdcor_labels(self, columns: tuple[str, ...]) -> list[tuple[str, bool]]:
        """(label, is_sd) of each SD/correlation parameter: ``sd_<column>`` and
        ``cor_<column>.<column>`` as lme4's ``confint(oldNames = FALSE)`` (without the
        ``|group`` suffix)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def sdcor_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the SD/correlation parameters."""
        labels = self.sdcor_labels(tuple(map(str, range(self.k))))
        sd = np.array([is_sd for _, is_sd in labels], dtype=bool)
        return np.where(sd, 0.0, -1.0), np.where(sd, np.inf, 1.0)

    def to_sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """θ → the structure's SDs (scaled by σ) and correlations."""
        raise NotImplementedError  # pragma: no cover - abstract

    def from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray:
        """Inverse of :meth:`to_sdcor` (NaN where the values are outside the structure)."""
        raise NotImplementedError  # pragma: no cover - abstract

    # -- coordinates of a profile's refit, in which the structure is the box sdcor_bounds
    def refit_coordinates(self, values: np.ndarray, held: int | None, value: float) -> np.ndarray:
        """SD/correlation ``values`` → the coordinates a profile's refit optimizes, in which
        the structure's parameter set is the box :meth:`sdcor_bounds`, with the parameter at
        position ``held`` (or none) fixed at ``value``.  The identity here; a structure whose
        correlations do not fill that box (:class:`Toeplitz`) maps them."""
        return np.asarray(values, dtype=float).copy()

    def from_refit_coordinates(
        self, coords: np.ndarray, held: int | None, value: float
    ) -> np.ndarray:
        """Inverse of :meth:`refit_coordinates`: the SD/correlation values, the held one at
        ``value`` (NaN where no parameters of the structure have it)."""
        values = np.asarray(coords, dtype=float).copy()
        if held is not None:
            values[held] = value
        return values


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

    def sdcor_labels(self, columns: tuple[str, ...]) -> list[tuple[str, bool]]:
        rows, cols = self._rows_cols()
        return [
            (f"sd_{columns[i]}", True) if i == j else (f"cor_{columns[i]}.{columns[j]}", False)
            for i, j in zip(rows, cols, strict=True)
        ]

    def to_sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """lme4's ``Cv_to_Sv`` for one term.

        Examples
        --------
        >>> Unstructured(2).to_sdcor(np.array([1.0, 0.0, 2.0]), 0.5)
        array([0.5, 0. , 1. ])
        """
        T = self.factor(theta)
        cov = sigma**2 * (T @ T.T)
        sd = np.sqrt(np.diag(cov))
        rows, cols = self._rows_cols()
        denom = sd[rows] * sd[cols]
        with np.errstate(invalid="ignore", divide="ignore"):
            cor = np.where(denom > 0, cov[rows, cols] / np.where(denom > 0, denom, 1.0), 0.0)
        return np.where(rows == cols, sd[rows], cor)

    def from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray:
        """lme4's ``Sv_to_Cv`` for one term (a semidefinite Cholesky factor at the
        boundary).

        Examples
        --------
        >>> Unstructured(2).from_sdcor(np.array([0.5, 0.0, 1.0]), 0.5)
        array([1., 0., 2.])
        """
        values = np.asarray(values, dtype=float)
        if self.k == 1:
            return values / sigma
        # scalar loops: a profile converts at every deviance evaluation, and for the
        # small k of random-effect terms numpy's per-call overhead was most of that cost
        k = self.k
        rows, cols = self._rows_cols()
        scaled = [0.0] * (k * k)  # row-major S = diag(sd) C diag(sd) / σ²
        triangle = list(zip(rows.tolist(), cols.tolist(), values.tolist(), strict=True))
        sd = {i: v for i, j, v in triangle if i == j}
        s2 = float(sigma) ** 2  # numpy's order of operations: C * outer(sd, sd) / σ²
        for i, j, v in triangle:
            scaled[i * k + j] = (1.0 if i == j else v) * (sd[i] * sd[j]) / s2
        return np.array(_semidefinite_cholesky_lower(scaled, k, rows, cols))


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

    def sdcor_labels(self, columns: tuple[str, ...]) -> list[tuple[str, bool]]:
        return [(f"sd_{c}", True) for c in columns]

    def to_sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        return sigma * np.abs(np.asarray(theta, dtype=float))

    def from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray:
        return np.asarray(values, dtype=float) / sigma


def bounded_correlation(x: np.ndarray | float) -> np.ndarray:
    """Map unconstrained reals to (−1, 1) with ``x / sqrt(1 + x²)`` (glmmTMB's map for ρ)."""
    if np.ndim(x) == 0:  # one correlation (ar1, cs): scalar arithmetic, in every evaluation
        value = float(x)
        if abs(value) > 1e150:  # x² would overflow; ρ is ±1 to double precision long before
            return np.float64(math.copysign(1.0, value))
        return np.float64(value / math.sqrt(1.0 + value * value))
    x = np.asarray(x, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        r = x / np.sqrt(1.0 + x * x)
    return np.where(np.isinf(x), np.sign(x), r)  # ±1 at ±inf (a profile at its bound)


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
    lag, below = _lags(k)
    L = (float(rho) ** np.arange(k))[lag]
    L *= below
    L[:, 1:] *= math.sqrt(max(0.0, 1.0 - rho * rho))
    return L


@lru_cache(maxsize=16)
def _lags(k: int) -> tuple[np.ndarray, np.ndarray]:
    """i − j cut at 0, and 1.0 on and below the diagonal (0.0 above), for k x k."""
    lag = np.subtract.outer(np.arange(k), np.arange(k))
    return np.maximum(lag, 0), (lag >= 0).astype(float)


def unbounded_correlation(r: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`bounded_correlation`: ``r / sqrt(1 − r²)`` (±inf at ±1, NaN
    outside [−1, 1]).

    Examples
    --------
    >>> float(bounded_correlation(unbounded_correlation(0.3)))
    0.3
    """
    r = np.asarray(r, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = r / np.sqrt(1.0 - r * r)
        return np.where(np.abs(r) == 1.0, np.sign(r) * np.inf, x)


def semidefinite_cholesky(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor that tolerates zero variances (zero columns instead of failing).

    Examples
    --------
    >>> semidefinite_cholesky(np.array([[1.0, 1.0], [1.0, 1.0]]))
    array([[1., 0.],
           [1., 0.]])
    """
    k = S.shape[0]
    L = np.zeros_like(S)
    for j in range(k):
        d = S[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-14 * max(1.0, abs(S[j, j])):
            continue
        L[j, j] = np.sqrt(d)
        L[j + 1 :, j] = (S[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]) / L[j, j]
    return L


#: prediction error variance below which a Toeplitz correlation matrix is singular
_EDGE = 1e-14


def _semidefinite_cholesky_lower(
    S: list[float], k: int, rows: np.ndarray, cols: np.ndarray
) -> list[float]:
    """The Cholesky factor of the row-major lower triangle ``S`` in scalar arithmetic,
    returned at (``rows``, ``cols``): the plain one when ``S`` is positive definite (as
    ``np.linalg.cholesky``), else :func:`semidefinite_cholesky`'s, whose small pivots give
    zero columns."""
    for semidefinite in (False, True):
        L = [0.0] * (k * k)
        for j in range(k):
            d = S[j * k + j] - sum(L[j * k + m] ** 2 for m in range(j))
            if not d > (1e-14 * max(1.0, abs(S[j * k + j])) if semidefinite else 0.0):
                if not semidefinite:
                    break
                continue
            ljj = math.sqrt(d)
            L[j * k + j] = ljj
            inverse = 1.0 / ljj  # LAPACK's potrf scales the column by the reciprocal
            for i in range(j + 1, k):
                dot = sum(L[i * k + m] * L[j * k + m] for m in range(j))
                L[i * k + j] = (S[i * k + j] - dot) * inverse
        else:
            break
    return [L[i * k + j] for i, j in zip(rows.tolist(), cols.tolist(), strict=True)]


def partial_autocorrelations(rho: np.ndarray) -> np.ndarray:
    """Inverse of :func:`toeplitz_correlations` (Durbin-Levinson run backwards); NaN when
    the autocorrelations are not those of a positive-definite Toeplitz matrix.

    Examples
    --------
    >>> partial_autocorrelations(np.array([0.5, 0.25]))
    array([0.5, 0. ])
    """
    rho = np.asarray(rho, dtype=float)
    m = rho.size
    partial = np.zeros(m)
    coef = np.zeros(0)
    error = 1.0
    for j in range(m):
        if not error > _EDGE:  # singular already: the later lags follow (partial 0)
            if not error >= 0.0:
                return np.full(m, np.nan)
            break
        phi = (rho[j] - (coef @ rho[:j][::-1] if j else 0.0)) / error
        if not abs(phi) <= 1.0 + 1e-10:  # rounding of a point on the edge |φ| = 1
            return np.full(m, np.nan)
        phi = min(1.0, max(-1.0, phi))
        partial[j] = phi
        coef = np.append(coef - phi * coef[::-1], phi)
        error *= 1.0 - phi * phi
    return partial


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

    # the SD/correlation scale: the structure's own SDs, then its correlation parameters
    def correlation_values(self, params: np.ndarray) -> np.ndarray:  # pragma: no cover
        """The correlation parameters (−1..1 scale) from their unconstrained θ."""
        raise NotImplementedError

    def correlation_params(self, values: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Inverse of :meth:`correlation_values`."""
        raise NotImplementedError

    def correlation_labels(self, columns: tuple[str, ...]) -> list[str]:
        """The lag-1 correlation (of the second column with the first)."""
        return [f"cor_{columns[1]}.{columns[0]}"]

    def sdcor_labels(self, columns: tuple[str, ...]) -> list[tuple[str, bool]]:
        labels = [(f"sd_{c}", True) for c in columns[: self.n_sd]]
        if self.k > 1:
            labels.extend((label, False) for label in self.correlation_labels(columns))
        return labels

    def to_sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        sd = sigma * np.abs(theta[: self.n_sd])
        if self.k == 1:
            return sd
        return np.concatenate([sd, self.correlation_values(theta[self.n_sd :])])

    def from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        sd = values[: self.n_sd] / sigma
        if self.k == 1:
            return sd
        return np.concatenate([sd, self.correlation_params(values[self.n_sd :])])

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

    def sdcor_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = super().sdcor_bounds()
        if self.k > 1:  # a common correlation below −1/(k − 1) is not positive definite
            lower[-1] = -1.0 / (self.k - 1)
        return lower, upper

    def correlation_values(self, params: np.ndarray) -> np.ndarray:
        return np.array([self.rho(params[0])])

    def correlation_params(self, values: np.ndarray) -> np.ndarray:
        lower = -1.0 / (self.k - 1)
        return unbounded_correlation(2.0 * (values - lower) / (1.0 - lower) - 1.0)

    def correlation_cholesky(self, params: np.ndarray) -> np.ndarray:
        rho = self.rho(params[0])
        C = np.full((self.k, self.k), rho)
        np.fill_diagonal(C, 1.0)
        if rho >= 1.0:  # the bound ρ = 1 (a profile's end): singular, still a covariance
            return semidefinite_cholesky(C)
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

    def correlation_values(self, params: np.ndarray) -> np.ndarray:
        return bounded_correlation(np.asarray(params, dtype=float)[:1])

    def correlation_params(self, values: np.ndarray) -> np.ndarray:
        return unbounded_correlation(values)

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

    def correlation_labels(self, columns: tuple[str, ...]) -> list[str]:
        """One autocorrelation per lag: column l + 1 with the first column."""
        return [f"cor_{c}.{columns[0]}" for c in columns[1:]]

    def correlation_values(self, params: np.ndarray) -> np.ndarray:
        return toeplitz_correlations(bounded_correlation(params))

    def correlation_params(self, values: np.ndarray) -> np.ndarray:
        return unbounded_correlation(partial_autocorrelations(values))

    def correlation_cholesky(self, params: np.ndarray) -> np.ndarray:
        partial = bounded_correlation(params)
        rho = toeplitz_correlations(partial)
        lags = np.abs(np.subtract.outer(np.arange(self.k), np.arange(self.k)))
        C = np.concatenate([[1.0], rho])[lags]
        if np.any(np.abs(partial) >= 1.0):  # on the edge (a profile's refit): singular
            return semidefinite_cholesky(C)
        return np.linalg.cholesky(C)

    # A profile holding the lag-w autocorrelation ρ_w refits the others on partial
    # autocorrelations φ (the positive-definite set is the box |φ| <= 1), with φ_w solved
    # from ρ_w, which is affine in it; φ_{w-1} is confined to where that φ_w lies in
    # [-1, 1] (an interval: the set is convex) and its coordinate is its place there.
    def refit_coordinates(self, values: np.ndarray, held: int | None, value: float) -> np.ndarray:
        coords = np.asarray(values, dtype=float).copy()
        if self.k == 1:
            return coords
        partial = partial_autocorrelations(coords[self.k :])
        if np.any(np.isnan(partial)):
            partial = np.zeros(self.k - 1)
        w = None if held is None or held < self.k else held - self.k
        if w:
            low, high = _free_partial_range(partial[: w - 1], value)
            span = high - low
            place = 0.0 if not span > 0 else 2.0 * (partial[w - 1] - low) / span - 1.0
            partial[w - 1] = min(1.0, max(-1.0, place))
        coords[self.k :] = partial
        return coords

    def from_refit_coordinates(
        self, coords: np.ndarray, held: int | None, value: float
    ) -> np.ndarray:
        values = np.asarray(coords, dtype=float).copy()
        if held is not None and held < self.k:
            values[held] = value
        if self.k == 1:
            return values
        partial = np.clip(values[self.k :], -1.0, 1.0)
        w = None if held is None or held < self.k else held - self.k
        if w is not None:
            if w:
                low, high = _free_partial_range(partial[: w - 1], value)
                if np.isnan(low):
                    return np.full(values.size, np.nan)
                partial[w - 1] = low + (partial[w - 1] + 1.0) / 2.0 * (high - low)
            partial[w] = _solved_partial(partial[:w], value)
        values[self.k :] = toeplitz_correlations(partial)
        return values


def _lag_affine(prefix: np.ndarray) -> tuple[float, float]:
    """(a, b) with ρ_w = a + b φ_w, the partial autocorrelations before lag w given."""
    a = toeplitz_correlations(np.append(prefix, 0.0))[-1]
    return a, toeplitz_correlations(np.append(prefix, 1.0))[-1] - a


def _solved_partial(prefix: np.ndarray, value: float) -> float:
    """φ_w that gives ρ_w = ``value`` after the partial autocorrelations ``prefix``."""
    a, b = _lag_affine(prefix)
    if not abs(b) > _EDGE:  # the lags before are on the edge: ρ_w follows from them
        return 0.0
    return float(min(1.0, max(-1.0, (value - a) / b)))


def _free_partial_range(prefix: np.ndarray, value: float) -> tuple[float, float]:
    """The interval of φ_{w-1} (after ``prefix``) for which some φ_w in [-1, 1] gives
    ρ_w = ``value``; (NaN, NaN) when there is none.

    ρ_w at φ_w = ±1 is quadratic in φ_{w-1}, so the ends are roots of two quadratics
    (or ±1); the pieces between them are kept where the solved φ_w is in range.
    """

    def reach(phi: float, sign: float) -> float:
        return float(toeplitz_correlations(np.concatenate([prefix, [phi, sign]]))[-1])

    grid = np.array([-1.0, 0.0, 1.0])
    ends = [-1.0, 1.0]
    for sign in (-1.0, 1.0):
        quadratic = np.polyfit(grid, [reach(g, sign) - value for g in grid], 2)
        roots = np.roots(quadratic) if np.any(quadratic) else []
        ends += [float(r.real) for r in roots if abs(r.imag) < 1e-12 and abs(r.real) <= 1.0]
    ends = sorted(ends)
    feasible = []
    for lo, hi in zip(ends[:-1], ends[1:], strict=True):
        mid = 0.5 * (lo + hi)
        a, b = _lag_affine(np.append(prefix, mid))
        if hi > lo and abs(b) > _EDGE and abs((value - a) / b) <= 1.0 + 1e-9:
            feasible += [lo, hi]
    if not feasible:
        return float("nan"), float("nan")
    return min(feasible), max(feasible)


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

    @staticmethod
    def _split(values: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
        return np.split(np.asarray(values, dtype=float), np.cumsum(sizes)[:-1])

    def sdcor_labels(self, columns: tuple[str, ...]) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        start = 0
        for part in self.parts:
            out.extend(part.sdcor_labels(tuple(columns[start : start + part.k])))
            start += part.k
        return out

    def _sdcor_sizes(self) -> list[int]:
        return [len(p.sdcor_labels(tuple(map(str, range(p.k))))) for p in self.parts]

    def to_sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        pieces = self._split(theta, [p.n_theta for p in self.parts])
        return np.concatenate(
            [p.to_sdcor(t, sigma) for p, t in zip(self.parts, pieces, strict=True)]
        )

    def from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray:
        pieces = self._split(values, self._sdcor_sizes())
        return np.concatenate(
            [p.from_sdcor(v, sigma) for p, v in zip(self.parts, pieces, strict=True)]
        )

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
