"""Residual variance functions (nlme's ``weights=``): the diagonal ``D`` of ``R = D C D``.

The user-facing specifications (:class:`VarIdent`, :class:`VarPower`, :class:`VarExp`,
:class:`VarConstPower`, :class:`VarFixed`, :class:`VarComb`) and, bound to a model's rows,
their relative residual SDs ``g_i`` (as ``log g_i``), parameters as nlme reports them and
per-level variance tables.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..frontend.factors import group_codes
from ._columns import numeric_column as _numeric_column


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


VarianceFunction = VarIdent | VarPower | VarExp | VarConstPower | VarFixed | VarComb


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
