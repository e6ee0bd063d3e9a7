"""Inference on an ``lm`` fit in R's vocabulary: ``predict.lm`` intervals, ``anova.lm``'s
F test between nested fits and a bootstrap of the coefficients.

An lm's t intervals and F tests are exact, so nothing here approximates them; the
bootstrap is offered because lmer and glmer fits have one (``bootMer``), with the same
result type (:class:`~mixedmodels.inference.bootstrap.BootstrapResult`), so code written
for a mixed model runs on its fixed-effects-only baseline.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._progress import progress_bar
from ..errors import DataError, MixedModelsError
from ..frontend.columns import as_dataframe
from .bootstrap import BootstrapResult

#: an :func:`~mixedmodels.lm` fit (``models.linear.LinearModel``; not imported here: the
#: models sit above inference in the import graph)
LinearModel = Any

BOOTSTRAP_KINDS = ("parametric", "case")


def prediction_interval(
    model: LinearModel,
    newdata: Any = None,
    level: float = 0.95,
    interval: str = "prediction",
) -> pd.DataFrame:
    """``predict.lm(interval = "prediction" | "confidence")``: fit ± t·SE.

    The SE of the mean is ``sqrt(x' V x)`` with V the coefficients' covariance; a
    prediction interval adds σ²/w (a fitted row's own weight w; 1 for new rows, as R).
    """
    if interval not in ("prediction", "confidence"):
        raise DataError(f"interval: expecting 'prediction' or 'confidence'. Got {interval!r}.")
    if not (isinstance(level, float | int) and 0.0 < float(level) < 1.0):
        raise DataError(f"level must be a number strictly between 0 and 1. Got {level!r}.")
    if newdata is None:
        X = model.design.X
        w = model.design.weights
        frame_index = None
    else:
        frame = as_dataframe(newdata)
        X = model.design.encode_fixed(frame)
        w = None
        frame_index = frame.index
    fit = X @ model.beta
    var_mean = np.einsum("ij,jk,ik->i", X, model.vcov.to_numpy(), X)
    if interval == "prediction":
        var_mean = var_mean + model.sigma**2 / (1.0 if w is None else w)
    q = stats.t.ppf(0.5 + float(level) / 2.0, model.df_residual)
    half = q * np.sqrt(var_mean)
    return pd.DataFrame({"fit": fit, "lower": fit - half, "upper": fit + half}, index=frame_index)


def _least_squares(X: np.ndarray, Y: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """Coefficients (p × k) and σ (k) of the columns of Y regressed on X (weights w)."""
    if w is not None:
        sw = np.sqrt(w)
        X, Y = X * sw[:, None], Y * sw[:, None]
    Q, R = np.linalg.qr(X)
    if np.min(np.abs(np.diag(R))) <= 1e-10 * np.max(np.abs(np.diag(R))):
        raise np.linalg.LinAlgError("rank-deficient design")
    B = np.linalg.solve(R, Q.T @ Y)
    resid = Y - X @ B
    n = X.shape[0] if w is None else int(np.count_nonzero(w > 0))
    return B, np.sqrt(np.sum(resid**2, axis=0) / (n - X.shape[1]))


def bootstrap(
    model: LinearModel,
    nsim: int,
    seed: Any = None,
    kind: str = "parametric",
    progress: bool | None = None,
) -> BootstrapResult:
    """Bootstrap replicates of σ and the coefficients of an lm fit.

    ``kind="parametric"`` (the default, as lme4's ``bootMer``) draws y* = Xβ̂ + σ̂ε/√w
    and refits on the same design, all replicates in one least-squares solve;
    ``kind="case"`` resamples rows with replacement (``car::Boot``'s default); a
    replicate whose resampled design is rank deficient fails (a row of NaN, counted).
    """
    if not isinstance(nsim, int | np.integer) or isinstance(nsim, bool) or nsim < 1:
        raise DataError(f"nsim must be a positive integer. Got {nsim!r}.")
    if kind not in BOOTSTRAP_KINDS:
        raise DataError(f"kind: expecting one of {BOOTSTRAP_KINDS}. Got {kind!r}.")
    nsim = int(nsim)
    rng = np.random.default_rng(seed)
    design = model.design
    X, w = design.X, design.weights
    n = X.shape[0]
    names = ["sigma", *design.fixed_names]
    replicates = np.full((nsim, len(names)), np.nan)
    with progress_bar(progress, total=nsim, desc="bootstrap", unit="refit") as bar:
        if kind == "parametric":
            scale = np.full(n, model.sigma)
            if w is not None:  # zero-weight rows take no part in the fit
                scale = np.where(w > 0, model.sigma / np.sqrt(np.where(w > 0, w, 1.0)), 0.0)
            Y = (X @ model.beta)[:, None] + rng.standard_normal((n, nsim)) * scale[:, None]
            B, sigma = _least_squares(X, Y, w)
            replicates[:, 0], replicates[:, 1:] = sigma, B.T
            bar.update(nsim)
        else:
            y = design.y
            for i in range(nsim):
                rows = rng.integers(0, n, size=n)
                try:
                    B, sigma = _least_squares(
                        X[rows], y[rows, None], None if w is None else w[rows]
                    )
                except np.linalg.LinAlgError:
                    pass
                else:
                    replicates[i, 0], replicates[i, 1:] = sigma[0], B[:, 0]
                bar.update(1)
    failed = int(np.isnan(replicates[:, 0]).sum())
    if failed:
        warnings.warn(
            f"{failed} of {nsim} bootstrap refits failed (a resampled design without full "
            "rank); their rows are NaN.",
            UserWarning,
            stacklevel=3,
        )
    return BootstrapResult(
        replicates=pd.DataFrame(replicates, columns=names),
        estimates=pd.Series(np.concatenate([[model.sigma], model.beta]), index=names),
        n_failed=failed,
        seed=seed if isinstance(seed, int) else None,
    )


def anova_lm(models: Sequence[LinearModel], labels: Sequence[str]) -> pd.DataFrame:
    """``anova.lm(m1, m2, ...)``: F tests between nested lm fits, the larger model's
    residual variance in every denominator, beside each fit's ``npar`` and ``logLik``.

    Columns ``npar, AIC, BIC, logLik, Res.Df, RSS, Df, Sum of Sq, F, p`` (``p`` is the F
    test's, as anova.lm's ``Pr(>F)``), models ordered by their number of parameters.
    """
    from .._protocols import MixedModel

    for label, m in zip(labels, models, strict=True):
        if isinstance(m, MixedModel) or not hasattr(m, "df_residual"):
            raise MixedModelsError(
                f"anova of lm fits: {label} is a {type(m).__name__}. Compare lm fits with "
                "each other (anova.lm's F test), or mixed models with each other."
            )
    first = models[0]
    for label, m in zip(labels[1:], models[1:], strict=True):
        if m.nobs != first.nobs or not np.allclose(m.design.y, first.design.y, rtol=1e-12):
            raise DataError(
                f"Models were not all fitted to the same data: {label} differs from "
                f"{labels[0]} in its rows or response. An F test needs the same response "
                "and rows."
            )
    order = sorted(range(len(models)), key=lambda i: models[i].npar)
    fits = [models[i] for i in order]
    names = [labels[i] for i in order]
    for small, large, (a, b) in zip(fits, fits[1:], zip(names, names[1:], strict=False),
                                     strict=False):  # fmt: skip
        if not _column_space_within(small, large):
            raise MixedModelsError(
                f"{a} is not nested in {b}: its columns are not in the span of {b}'s. An F "
                "test needs nested models; compare non-nested models by AIC."
            )
        if small.npar == large.npar:
            raise MixedModelsError(
                f"{a} and {b} have the same number of parameters ({small.npar}): there is "
                "nothing to test."
            )
    rss = np.array([m.sigma**2 * m.df_residual for m in fits])
    res_df = np.array([m.df_residual for m in fits], dtype=float)
    scale = rss[-1] / res_df[-1]  # the largest model's, as anova.lm
    df = np.concatenate([[np.nan], -np.diff(res_df)])
    sum_sq = np.concatenate([[np.nan], -np.diff(rss)])
    F = sum_sq / df / scale
    table = pd.DataFrame(
        {
            "npar": [m.npar for m in fits],
            "AIC": [m.aic for m in fits],
            "BIC": [m.bic for m in fits],
            "logLik": [m.loglik for m in fits],
            "Res.Df": res_df,
            "RSS": rss,
            "Df": df,
            "Sum of Sq": sum_sq,
            "F": F,
            "p": stats.f.sf(F, df, res_df[-1]),
        },
        index=pd.Index(names, name="model"),
    )
    table.attrs["test"] = "F"
    return table


def _column_space_within(small: LinearModel, large: LinearModel) -> bool:
    """Whether the smaller fit's columns lie in the span of the larger's (nested)."""
    Xs, Xl = small.design.X, large.design.X
    coef, *_ = np.linalg.lstsq(Xl, Xs, rcond=None)
    scale = max(1.0, float(np.abs(Xs).max()))
    return bool(np.abs(Xl @ coef - Xs).max() <= 1e-8 * scale)
