"""Residual correlation structures (nlme's ``correlation=``): the block-diagonal ``C`` of
``R = D C D``.

The user-facing specifications (:class:`CorAR1`, :class:`CorCAR1`, :class:`CorCompSymm`,
:class:`CorSymm`) and, bound to a model's rows and correlation groups, their whitening
maps ``C^(-1/2)`` with ``log|C|`` (a bidiagonal map for AR(1)/CAR(1), a rank-one
correction for compound symmetry, a triangular solve for the general structure) and
their pairwise correlations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataError
from ._columns import numeric_column as _numeric_column


def _logistic(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


@dataclass(frozen=True)
class CorAR1:
    """AR(1) correlation ``φ^|t_i − t_j|`` of residuals within a group (nlme's ``corAR1``).

    Parameters
    ----------
    time : str, optional
        An integer-valued column giving the positions (gaps allowed, as nlme); the row
        order within each group when omitted.
    group : str, optional
        The grouping column (``"a:b"`` for an interaction); the grouping factor of the
        random-effects term with the most levels when omitted (nlme's default).
    """

    time: str | None = None
    group: str | None = None

    def columns(self) -> list[str]:
        """The data columns the structure reads."""
        return [c for c in (self.time, self.group) if c is not None and ":" not in c] + (
            self.group.split(":") if self.group and ":" in self.group else []
        )

    def bind(self, frame: pd.DataFrame, groups: np.ndarray, group_name: str) -> _BoundCorrelation:
        """The structure evaluated on the model's rows (called by the fit)."""
        owner = f"CorAR1(time={self.time!r}, group={group_name!r})"
        if self.time is None:
            times = _positions_in_data_order(groups)
        else:
            times = _numeric_column(frame, self.time, owner)
            bad = np.flatnonzero(times != np.round(times))
            if bad.size:
                raise DataError(
                    f"{owner}: times must be integers (nlme's corAR1 uses them as positions); "
                    f"got {times[bad[0]]!r} in row {frame.index[bad[0]]!r}. Use CorCAR1 for "
                    "continuous times."
                )
        return _SerialBound.build(groups, times, owner, continuous=False)


@dataclass(frozen=True)
class CorCAR1:
    """Continuous-time AR(1): correlation ``φ^|t_i − t_j|``, 0 <= φ < 1 (nlme's ``corCAR1``).

    Parameters
    ----------
    time : str
        A numeric column of (distinct within group) times.
    group : str, optional
        As for :class:`CorAR1`.
    """

    time: str
    group: str | None = None

    def columns(self) -> list[str]:
        """The data columns the structure reads."""
        return CorAR1(self.time, self.group).columns()

    def bind(self, frame: pd.DataFrame, groups: np.ndarray, group_name: str) -> _BoundCorrelation:
        """The structure evaluated on the model's rows (called by the fit)."""
        owner = f"CorCAR1(time={self.time!r}, group={group_name!r})"
        times = _numeric_column(frame, self.time, owner)
        return _SerialBound.build(groups, times, owner, continuous=True)


@dataclass(frozen=True)
class CorCompSymm:
    """One common correlation ρ between residuals of a group (nlme's ``corCompSymm``).

    Parameters
    ----------
    group : str, optional
        As for :class:`CorAR1`.
    """

    group: str | None = None

    def columns(self) -> list[str]:
        """The data columns the structure reads."""
        return CorAR1(None, self.group).columns()

    def bind(self, frame: pd.DataFrame, groups: np.ndarray, group_name: str) -> _BoundCorrelation:
        """The structure evaluated on the model's rows (called by the fit)."""
        return _CompSymmBound.build(groups)


@dataclass(frozen=True)
class CorSymm:
    """A general (unstructured) correlation matrix between positions (nlme's ``corSymm``).

    Parameters
    ----------
    group : str, optional
        As for :class:`CorAR1`.
    time : str, optional
        A column whose distinct values are the positions (each at most once per group);
        the row order within each group when omitted.
    """

    group: str | None = None
    time: str | None = None

    def columns(self) -> list[str]:
        """The data columns the structure reads."""
        return CorAR1(self.time, self.group).columns()

    def bind(self, frame: pd.DataFrame, groups: np.ndarray, group_name: str) -> _BoundCorrelation:
        """The structure evaluated on the model's rows (called by the fit)."""
        owner = f"CorSymm(group={group_name!r}, time={self.time!r})"
        if self.time is None:
            positions = _positions_in_data_order(groups).astype(np.int64)
        else:
            _, positions = np.unique(_numeric_column(frame, self.time, owner), return_inverse=True)
        return _SymmBound.build(groups, positions.astype(np.int64), owner)


CorrelationStructure = CorAR1 | CorCAR1 | CorCompSymm | CorSymm


def _positions_in_data_order(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each group, in the order the rows appear."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
    positions = np.empty(len(groups))
    positions[order] = np.arange(len(groups)) - run_start
    return positions


def _same_group_pairs(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ordered pairs (i, j), i != j, of rows in the same group."""
    n = len(groups)
    G = sp.csr_matrix((np.ones(n), (np.arange(n), groups)), shape=(n, int(groups.max()) + 1))
    pairs = (G @ G.T).tocoo()
    off = pairs.row != pairs.col
    return pairs.row[off], pairs.col[off]


@dataclass
class _BoundCorrelation:
    """A correlation structure evaluated on the model's rows."""

    groups: np.ndarray

    @property
    def n_params(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def initial(self) -> np.ndarray:
        return np.zeros(self.n_params)

    def whiten(self, params: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, float]:
        """``C^(−1/2) M`` (any square root) and ``log|C|``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def pair_correlation(self, params: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Correlations of rows i and j of the same group."""
        raise NotImplementedError  # pragma: no cover - abstract

    def coef(self, params: np.ndarray) -> pd.Series:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class _SerialBound(_BoundCorrelation):
    """AR(1) and CAR(1): the inverse Cholesky factor of ``φ^|Δt|`` is bidiagonal in time order
    (a Markov chain), so whitening is one pass: ``e_i = (x_i − r x_prev) / sqrt(1 − r²)``
    with ``r = φ^(t_i − t_prev)``."""

    times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    previous: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    gaps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    continuous: bool = False

    @classmethod
    def build(
        cls, groups: np.ndarray, times: np.ndarray, owner: str, continuous: bool
    ) -> _SerialBound:
        order = np.lexsort((times, groups))
        same = groups[order][1:] == groups[order][:-1]
        gaps = np.diff(times[order])[same]
        rows, previous = order[1:][same], order[:-1][same]
        if np.any(gaps == 0):
            row = rows[np.argmax(gaps == 0)]
            raise DataError(
                f"{owner}: time {times[row]:g} appears more than once in one group (row "
                f"{int(row)} and row {int(previous[np.argmax(gaps == 0)])}); times must be "
                "unique within a group. Check the group column or aggregate the duplicates."
            )
        return cls(
            groups=groups,
            times=times,
            rows=rows,
            previous=previous,
            gaps=gaps,
            continuous=continuous,
        )

    @property
    def n_params(self) -> int:
        return 1

    def initial(self) -> np.ndarray:
        # nlme starts corCAR1 at φ = 0.2 and corAR1 at 0
        return np.array([np.log(0.2 / 0.8)]) if self.continuous else np.zeros(1)

    def phi(self, params: np.ndarray) -> float:
        if self.continuous:
            return _logistic(params[0])
        return float(np.tanh(params[0] / 2.0))  # nlme's log((1 + φ)/(1 − φ)) scale

    def _lag_correlation(self, phi: float, gaps: np.ndarray) -> np.ndarray:
        if phi == 0.0:
            return np.zeros_like(gaps)
        if phi < 0.0:  # integer gaps only (CorAR1)
            return np.sign(phi) ** gaps * np.abs(phi) ** gaps
        return phi**gaps

    def whiten(self, params: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, float]:
        r = self._lag_correlation(self.phi(params), self.gaps)
        scale = np.sqrt(1.0 - r * r)
        out = M.copy()
        out[self.rows] = (M[self.rows] - r[:, None] * M[self.previous]) / scale[:, None]
        return out, float(2.0 * np.sum(np.log(scale)))

    def pair_correlation(self, params: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return self._lag_correlation(self.phi(params), np.abs(self.times[i] - self.times[j]))

    def coef(self, params: np.ndarray) -> pd.Series:
        return pd.Series([self.phi(params)], index=["Phi"], dtype=float)


@dataclass
class _CompSymmBound(_BoundCorrelation):
    """Compound symmetry: ``C = (1 − ρ)I + ρ11ᵀ`` per group of size m, whitened by its
    symmetric inverse square root ``(1 − ρ)^(−1/2) (I − c 11ᵀ/m)`` with
    ``c = 1 − sqrt((1 − ρ)/(1 + (m − 1)ρ))``."""

    indicator: sp.csr_matrix | None = None
    sizes: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def build(cls, groups: np.ndarray) -> _CompSymmBound:
        n = len(groups)
        sizes = np.bincount(groups).astype(float)
        indicator = sp.csr_matrix((np.ones(n), (np.arange(n), groups)), shape=(n, len(sizes)))
        return cls(groups=groups, indicator=indicator, sizes=sizes)

    @property
    def n_params(self) -> int:
        return 1

    @property
    def lower(self) -> float:
        largest = self.sizes.max()
        return -1.0 / (largest - 1.0) if largest > 1 else -1.0

    def initial(self) -> np.ndarray:
        return np.array([np.log(-self.lower)])  # ρ = 0

    def rho(self, params: np.ndarray) -> float:
        return self.lower + (1.0 - self.lower) * _logistic(params[0])

    def whiten(self, params: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, float]:
        rho = self.rho(params)
        m = self.sizes
        big = 1.0 + (m - 1.0) * rho
        c = 1.0 - np.sqrt((1.0 - rho) / big)
        means = (self.indicator.T @ M) / m[:, None]
        out = (M - (c[:, None] * means)[self.groups]) / np.sqrt(1.0 - rho)
        logdet = float(np.sum((m - 1.0) * np.log(1.0 - rho) + np.log(big)))
        return out, logdet

    def pair_correlation(self, params: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return np.full(len(i), self.rho(params))

    def coef(self, params: np.ndarray) -> pd.Series:
        return pd.Series([self.rho(params)], index=["Rho"], dtype=float)


@dataclass
class _SymmBound(_BoundCorrelation):
    """General correlation between positions; groups sharing a pattern of positions are
    whitened together by one triangular inverse."""

    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    size: int = 0
    patterns: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    @classmethod
    def build(cls, groups: np.ndarray, positions: np.ndarray, owner: str) -> _SymmBound:
        order = np.lexsort((positions, groups))
        sorted_groups = groups[order]
        same = sorted_groups[1:] == sorted_groups[:-1]
        if np.any(same & (np.diff(positions[order]) == 0)):
            raise DataError(
                f"{owner}: a position appears more than once in one group; positions must "
                "be unique within a group."
            )
        starts = np.r_[0, np.flatnonzero(~same) + 1]
        stops = np.r_[starts[1:], len(order)]
        keys: dict[bytes, list[int]] = {}
        for index, (a, b) in enumerate(zip(starts, stops, strict=True)):
            keys.setdefault(positions[order[a:b]].tobytes(), []).append(index)
        patterns = []
        for members in keys.values():
            first = starts[members[0]]
            width = stops[members[0]] - first
            rows = order[starts[members][:, None] + np.arange(width)[None, :]]
            patterns.append((positions[rows[0]], rows))
        return cls(
            groups=groups,
            positions=positions,
            size=int(positions.max()) + 1,
            patterns=patterns,
        )

    @property
    def n_params(self) -> int:
        return self.size * (self.size - 1) // 2

    def correlation(self, params: np.ndarray) -> np.ndarray:
        """C = LLᵀ with L's rows on the unit sphere (canonical partial correlations)."""
        k = self.size
        z = np.tanh(np.asarray(params, dtype=float))
        L = np.zeros((k, k))
        L[0, 0] = 1.0
        index = 0
        for i in range(1, k):
            remaining = 1.0
            for j in range(i):
                L[i, j] = z[index] * np.sqrt(remaining)
                remaining -= L[i, j] ** 2
                index += 1
            L[i, i] = np.sqrt(max(remaining, 0.0))
        C = L @ L.T
        np.fill_diagonal(C, 1.0)
        return C

    def whiten(self, params: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, float]:
        C = self.correlation(params)
        out = np.empty_like(M)
        logdet = 0.0
        for positions, rows in self.patterns:
            L = np.linalg.cholesky(C[np.ix_(positions, positions)])
            inverse = np.linalg.inv(L)
            out[rows] = np.einsum("ij,gjc->gic", inverse, M[rows])
            logdet += rows.shape[0] * 2.0 * float(np.sum(np.log(np.diag(L))))
        return out, logdet

    def pair_correlation(self, params: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return self.correlation(params)[self.positions[i], self.positions[j]]

    def coef(self, params: np.ndarray) -> pd.Series:
        C = self.correlation(params)
        rows, cols = np.tril_indices(self.size, -1)
        order = np.lexsort((rows, cols))  # nlme lists the lower triangle column by column
        names = [f"cor({c + 1},{r + 1})" for r, c in zip(rows[order], cols[order], strict=True)]
        return pd.Series(C[rows[order], cols[order]], index=names, dtype=float)
