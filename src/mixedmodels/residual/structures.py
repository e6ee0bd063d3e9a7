"""A residual structure: a variance function (nlme's ``weights=``, :mod:`.variance`) and/or
a correlation structure (``correlation=``, :mod:`.correlation`) bound to a model's rows
(:class:`ResidualStructure`), applied by whitening.

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

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .correlation import _BoundCorrelation, _CompSymmBound, _same_group_pairs, _SymmBound
from .variance import _BoundVariance


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
