"""``lm``: ordinary least squares with R's ``summary.lm`` table, the seed's baseline."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..frontend.columns import as_dataframe
from ..frontend.design import build_design
from ..frontend.design_types import NaAction
from ..frontend.formula import parse_formula
from ..frontend.update import FitCall
from ..inference.r2 import LinearR2
from ..inference.wald import contrast_matrix
from ..toolbox.analysis import AnalysisMixin

if TYPE_CHECKING:  # pragma: no cover
    from ..inference.bootstrap import BootstrapResult
    from ..toolbox.lm_plots import LinearModelPlotAccessor


def _check_level(level: float) -> float:
    if not (isinstance(level, float | int) and 0.0 < float(level) < 1.0):
        raise DataError(f"level must be a number strictly between 0 and 1. Got {level!r}.")
    return float(level)


class LinearModel(AnalysisMixin):
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
        """Residual degrees of freedom, n − p (R's ``df.residual``)."""
        return self.nobs - len(self.beta)

    @cached_property
    def sigma(self) -> float:
        """Residual standard error."""
        w = self.design.weights
        rss = np.sum(self._resid**2 * (1.0 if w is None else w))
        return float(np.sqrt(rss / self.df_residual))

    @property
    def fixef(self) -> pd.Series:
        """The coefficients by term name (R's ``coef``; named as lmer's ``fixef``)."""
        return pd.Series(self.beta, index=list(self.design.fixed_names))

    @property
    def vcov(self) -> pd.DataFrame:
        """σ² (XᵀWX)⁻¹, the coefficients' covariance (R's ``vcov.lm``)."""
        names = list(self.design.fixed_names)
        return pd.DataFrame(self.sigma**2 * self._XtX_inv, index=names, columns=names)

    @cached_property
    def r2(self) -> LinearR2:
        """R² (about the mean when the model has an intercept, as R).

        A float; called, ``fit.r2()`` gives ``{"marginal", "conditional", "adjusted"}``
        as mixed models' ``r2()`` (both R² here: there are no random effects).
        """
        y = self.design.y
        w = np.ones_like(y) if self.design.weights is None else self.design.weights
        has_intercept = "Intercept" in self.design.fixed_names
        centre = np.average(y, weights=w) if has_intercept else 0.0
        tss = np.sum(w * (y - centre) ** 2)
        value = float(1.0 - np.sum(w * self._resid**2) / tss)
        adjusted = 1.0 - (1.0 - value) * (self.nobs - int(has_intercept)) / self.df_residual
        return LinearR2(value, adjusted)

    @property
    def adj_r2(self) -> float:
        """Adjusted R², 1 − (1 − R²)(n − 1)/(n − p) with an intercept (``summary.lm``)."""
        return self.r2.adjusted

    @property
    def loglik(self) -> float:
        """The ML log-likelihood, σ̂² = RSS/n, with the weights' term (R's ``logLik.lm``)."""
        n = self.nobs  # zero weights excluded, as R's logLik.lm
        w = self.design.weights
        rss = np.sum(self._resid**2 * (1.0 if w is None else w))
        extra = 0.0 if w is None else 0.5 * np.sum(np.log(w[w > 0]))
        return float(-0.5 * n * (np.log(2 * np.pi * rss / n) + 1.0) + extra)

    @property
    def aic(self) -> float:
        """−2 logLik + 2 (p + 1): σ counts as a parameter, as R's ``AIC``."""
        return -2.0 * self.loglik + 2.0 * self.npar

    @property
    def bic(self) -> float:
        """−2 logLik + log(n) (p + 1), as R's ``BIC``."""
        return -2.0 * self.loglik + np.log(self.nobs) * self.npar

    def coefficients(self) -> pd.DataFrame:
        """Estimate, standard error, t statistic and p-value (t distribution), as ``summary.lm``."""
        from scipy import stats

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
        """Xβ̂ for the fitted rows, or for ``newdata`` (a DataFrame with the formula's
        covariates, factors coded with the fit's levels): R's ``predict.lm``; for intervals
        see :meth:`predict_interval`."""
        if newdata is None:
            return self.design.X @ self.beta
        return self.design.encode_fixed(as_dataframe(newdata)) @ self.beta

    def fitted(self) -> np.ndarray:
        """The fitted values Xβ̂ (R's ``fitted``)."""
        return self.predict()

    def residuals(self) -> np.ndarray:
        """Response residuals y − Xβ̂ (R's ``residuals.lm``, unweighted)."""
        return self._resid.copy()

    # -- the vocabulary of lmer and glmer fits -------------------------------------------
    def fixed_effects(self, level: float = 0.95) -> pd.DataFrame:
        """The coefficients with lmer's columns: ``term, value, se, t, p_value,
        lower_2.5, upper_97.5``; t tests and intervals on the residual df, as
        ``summary.lm`` and ``confint.lm`` (the interval columns are named by ``level``).

        Examples
        --------
        >>> import mixedmodels as mm
        >>> fit = mm.lm("gpa ~ occasion", mm.datasets.gpa(seed=1))
        >>> fit.fixed_effects().columns.tolist()
        ['term', 'value', 'se', 't', 'p_value', 'lower_2.5', 'upper_97.5']
        """
        from scipy import stats

        level = _check_level(level)
        table = self.coefficients()
        q = stats.t.ppf(0.5 + level / 2, self.df_residual)
        alpha = 100 * (1 - level) / 2
        return pd.DataFrame(
            {
                "term": table["term"],
                "value": table["estimate"],
                "se": table["se"],
                "t": table["t"],
                "p_value": table["p_value"],
                f"lower_{alpha:g}": table["estimate"] - q * table["se"],
                f"upper_{100 - alpha:g}": table["estimate"] + q * table["se"],
            }
        )

    def confint(
        self,
        method: str = "wald",
        level: float = 0.95,
        parm: Any = None,
        *,
        type: str = "percentile",
        nsim: int = 500,
        seed: Any = None,
        progress: bool | None = None,
    ) -> pd.DataFrame:
        """Confidence intervals of the coefficients, columns ``lower``, ``upper``.

        ``method="wald"`` (the default) gives R's ``confint.lm``: exact t intervals on the
        residual df.  ``method="boot"`` gives bootstrap intervals (``type`` percentile,
        basic or normal) of σ and the coefficients from :meth:`bootstrap`'s parametric
        replicates (``nsim``, ``seed``).  An lm has no likelihood profile to offer beyond
        its exact t intervals and no θ: ``method="profile"`` and ``parm="theta_"`` are
        refused and say so.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> fit = mm.lm("gpa ~ occasion", mm.datasets.gpa(seed=1))
        >>> fit.confint().index.tolist()
        ['Intercept', 'occasion']
        >>> fit.confint(method="boot", nsim=200, seed=1).index.tolist()
        ['sigma', 'Intercept', 'occasion']
        """
        from ..errors import refuse

        if method == "profile":
            raise refuse(
                "lm fit",
                "confint(method='profile')",
                "method='wald' (confint.lm's t intervals) or method='boot'",
                "its exact t intervals need no profile; profiles are for the variance "
                "parameters of mixed models",
            )
        if isinstance(parm, str) and parm == "theta_":
            raise refuse(
                "lm fit",
                "confint(parm='theta_')",
                "method='boot' (σ's bootstrap interval) or parm=None (the coefficients)",
                "an lm has no random-effect variance parameters θ",
            )
        if method not in ("wald", "boot"):
            raise DataError(f"method: expecting 'wald' or 'boot'. Got {method!r}.")
        if method == "boot":
            level = _check_level(level)
            boot = self.bootstrap(nsim, seed=seed, progress=progress)
            out = boot.confint(level=level, type=type)
        else:
            table = self.fixed_effects(level).set_index("term")
            out = pd.DataFrame({"lower": table.iloc[:, -2], "upper": table.iloc[:, -1]})
            out.index.name = None
        if parm is None:
            return out
        wanted = [parm] if isinstance(parm, str) else list(parm)
        unknown = [p for p in wanted if p not in out.index]
        if unknown:
            raise DataError(
                f"parm names unknown coefficients {unknown}; expecting {list(out.index)}."
            )
        return out.loc[wanted]

    def bootstrap(
        self, nsim: int, seed: Any = None, kind: str = "parametric", progress: bool | None = None
    ) -> BootstrapResult:
        """Bootstrap replicates of σ and the coefficients, in lmer's
        :class:`~mixedmodels.inference.bootstrap.BootstrapResult`.

        ``kind="parametric"`` (as lme4's ``bootMer``) redraws the residuals from the fit;
        ``kind="case"`` resamples rows (``car::Boot``'s default).
        See :func:`mixedmodels.inference.linear.bootstrap`.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> fit = mm.lm("gpa ~ occasion", mm.datasets.gpa(seed=1))
        >>> boot = fit.bootstrap(100, seed=1)
        >>> boot.replicates.shape
        (100, 3)
        """
        from ..inference.linear import bootstrap

        return bootstrap(self, nsim, seed=seed, kind=kind, progress=progress)

    def predict_interval(
        self,
        newdata: Any = None,
        level: float = 0.95,
        nsim: int | None = None,
        which: str = "full",
        include_resid_var: bool | None = None,
        stat: str = "median",
        seed: Any = None,
        type: str = "response",
        progress: bool | None = None,
    ) -> pd.DataFrame:
        """Prediction intervals ``fit, lower, upper``, as R's ``predict.lm(interval =
        "prediction")``: exact t intervals, so nothing is simulated.

        The keywords of the mixed models' simulated :meth:`predict_interval` are accepted
        so code written for lmer runs; ``nsim``, ``seed``, ``stat`` and ``progress`` have
        nothing to do here.  ``include_resid_var=False`` gives the interval of the mean
        (``interval = "confidence"``).  A fitted row's prediction variance is σ²/w with its
        weight w; new rows have weight 1, as R.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> data = mm.datasets.gpa(seed=1)
        >>> fit = mm.lm("gpa ~ occasion", data)
        >>> pi = fit.predict_interval(data.head(3))
        >>> pi.columns.tolist()
        ['fit', 'lower', 'upper']
        """
        from ..errors import refuse
        from ..inference.linear import prediction_interval

        if which == "random" or type != "response":
            raise refuse(
                "lm fit",
                f"predict_interval({'which' if which == 'random' else 'type'}="
                f"{which if which == 'random' else type!r})",
                "which='full' (the fixed part is the whole model)",
                "an lm has no random effects and one scale",
            )
        if which not in ("full", "fixed"):
            raise DataError(f"which: expecting 'full' or 'fixed'. Got {which!r}.")
        interval = "confidence" if include_resid_var is False else "prediction"
        return prediction_interval(self, newdata, level=level, interval=interval)

    @property
    def plot(self) -> LinearModelPlotAccessor:
        """Plots of the fit: ``fitted()`` (data and fitted line with its confidence band)
        and ``residuals()`` (R's ``plot.lm`` residuals vs fitted and normal QQ).

        See :class:`mixedmodels.toolbox.lm_plots.LinearModelPlotAccessor`.
        """
        from ..toolbox.lm_plots import LinearModelPlotAccessor

        return LinearModelPlotAccessor(self)

    @property
    def formula(self) -> str:
        """The model formula as given."""
        return self.design.spec.text

    def _weighted_X(self) -> np.ndarray:
        w = self.design.weights
        return self.design.X if w is None else self.design.X * np.sqrt(w)[:, None]

    def _f_test(self, L: np.ndarray) -> tuple[float, int, float]:
        L = np.atleast_2d(L)
        Lb = L @ self.beta
        F = float(Lb @ np.linalg.solve(L @ self.vcov.to_numpy() @ L.T, Lb)) / L.shape[0]
        return F, L.shape[0], float(self.df_residual)

    def contrast(self, L: Any) -> pd.DataFrame:
        """Test ``L β = 0`` with the residual df, in the columns of lmer's ``contrast``.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> fit = mm.lm("gpa ~ occasion", mm.datasets.gpa(seed=1))
        >>> fit.contrast({"occasion": 1.0}).columns.tolist()
        ['estimate', 'se', 't', 'df', 'p_value']
        """
        from scipy import stats

        L = contrast_matrix(L, list(self.design.fixed_names))
        df = float(self.df_residual)
        if L.shape[0] == 1:
            estimate = float(L[0] @ self.beta)
            se = float(np.sqrt(L[0] @ self.vcov.to_numpy() @ L[0]))
            t = estimate / se
            return pd.DataFrame(
                {
                    "estimate": [estimate],
                    "se": [se],
                    "t": [t],
                    "df": [df],
                    "p_value": [2.0 * stats.t.sf(abs(t), df)],
                }
            )
        F, q, df = self._f_test(L)
        return pd.DataFrame(
            {"F": [F], "num_df": [q], "den_df": [df], "p_value": [stats.f.sf(F, q, df)]}
        )

    def anova(self, type: int = 1) -> pd.DataFrame:
        """F tests per term in the columns of lmer's ``anova``: ``num_df, den_df, F,
        p_value``.  Type 1 (the default, as R's ``anova.lm``) is sequential and equals
        anova.lm's F tests; 2 and 3 are car's ``Anova`` types (type 3 with lmerTest's
        contrast-invariant hypotheses), all on the residual df.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> fit = mm.lm("gpa ~ occasion", mm.datasets.gpa(seed=1))
        >>> fit.anova().index.tolist()
        ['occasion']
        """
        from scipy import stats

        from ..inference.hypotheses import ANOVA_TYPES, model_terms, term_hypotheses, type1, type2

        if type not in ANOVA_TYPES:
            raise DataError(f"type: expecting one of {set(ANOVA_TYPES)}. Got {type!r}.")
        if type in (1, 2) and self.design.weights is not None:
            # the sequential and type II hypotheses are those of the weighted design
            build = type1 if type == 1 else type2
            hypotheses = build(self._weighted_X(), list(self.design.fixed_names), model_terms(self))
        else:
            hypotheses = term_hypotheses(self, type)  # type: ignore[arg-type]
        rows = []
        for term, L in hypotheses.items():
            F, q, df = self._f_test(L)
            rows.append((term, q, df, F, stats.f.sf(F, q, df)))
        table = pd.DataFrame(rows, columns=["term", "num_df", "den_df", "F", "p_value"])
        return table.set_index("term")

    def to_latex(self) -> str:
        """The model equation in equatiomatic's form (:func:`~.toolbox.latex.to_latex`)."""
        from ..toolbox.latex import to_latex

        return to_latex(self)

    def summary(self) -> str:
        """``summary.lm``'s text: the coefficients' table, residual SE, R² and n."""
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
    call = FitCall.capture(lm, locals())
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
    return call.attach(LinearModel(design, beta, resid, R_inv @ R_inv.T))
