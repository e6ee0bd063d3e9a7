"""``lm``: ordinary least squares with R's ``summary.lm`` table, the seed's baseline."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .design import NaAction, as_dataframe, build_design
from .errors import DataError
from .formula import parse_formula


class LinearModel:
    """A fitted linear model (:func:`mixedmodels.lm`).

    Examples
    --------
    >>> import mixedmodels as mm
    >>> fit = mm.lm("gpa ~ occasion", mm.datasets.gpa(seed=1))
    >>> fit.coefficients().columns.tolist()
    ['term', 'estimate', 'se', 't', 'p_value']
    """

    def __init__(self, design, beta: np.ndarray, resid: np.ndarray, XtX_inv: np.ndarray):
        self.design = design
        self.beta = beta
        self._resid = resid
        self._XtX_inv = XtX_inv

    @property
    def nobs(self) -> int:
        """Observations with a positive weight: R's lm leaves zero-weight rows out of the
        count, the residual degrees of freedom, σ and the log-likelihood."""
        w = self.design.weights
        return self.design.nobs if w is None else int(np.count_nonzero(w > 0))

    @property
    def npar(self) -> int:
        """Coefficients plus the residual variance."""
        return len(self.beta) + 1

    @property
    def df_residual(self) -> int:
        return self.nobs - len(self.beta)

    @cached_property
    def sigma(self) -> float:
        """Residual standard error."""
        w = self.design.weights
        rss = np.sum(self._resid**2 * (1.0 if w is None else w))
        return float(np.sqrt(rss / self.df_residual))

    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self.beta, index=list(self.design.fixed_names))

    @property
    def vcov(self) -> pd.DataFrame:
        names = list(self.design.fixed_names)
        return pd.DataFrame(self.sigma**2 * self._XtX_inv, index=names, columns=names)

    @cached_property
    def r2(self) -> float:
        """R² (about the mean when the model has an intercept, as R)."""
        y = self.design.y
        w = np.ones_like(y) if self.design.weights is None else self.design.weights
        has_intercept = "Intercept" in self.design.fixed_names
        centre = np.average(y, weights=w) if has_intercept else 0.0
        tss = np.sum(w * (y - centre) ** 2)
        return float(1.0 - np.sum(w * self._resid**2) / tss)

    @property
    def adj_r2(self) -> float:
        has_intercept = "Intercept" in self.design.fixed_names
        return float(1.0 - (1.0 - self.r2) * (self.nobs - int(has_intercept)) / self.df_residual)

    @property
    def loglik(self) -> float:
        n = self.nobs  # zero weights excluded, as R's logLik.lm
        w = self.design.weights
        rss = np.sum(self._resid**2 * (1.0 if w is None else w))
        extra = 0.0 if w is None else 0.5 * np.sum(np.log(w[w > 0]))
        return float(-0.5 * n * (np.log(2 * np.pi * rss / n) + 1.0) + extra)

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.npar

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + np.log(self.nobs) * self.npar

    def coefficients(self) -> pd.DataFrame:
        """Estimate, standard error, t statistic and p-value (t distribution), as ``summary.lm``."""
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        t = self.beta / se
        return pd.DataFrame(
            {
                "term": list(self.design.fixed_names),
                "estimate": self.beta,
                "se": se,
                "t": t,
                "p_value": 2.0 * stats.t.sf(np.abs(t), self.df_residual),
            }
        )

    def fit_statistics(self) -> pd.DataFrame:
        """The seed's second table: observations, residual SE, R² and adjusted R²."""
        return pd.DataFrame(
            {
                "nobs": [self.nobs],
                "sigma": [self.sigma],
                "r2": [self.r2],
                "adj_r2": [self.adj_r2],
            }
        )

    def predict(self, newdata: Any = None) -> np.ndarray:
        if newdata is None:
            return self.design.X @ self.beta
        return self.design.encode_fixed(as_dataframe(newdata)) @ self.beta

    def fitted(self) -> np.ndarray:
        return self.predict()

    def residuals(self) -> np.ndarray:
        return self._resid.copy()

    def summary(self) -> str:
        table = self.coefficients().set_index("term")
        table.columns = ["Estimate", "Std. Error", "t value", "Pr(>|t|)"]
        return "\n".join(
            [
                f"Linear model: {self.design.spec.text}",
                "",
                table.to_string(float_format=lambda v: f"{v:.6g}"),
                "",
                f"Residual standard error: {self.sigma:.4g} on {self.df_residual} "
                "degrees of freedom",
                f"Multiple R-squared: {self.r2:.4f},  Adjusted R-squared: {self.adj_r2:.4f}",
                f"Observations: {self.nobs}",
            ]
        )

    def __repr__(self) -> str:
        return self.summary()


def lm(formula: str, data: Any, weights: Any = None, na_action: NaAction = "omit") -> LinearModel:
    """Fit a linear model by (weighted) least squares.

    Parameters
    ----------
    formula : str
        ``"y ~ x1 + x2"``; random-effects terms are refused (use :func:`lmer`).
    data : DataFrame, polars DataFrame or dict of arrays
    weights : str or array-like, optional
    na_action : {"omit", "fail"}

    Returns
    -------
    LinearModel

    Examples
    --------
    >>> import mixedmodels as mm
    >>> fit = mm.lm("gpa ~ occasion", mm.datasets.gpa(seed=1))
    >>> 0 < fit.r2 < 1
    True
    """
    spec = parse_formula(formula)
    if spec.random:
        raise DataError(
            "lm() fits models without random effects; the formula has "
            f"{len(spec.random)} random-effects term(s). Use mixedmodels.lmer()."
        )
    design = build_design(spec, data, weights=weights, na_action=na_action, require_random=False)
    X, y = design.X, design.y
    if design.weights is not None:
        sw = np.sqrt(design.weights)
        X, y = X * sw[:, None], y * sw
    Q, R = np.linalg.qr(X)
    beta = np.linalg.solve(R, Q.T @ y)
    R_inv = np.linalg.solve(R, np.eye(R.shape[0]))
    resid = design.y - design.X @ beta
    return LinearModel(design, beta, resid, R_inv @ R_inv.T)
