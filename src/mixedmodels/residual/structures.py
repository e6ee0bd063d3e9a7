"""Residual variance functions and correlation structures (nlme's ``weights=`` and
``correlation=``), applied by whitening.

The residuals of a model with a residual structure have covariance ``σ² R`` with
``R = D C D``: ``D`` diagonal (a variance function such as :class:`VarIdent`, relative
SDs ``g_i``) and ``C`` block diagonal over correlation groups (a correlation structure
such as :class:`CorAR1`).  For given parameters the rows of ``y``, ``X`` and of every
random-effects term's matrix are multiplied by ``R^(−1/2)`` (a row scaling for ``D``;
within each group a bidiagonal map for AR(1)/CAR(1), a rank-one correction for
compound symmetry, a triangular solve for the general structure).  The whitened model
has independent residuals of variance σ², so the ordinary profiled deviance applies and
``log|R|`` is added to it (the Jacobian of the map).

Whitening a term's matrix row by row within a correlation group keeps every row in one
level of the term only when the group is nested in the term's grouping factor; a
correlation group that crosses a term is refused with an explanation.  Variance
functions are diagonal and work with any terms, crossed ones included.

The parameter values reported are nlme's ``coef(..., unconstrained = FALSE)``: the SD
ratios of :class:`VarIdent`, the power of :class:`VarPower`, φ of :class:`CorAR1`, ...

Examples
--------
>>> import mixedmodels as mm
>>> data = mm.datasets.gpa(seed=1)
>>> m = mm.lmer("gpa ~ occasion + (1 | student)", data,
...             correlation=mm.CorAR1(time="occasion", group="student"))
>>> list(m.residual_parameters().index)
['Phi']
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataError
from ..frontend.design import group_codes

# --------------------------------------------------------------------------------------
# user-facing specifications
# --------------------------------------------------------------------------------------


def _logistic(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _numeric_column(frame: pd.DataFrame, name: str, owner: str) -> np.ndarray:
    column = frame[name]
    if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
        column.dtype
    ):
        raise DataError(
            f"{owner}: column '{name}' must be numeric. Got {column.dtype}; convert it, "
            f"e.g. data['{name}'].astype(float)."
        )
    return column.to_numpy(dtype=float)


@dataclass(frozen=True)
class VarIdent:
    """A different residual SD per level of ``by`` (nlme's ``varIdent(form = ~ 1 | by)``).

    The reference level has relative SD 1; the parameters are the SD ratios of the
    other levels to it.

    Parameters
    ----------
    by : str
        The column whose levels (strata) get their own residual variance.
    reference : str, optional
        The reference level; the first level of ``by`` (its category order, or sorted
        values as R's ``factor()``) when omitted.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> data = mm.datasets.gpa(seed=1)
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data, variance=mm.VarIdent("occasion"))
    >>> m.residual_variances()["level"].tolist()
    ['0', '1', '2', '3', '4', '5']
    """

    by: str
    reference: str | None = None

    def columns(self) -> list[str]:
        """The data columns the structure reads."""
        return [self.by]

    def bind(self, frame: pd.DataFrame) -> _BoundVariance:
        """The structure evaluated on the model's rows (called by the fit)."""
        codes, labels = group_codes(frame, (self.by,))
        labels = [str(v) for v in labels]
        if len(labels) < 2:
            raise DataError(
                f"VarIdent('{self.by}'): column '{self.by}' has a single level "
                f"({labels[0]!r}); a variance per level needs at least two levels. Drop "
                "variance= or choose another column."
            )
        if self.reference is not None:
            if str(self.reference) not in labels:
                raise DataError(
                    f"VarIdent('{self.by}', reference={self.reference!r}): no such level. "
                    f"The levels are {labels}."
                )
            first = labels.index(str(self.reference))
            order = [first] + [i for i in range(len(labels)) if i != first]
            remap = np.empty(len(labels), dtype=np.int64)
            remap[order] = np.arange(len(labels))
            codes = remap[codes]
            labels = [labels[i] for i in order]
        return _VarIdentBound(codes=codes, labels=labels, by=self.by)


#: The covariate name that means the model's fitted values, nlme's ``form = ~ fitted(.)``
#: (its default for varPower, varExp and varConstPower).
FITTED = "fitted"


class _CovariateFunction:
    """Shared by the variance functions of one covariate, which may be the fitted values."""

    covariate: str

    @property
    def uses_fitted(self) -> bool:
        """Whether the covariate is the fitted values (refitted as they change)."""
        return self.covariate == FITTED

    def columns(self) -> list[str]:
        """The data columns the structure reads."""
        return [] if self.uses_fitted else [self.covariate]

    def with_covariate(self, column: str) -> Any:
        """The same function on a given column (the fit puts the fitted values there)."""
        return dataclasses.replace(self, covariate=column)


@dataclass(frozen=True)
class VarPower(_CovariateFunction):
    """Residual SD proportional to ``|covariate|^power`` (nlme's ``varPower(form = ~ x)``).

    Parameters
    ----------
    covariate : str, default "fitted"
        A numeric column without zeros, or ``"fitted"``: the model's fitted values, nlme's
        default ``varPower()`` (``form = ~ fitted(.)``), updated as the fit proceeds.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> data = mm.datasets.gpa(seed=1)
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data, variance=mm.VarPower())
    >>> list(m.residual_parameters().index)
    ['power']
    """

    covariate: str = FITTED

    def bind(self, frame: pd.DataFrame) -> _BoundVariance:
        """The structure evaluated on the model's rows (called by the fit)."""
        values = _numeric_column(frame, self.covariate, f"VarPower('{self.covariate}')")
        if np.any(values == 0):
            raise DataError(
                f"VarPower('{self.covariate}'): the covariate is 0 in "
                f"{int(np.sum(values == 0))} row(s); |0|^power has no finite logarithm. "
                "Shift the covariate or use VarExp or VarConstPower."
            )
        return _CovariateBound(
            values=values, log_abs=np.log(np.abs(values)), kind="power", name=self.covariate
        )


@dataclass(frozen=True)
class VarExp(_CovariateFunction):
    """Residual SD proportional to ``exp(expon * covariate)`` (nlme's ``varExp``).

    Parameters
    ----------
    covariate : str, default "fitted"
        A numeric column, or ``"fitted"``: the model's fitted values (nlme's default).
    """

    covariate: str = FITTED

    def bind(self, frame: pd.DataFrame) -> _BoundVariance:
        """The structure evaluated on the model's rows (called by the fit)."""
        values = _numeric_column(frame, self.covariate, f"VarExp('{self.covariate}')")
        return _CovariateBound(values=values, log_abs=values, kind="expon", name=self.covariate)


@dataclass(frozen=True)
class VarConstPower(_CovariateFunction):
    """Residual SD proportional to ``const + |covariate|^power`` (nlme's ``varConstPower``).

    ``const`` > 0 keeps the variance positive where the covariate is 0.  There a negative
    power would make the variance infinite, so with zeros in the covariate the power is
    searched in [0, ∞) (nlme's optimizer fails on such data instead).

    Parameters
    ----------
    covariate : str, default "fitted"
        A numeric column, or ``"fitted"``: the model's fitted values (nlme's default).

    Examples
    --------
    Residual SDs that grow with the occasion, from 0:

    >>> import numpy as np
    >>> import mixedmodels as mm
    >>> data = mm.datasets.gpa(seed=1)
    >>> noise = np.random.default_rng(1).normal(size=len(data))
    >>> data["gpa"] += noise * 0.05 * (0.5 + data["occasion"] ** 1.5)
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data,
    ...             variance=mm.VarConstPower("occasion"))
    >>> m.residual_parameters().round(2).to_dict()
    {'const': 20.19, 'power': 2.36}
    """

    covariate: str = FITTED

    def bind(self, frame: pd.DataFrame) -> _BoundVariance:
        """The structure evaluated on the model's rows (called by the fit)."""
        values = _numeric_column(frame, self.covariate, f"VarConstPower('{self.covariate}')")
        return _ConstPowerBound(values=values, name=self.covariate)


@dataclass(frozen=True)
class VarComb:
    """The product of variance functions (nlme's ``varComb``): each one's relative SDs
    multiply; the parameters are reported as nlme does, ``A.``, ``B.``, ... in order.

    Parameters
    ----------
    *functions : VarIdent, VarPower, VarExp, VarConstPower or VarFixed

    Examples
    --------
    >>> import mixedmodels as mm
    >>> data = mm.datasets.gpa(seed=1)
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data,
    ...             variance=mm.VarComb(mm.VarIdent("sex"), mm.VarPower("highgpa")))
    >>> list(m.residual_parameters().index)
    ['A.female', 'B.power']
    """

    functions: tuple[Any, ...]

    def __init__(self, *functions: Any):
        if len(functions) < 2 or not all(hasattr(f, "bind") for f in functions):
            raise DataError(
                "VarComb needs two or more variance functions, e.g. "
                "VarComb(VarIdent('sex'), VarPower('x'))."
            )
        if any(isinstance(f, VarComb) for f in functions):
            raise DataError("VarComb of a VarComb: list the functions in one VarComb instead.")
        object.__setattr__(self, "functions", tuple(functions))

    @property
    def uses_fitted(self) -> bool:
        """Whether the covariate is the fitted values (refitted as they change)."""
        return any(getattr(f, "uses_fitted", False) for f in self.functions)

    def columns(self) -> list[str]:
        """The data columns the structure reads."""
        return list(dict.fromkeys(c for f in self.functions for c in f.columns()))

    def with_covariate(self, column: str) -> VarComb:
        """The same function on a given column (the fit puts the fitted values there)."""
        return VarComb(
            *(
                f.with_covariate(column) if getattr(f, "uses_fitted", False) else f
                for f in self.functions
            )
        )

    def bind(self, frame: pd.DataFrame) -> _BoundVariance:
        """The structure evaluated on the model's rows (called by the fit)."""
        return _CombBound(parts=[f.bind(frame) for f in self.functions])


@dataclass(frozen=True)
class VarFixed:
    """Residual variance proportional to a known positive covariate (nlme's ``varFixed``).

    Parameters
    ----------
    covariate : str
        A numeric column with positive values; no parameter is estimated.
    """

    covariate: str

    def columns(self) -> list[str]:
        """The data columns the structure reads."""
        return [self.covariate]

    def bind(self, frame: pd.DataFrame) -> _BoundVariance:
        """The structure evaluated on the model's rows (called by the fit)."""
        values = _numeric_column(frame, self.covariate, f"VarFixed('{self.covariate}')")
        if np.any(values <= 0):
            raise DataError(
                f"VarFixed('{self.covariate}'): the covariate must be positive (it is the "
                f"relative variance); {int(np.sum(values <= 0))} row(s) are not."
            )
        return _CovariateBound(
            values=values, log_abs=0.5 * np.log(values), kind="fixed", name=self.covariate
        )


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


VarianceFunction = VarIdent | VarPower | VarExp | VarConstPower | VarFixed | VarComb
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


# --------------------------------------------------------------------------------------
# bound structures: the data-dependent parts, and the whitening maps
# --------------------------------------------------------------------------------------


@dataclass
class _BoundVariance:
    """A variance function evaluated on the model's rows."""

    @property
    def n_params(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def initial(self) -> np.ndarray:
        return np.zeros(self.n_params)

    def lower_bounds(self) -> np.ndarray:
        """Lower bounds of the parameters on the optimizer's scale (none by default)."""
        return np.full(self.n_params, -np.inf)

    def log_sd(self, params: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def coef(self, params: np.ndarray) -> pd.Series:  # pragma: no cover - abstract
        raise NotImplementedError

    def table(self, params: np.ndarray, sigma: float) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError


@dataclass
class _VarIdentBound(_BoundVariance):
    codes: np.ndarray
    labels: list[str]
    by: str

    @property
    def n_params(self) -> int:
        return len(self.labels) - 1

    def log_sd(self, params: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], params])[self.codes]

    def coef(self, params: np.ndarray) -> pd.Series:
        return pd.Series(np.exp(params), index=self.labels[1:], dtype=float)

    def table(self, params: np.ndarray, sigma: float) -> pd.DataFrame:
        relative = np.exp(np.concatenate([[0.0], params]))
        return pd.DataFrame(
            {"level": self.labels, "relative_sd": relative, "variance": (sigma * relative) ** 2}
        )


@dataclass
class _CovariateBound(_BoundVariance):
    values: np.ndarray
    log_abs: np.ndarray
    kind: str  # "power", "expon" or "fixed"
    name: str

    @property
    def n_params(self) -> int:
        return 0 if self.kind == "fixed" else 1

    def log_sd(self, params: np.ndarray) -> np.ndarray:
        return self.log_abs if self.kind == "fixed" else params[0] * self.log_abs

    def coef(self, params: np.ndarray) -> pd.Series:
        if self.kind == "fixed":
            return pd.Series([], dtype=float)
        return pd.Series([float(params[0])], index=[self.kind], dtype=float)

    def table(self, params: np.ndarray, sigma: float) -> pd.DataFrame:
        return _table_by_value(self.values, self.log_sd(params), sigma)


def _table_by_value(values: np.ndarray, log_sd: np.ndarray, sigma: float) -> pd.DataFrame:
    """One row per distinct covariate value: its relative SD and residual variance."""
    levels, first = np.unique(values, return_index=True)
    relative = np.exp(log_sd[first])
    return pd.DataFrame(
        {"level": levels, "relative_sd": relative, "variance": (sigma * relative) ** 2}
    )


@dataclass
class _ConstPowerBound(_BoundVariance):
    """nlme's varConstPower: SD ∝ const + |v|^power, optimized as (log const, power)."""

    values: np.ndarray
    name: str

    @property
    def n_params(self) -> int:
        return 2

    def log_sd(self, params: np.ndarray) -> np.ndarray:
        # np.power keeps 0⁰ = 1 (a covariate of 0 at power 0; exp(0·log 0) would be NaN)
        with np.errstate(divide="ignore"):
            powered = np.power(np.abs(self.values), params[1])
        return np.log(np.exp(params[0]) + powered)

    def lower_bounds(self) -> np.ndarray:
        # where the covariate is 0, a negative power makes the SD infinite (the deviance
        # +inf): the power's feasible range is then [0, ∞), the bound the fit searches in
        power = 0.0 if np.any(self.values == 0) else -np.inf
        return np.array([-np.inf, power])

    def coef(self, params: np.ndarray) -> pd.Series:
        return pd.Series([float(np.exp(params[0])), float(params[1])], index=["const", "power"])

    def table(self, params: np.ndarray, sigma: float) -> pd.DataFrame:
        return _table_by_value(self.values, self.log_sd(params), sigma)


@dataclass
class _CombBound(_BoundVariance):
    """A product of bound variance functions: log SDs add, parameters concatenate."""

    parts: list[_BoundVariance]

    @property
    def n_params(self) -> int:
        return sum(p.n_params for p in self.parts)

    def _split(self, params: np.ndarray) -> list[np.ndarray]:
        bounds = np.cumsum([0] + [p.n_params for p in self.parts])
        return [params[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def initial(self) -> np.ndarray:
        return np.concatenate([p.initial() for p in self.parts])

    def lower_bounds(self) -> np.ndarray:
        return np.concatenate([p.lower_bounds() for p in self.parts])

    def log_sd(self, params: np.ndarray) -> np.ndarray:
        return sum(p.log_sd(q) for p, q in zip(self.parts, self._split(params), strict=True))

    def coef(self, params: np.ndarray) -> pd.Series:
        pieces = []
        for letter, part, q in zip("ABCDEFGH", self.parts, self._split(params), strict=False):
            c = part.coef(q)
            pieces.append(pd.Series(c.to_numpy(), index=[f"{letter}.{i}" for i in c.index]))
        return pd.concat(pieces)

    def table(self, params: np.ndarray, sigma: float) -> pd.DataFrame:
        relative = np.exp(self.log_sd(params))
        return pd.DataFrame(
            {
                "row": np.arange(len(relative)),
                "relative_sd": relative,
                "variance": (sigma * relative) ** 2,
            }
        )


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


@dataclass
class ResidualStructure:
    """A bound variance function and/or correlation structure: ``R = D C D``.

    Attributes
    ----------
    variance, correlation : bound structures or None
    prior_log_sd : ndarray or None
        ``−½ log w`` of prior weights, folded into ``D``.
    group_name : str or None
        The correlation group's column(s).
    n_rows : int
    """

    variance: _BoundVariance | None
    correlation: _BoundCorrelation | None
    prior_log_sd: np.ndarray | None = None
    group_name: str | None = None
    n_rows: int = 0

    @property
    def n_params(self) -> int:
        return (self.variance.n_params if self.variance else 0) + (
            self.correlation.n_params if self.correlation else 0
        )

    def _split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nv = self.variance.n_params if self.variance else 0
        return params[:nv], params[nv:]

    def initial(self) -> np.ndarray:
        parts = [s.initial() for s in (self.variance, self.correlation) if s is not None]
        return np.concatenate(parts) if parts else np.zeros(0)

    def lower_bounds(self) -> np.ndarray:
        """The parameters' lower bounds (the correlations' scale is unconstrained)."""
        variance = self.variance.lower_bounds() if self.variance else np.zeros(0)
        n_correlation = self.correlation.n_params if self.correlation else 0
        return np.concatenate([variance, np.full(n_correlation, -np.inf)])

    def log_sd(self, params: np.ndarray, n: int) -> np.ndarray:
        """log of D's diagonal (relative residual SDs, prior weights included)."""
        out = np.zeros(n)
        if self.variance is not None:
            out = out + self.variance.log_sd(self._split(params)[0])
        if self.prior_log_sd is not None:
            out = out + self.prior_log_sd
        return out

    def whiten(self, params: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, float]:
        """``R^(−1/2) M`` and ``log|R|``."""
        log_sd = self.log_sd(params, M.shape[0])
        out = M * np.exp(-log_sd)[:, None]
        logdet = 2.0 * float(np.sum(log_sd))
        if self.correlation is not None:
            out, logdet_c = self.correlation.whiten(self._split(params)[1], out)
            logdet += logdet_c
        return out, logdet

    def coef(self, params: np.ndarray) -> pd.Series:
        v, c = self._split(params)
        parts = []
        if self.variance is not None:
            parts.append(self.variance.coef(v))
        if self.correlation is not None:
            parts.append(self.correlation.coef(c))
        return pd.concat(parts) if parts else pd.Series([], dtype=float)

    def covariance(self, params: np.ndarray, rows: np.ndarray) -> sp.csr_matrix:
        """``R`` (relative to σ²) restricted to ``rows`` (sparse)."""
        sd = np.exp(self.log_sd(params, self.n_rows))[rows]
        m = len(rows)
        R = sp.diags(sd * sd).tocsr()
        if self.correlation is not None and m > 1:
            _, local = np.unique(self.correlation.groups[rows], return_inverse=True)
            i, j = _same_group_pairs(local)
            correlation = self.correlation.pair_correlation(
                self._split(params)[1], rows[i], rows[j]
            )
            values = correlation * sd[i] * sd[j]
            R = R + sp.csr_matrix((values, (i, j)), shape=(m, m))
        return R


def unidentified_correlation(structure: ResidualStructure | None, terms: Any) -> str | None:
    """Why a residual correlation cannot be told apart from the random effects, or None.

    An exchangeable (CorCompSymm) or general (CorSymm) correlation within the groups of a
    random intercept of the same factor is not identified: the intercept's variance τ²
    adds the same amount to every within-group covariance, which the correlations can
    carry as well (τ² + σ²ρ_ij and τ² + σ² are all the data see), so the likelihood is
    flat along a ridge.  nlme fits it and its ``intervals()`` fail; a profile has no
    interval to find.
    """
    if structure is None or not isinstance(structure.correlation, _CompSymmBound | _SymmBound):
        return None
    for term in terms:
        if term.group == structure.group_name and tuple(term.columns) == ("(Intercept)",):
            kind = "CorCompSymm" if isinstance(structure.correlation, _CompSymmBound) else "CorSymm"
            return (
                f"{kind} within {term.group} beside the random intercept (1 | {term.group}) "
                f"is not identified: the intercept's variance and the common part of the "
                "correlations trade off along a flat ridge of the likelihood"
            )
    return None


# --------------------------------------------------------------------------------------
# methods of fitted models
# --------------------------------------------------------------------------------------


class ResidualMixin:
    """Methods of fitted mixed models about the residual structure.

    Mixed into :class:`mixedmodels.models.linear_mixed.LinearMixedModel`; each method is a
    one-line delegation to the free function of the same name in :mod:`.fitted`, which
    takes the fitted model.  Models fitted with ``variance=`` or ``correlation=`` set
    ``residual_structure`` and ``residual_params``; for the others the residuals are
    independent with variance σ².
    """

    residual_structure: ResidualStructure | None = None
    residual_params: np.ndarray = np.zeros(0)

    def residual_parameters(self) -> pd.Series:
        """The residual structure's parameters as nlme reports them.

        nlme's ``coef(m$modelStruct$varStruct, unconstrained = FALSE)`` and of
        ``corStruct``: SD ratios to the reference level (VarIdent, named by level),
        ``power`` (VarPower), ``expon`` (VarExp), ``Phi`` (CorAR1, CorCAR1), ``Rho``
        (CorCompSymm), ``cor(i,j)`` (CorSymm).  Empty for a model without residual
        structure.

        Returns
        -------
        Series

        Examples
        --------
        >>> import mixedmodels as mm
        >>> data = mm.datasets.gpa(seed=1)
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data)
        >>> len(m.residual_parameters())
        0
        """
        from .fitted import residual_parameters

        return residual_parameters(self)

    def residual_intervals(self, level: float = 0.95) -> pd.DataFrame:
        """Intervals of the residual structure's parameters, as nlme's ``intervals(m)``
        ``$varStruct`` and ``$corStruct``: Wald on the unconstrained scale the fit
        optimizes (nlme's: log SD ratios for VarIdent, the power for VarPower,
        log((1 + φ)/(1 − φ)) for CorAR1, ...), est ± z·SE with z the normal quantile, then
        mapped to the scale of :meth:`residual_parameters`.

        The SEs come from the inverse Hessian of the fit's own criterion (REML or ML, as
        nlme's ``apVar``) over θ and the residual parameters; σ profiled out or not, and
        whatever θ's scale, that block of the inverse Hessian is the same at the optimum.

        Returns
        -------
        DataFrame
            Columns ``lower``, ``est``, ``upper``; rows named as
            :meth:`residual_parameters`.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> data = mm.datasets.gpa(seed=1)
        >>> data["occasion1"] = data["occasion"] + 1
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data, variance=mm.VarPower("occasion1"))
        >>> ci = m.residual_intervals()
        >>> bool(ci.loc["power", "lower"] < ci.loc["power", "est"] < ci.loc["power", "upper"])
        True
        """
        from .fitted import residual_intervals

        return residual_intervals(self, level)

    def residual_variances(self) -> pd.DataFrame:
        """Residual variance per level: ``level``, ``relative_sd``, ``variance``.

        For a variance function (nlme formulation) the relative SD is ``g`` (1 at the
        reference level) and the variance ``(σ g)²``.  For the glmmTMB formulation, a
        structured term on a factor's indicator columns such as
        ``diag(0 + occas | student)`` with one row per level and group, the variance of
        level l is that term's variance plus σ², and the relative SD its square root
        over the first level's.  Otherwise one row with σ².

        Returns
        -------
        DataFrame

        Examples
        --------
        >>> import mixedmodels as mm
        >>> data = mm.datasets.gpa(seed=1)
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data)
        >>> m.residual_variances()["relative_sd"].tolist()
        [1.0]
        """
        from .fitted import residual_variances

        return residual_variances(self)

    def marginal_cov(
        self, groups: Any = None, group_var: str | None = None
    ) -> pd.DataFrame | sp.csr_matrix:
        """Var(y) for the rows of the chosen groups: ``σ²(ZΛΛᵀZᵀ + R)``.

        Parameters
        ----------
        groups : label or list of labels, optional
            Levels of ``group_var`` whose rows to include; all rows when omitted.
        group_var : str, optional
            The grouping factor; the one of the term with the most levels by default.

        Returns
        -------
        DataFrame (rows and columns labelled by the data's row index) for up to 2000
        rows, else a sparse CSR matrix.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> data = mm.datasets.gpa(seed=1)
        >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data)
        >>> m.marginal_cov(groups="1").shape
        (6, 6)
        """
        from .fitted import marginal_cov

        return marginal_cov(self, groups, group_var)
