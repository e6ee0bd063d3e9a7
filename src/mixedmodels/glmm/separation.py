"""Separation of a binomial response: refused before the fit when a 0/1 column (or the
intercept alone) separates the outcomes, warned after it when a continuous covariate
drives fitted probabilities to 0 or 1.

Both checks read row counts and column moments only, so the in-memory fit takes them
from its design and the fit on Dask data from sums over the partitions
(:class:`SeparationCounts` and :class:`FittedSpread` add over disjoint rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._warnings import warn
from ..errors import ConvergenceWarning, DataError

#: |η| beyond which fitted probabilities are numerically 0 or 1
_FITTED_ETA_LIMIT = 30.0
#: |coefficient × SD| on the logit scale beyond which an estimate is taken as diverging
_SPREAD_LIMIT = 10.0


@dataclass
class SeparationCounts:
    """Counts of the rows with a positive prior weight: all of them, those with a response
    above 0 and below 1, and per column of X whether it is 0/1 and, among its rows equal
    to 1, the same three counts."""

    rows: int
    above_zero: int
    below_one: int
    binary: np.ndarray  # bool per column: every value is 0 or 1
    ones: np.ndarray  # rows with the column equal to 1
    ones_above_zero: np.ndarray
    ones_below_one: np.ndarray

    @classmethod
    def of_rows(cls, y: np.ndarray, X: np.ndarray, weights: np.ndarray) -> SeparationCounts:
        """The counts of one set of rows.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.column_stack([np.ones(4), [0.0, 0.0, 1.0, 1.0]])
        >>> counts = SeparationCounts.of_rows(np.array([0.0, 1, 1, 1]), X, np.ones(4))
        >>> counts.ones.tolist(), counts.ones_below_one.tolist()
        ([4, 2], [1, 0])
        """
        kept = weights > 0
        y, X = y[kept], X[kept]
        above, below = y > 0, y < 1
        ones = X == 1.0
        return cls(
            int(kept.sum()),
            int(above.sum()),
            int(below.sum()),
            np.all((X == 0.0) | ones, axis=0),
            ones.sum(axis=0),
            (ones & above[:, None]).sum(axis=0),
            (ones & below[:, None]).sum(axis=0),
        )

    def __add__(self, other: SeparationCounts) -> SeparationCounts:
        return SeparationCounts(
            self.rows + other.rows,
            self.above_zero + other.above_zero,
            self.below_one + other.below_one,
            self.binary & other.binary,
            self.ones + other.ones,
            self.ones_above_zero + other.ones_above_zero,
            self.ones_below_one + other.ones_below_one,
        )


def check_separation(counts: SeparationCounts, names: list[str]) -> None:
    """Refuse a binomial response that is constant, or that a 0/1 column of X separates
    (its maximum-likelihood coefficient is infinite: lme4 returns a huge number and a
    warning), naming the column.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.column_stack([np.ones(4), [0.0, 0.0, 1.0, 1.0]])
    >>> counts = SeparationCounts.of_rows(np.array([0.0, 1, 1, 1]), X, np.ones(4))
    >>> check_separation(counts, ["Intercept", "treated"])
    Traceback (most recent call last):
    ...
    mixedmodels.errors.DataError: The response is (quasi-)separated: treated (all 2 rows ...
    """
    if counts.above_zero == 0 or counts.below_one == 0:
        outcome = 0 if counts.above_zero == 0 else 1
        raise DataError(
            f"Every response is {outcome}: a binomial model needs both outcomes "
            "(its intercept would be infinite)."
        )
    separated = []
    for j, name in enumerate(names):
        ones = int(counts.ones[j])
        if name == "Intercept" or not counts.binary[j] or ones == 0 or ones == counts.rows:
            continue
        if counts.ones_above_zero[j] == 0 or counts.ones_below_one[j] == 0:
            outcome = 0 if counts.ones_above_zero[j] == 0 else 1
            separated.append(f"{name} (all {ones} rows with it are {outcome})")
    if separated:
        raise DataError(
            "The response is (quasi-)separated: "
            + "; ".join(separated)
            + ". Their coefficients would be infinite. Merge or drop those levels, or use a "
            "penalized (bias-reduced) model."
        )


@dataclass
class FittedSpread:
    """The largest |Xβ| over the rows and the column sums and sums of squares of X (for
    its standard deviations)."""

    max_abs_eta: float
    rows: int
    sums: np.ndarray
    squares: np.ndarray

    @classmethod
    def of_rows(cls, X: np.ndarray, beta: np.ndarray) -> FittedSpread:
        eta = X @ beta
        largest = float(np.max(np.abs(eta))) if eta.size else 0.0
        return cls(largest, X.shape[0], X.sum(axis=0), (X * X).sum(axis=0))

    def __add__(self, other: FittedSpread) -> FittedSpread:
        return FittedSpread(
            max(self.max_abs_eta, other.max_abs_eta),
            self.rows + other.rows,
            self.sums + other.sums,
            self.squares + other.squares,
        )

    def column_sd(self) -> np.ndarray:
        """The columns' standard deviations (divisor n, as ``numpy.std``)."""
        mean = self.sums / max(self.rows, 1)
        return np.sqrt(np.maximum(self.squares / max(self.rows, 1) - mean * mean, 0.0))


def warn_fitted_separation(spread: FittedSpread, beta: np.ndarray, names: list[str]) -> None:
    """Separation by a continuous covariate shows after the fit: fitted probabilities of
    numerically 0 or 1 driven by a coefficient of absurd size on the logit scale.  The
    estimate diverges as glm's does; warn naming the covariates (R's glm warns that
    "fitted probabilities numerically 0 or 1 occurred")."""
    if spread.max_abs_eta < _FITTED_ETA_LIMIT:
        return
    size = np.abs(beta) * spread.column_sd()
    diverging = [
        n for n, s in zip(names, size, strict=True) if n != "Intercept" and s > _SPREAD_LIMIT
    ]
    if diverging:
        warn(
            f"The response is separated by {', '.join(diverging)}: fitted probabilities are "
            "numerically 0 or 1 and those estimates diverge (|coefficient x SD| > 10 on the "
            "logit scale); their standard errors and tests mean nothing. Drop or coarsen "
            "those covariates, or use a penalized model.",
            ConvergenceWarning,
        )
