"""Tidy tables as broom.mixed (0.2.9) and broom name them: ``tidy``, ``glance``, ``augment``.

Fixed-effect terms keep R's names (``(Intercept)``); random-effect parameters are
``sd__<term>`` and ``cor__<term1>.<term2>`` per group, listed as broom.mixed lists them
(for each group the SD of each term followed by its correlations with the later terms),
then ``sd__Observation`` of the ``Residual`` group when the family has a scale.
Intervals of fixed effects are Wald intervals (normal, or t with ``ddf``, as
broom.mixed on lmerTest fits); ``ran_vals`` intervals use the conditional SDs.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import DataError

Effects = Literal["fixed", "ran_pars", "ran_vals"]
_EFFECTS = ("fixed", "ran_pars", "ran_vals")
#: hat values need the dense [ZΛ X]; beyond this many entries augment() leaves them NaN
_HAT_MAX_ENTRIES = 20_000_000


def _r_name(name: str) -> str:
    return "(Intercept)" if name == "Intercept" else name


def _is_mixed(model: Any) -> bool:
    return hasattr(model, "crossprods")


def _fixed(model: Any, conf_int: bool, conf_level: float, ddf: str | None) -> pd.DataFrame:
    glmm = getattr(model, "family", None) is not None
    if not _is_mixed(model):
        table = model.coefficients()
        df = np.full(len(table), float(model.df_residual))
        out = pd.DataFrame(
            {
                "term": [_r_name(t) for t in table["term"]],
                "estimate": table["estimate"].to_numpy(),
                "std.error": table["se"].to_numpy(),
                "statistic": table["t"].to_numpy(),
                "p.value": table["p_value"].to_numpy(),
            }
        )
    else:
        table = model.fixed_effects() if ddf is None else model.fixed_effects(ddf=ddf)
        stat = "z" if "z" in table.columns else "t"
        out = pd.DataFrame(
            {
                "effect": "fixed",
                "term": [_r_name(t) for t in table["term"]],
                "estimate": table["value"].to_numpy(),
                "std.error": table["se"].to_numpy(),
                "statistic": table[stat].to_numpy(),
            }
        )
        df = np.full(len(table), np.inf)
        if ddf is not None:
            df = table["df"].to_numpy()
            out["df"] = df
            out["p.value"] = table["p_value"].to_numpy()
        elif glmm:
            out["p.value"] = table["p_value"].to_numpy()
    if conf_int:
        q = stats.t.ppf(0.5 + conf_level / 2, df)
        out["conf.low"] = out["estimate"] - q * out["std.error"]
        out["conf.high"] = out["estimate"] + q * out["std.error"]
    return out


def _ran_pars(model: Any) -> pd.DataFrame:
    vc = model.varcorr()
    rows = []
    for group, block in vc.groupby("group", sort=False):
        if group == "Residual":
            rows.append(("Residual", "sd__Observation", float(block["sdcor"].iloc[0])))
            continue
        sds = block[block["var2"].isna()]
        cors = block[block["var2"].notna()]
        for name, sd in zip(sds["var1"], sds["sdcor"], strict=True):
            rows.append((group, f"sd__{name}", float(sd)))
            for _, row in cors[cors["var1"] == name].iterrows():
                rows.append((group, f"cor__{name}.{row['var2']}", float(row["sdcor"])))
    table = pd.DataFrame(rows, columns=["group", "term", "estimate"])
    table.insert(0, "effect", "ran_pars")
    return table


def _ran_vals(model: Any, conf_int: bool, conf_level: float) -> pd.DataFrame:
    re = model.random_effects()
    table = pd.DataFrame(
        {
            "effect": "ran_vals",
            "group": re["group_var"].to_numpy(),
            "level": re["group"].astype(str).to_numpy(),
            "term": [_r_name(t) for t in re["effect"]],
            "estimate": re["value"].to_numpy(),
            "std.error": re["se"].to_numpy(),
        }
    )
    if conf_int:
        q = stats.norm.ppf(0.5 + conf_level / 2)
        table["conf.low"] = table["estimate"] - q * table["std.error"]
        table["conf.high"] = table["estimate"] + q * table["std.error"]
    return table


def tidy(
    model: Any,
    effects: Effects | list[Effects] | tuple[Effects, ...] = ("fixed", "ran_pars"),
    conf_int: bool = False,
    conf_level: float = 0.95,
    ddf: str | None = None,
) -> pd.DataFrame:
    """One row per parameter, as broom.mixed's ``tidy`` (broom's for ``lm``).

    Parameters
    ----------
    model : LinearModel, LinearMixedModel or GeneralizedLinearMixedModel
    effects : {"fixed", "ran_pars", "ran_vals"} or a list of them
        Fixed effects, random-effect SDs and correlations, or conditional modes; the
        default is broom.mixed's ``c("ran_pars", "fixed")`` (fixed rows first).
    conf_int : bool
        Add ``conf.low``/``conf.high`` (fixed effects and ``ran_vals``).
    conf_level : float
    ddf : {"satterthwaite", "kenward-roger"}, optional
        For lmer fits: add ``df`` and ``p.value`` as broom.mixed does for lmerTest fits.

    Returns
    -------
    DataFrame
        ``effect, group, term, estimate, std.error, statistic[, df][, p.value]
        [, conf.low, conf.high]``; ``ran_vals`` rows also have ``level``.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> m.tidy().columns.tolist()
    ['effect', 'group', 'term', 'estimate', 'std.error', 'statistic']
    >>> m.tidy(effects="ran_pars")["term"].tolist()
    ['sd__(Intercept)', 'sd__Observation']
    """
    chosen = [effects] if isinstance(effects, str) else list(effects)
    unknown = [e for e in chosen if e not in _EFFECTS]
    if unknown or not chosen:
        raise DataError(f"effects: expecting any of {set(_EFFECTS)}. Got {effects!r}.")
    if not 0.0 < float(conf_level) < 1.0:
        raise DataError(f"conf_level: expecting a number between 0 and 1. Got {conf_level!r}.")
    if not _is_mixed(model):
        if chosen != ["fixed"] and "fixed" not in chosen:
            raise DataError("An lm has fixed effects only: use effects='fixed'.")
        return _fixed(model, conf_int, conf_level, None)
    parts = []
    if "fixed" in chosen:
        parts.append(_fixed(model, conf_int, conf_level, ddf))
    if "ran_pars" in chosen:
        parts.append(_ran_pars(model))
    if "ran_vals" in chosen:
        parts.append(_ran_vals(model, conf_int, conf_level))
    if len(parts) == 1:
        return parts[0]
    table = pd.concat(parts, ignore_index=True)
    front = ["effect", "group"] + (["level"] if "level" in table.columns else [])
    return table[front + [c for c in table.columns if c not in front]]


def _conditional_deviance(model: Any) -> float:
    return float(np.sum(model.residuals("deviance") ** 2))


def glance(model: Any) -> pd.DataFrame:
    """One row of fit statistics, as broom.mixed's ``glance`` (broom's for ``lm``).

    lmer: ``nobs, sigma, logLik, AIC, BIC, REMLcrit`` (``deviance`` for ML fits),
    ``df.residual``; glmer: ``deviance`` is lme4's, the sum of squared deviance
    residuals at the conditional modes.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> m.glance().columns.tolist()
    ['nobs', 'sigma', 'logLik', 'AIC', 'BIC', 'REMLcrit', 'df.residual']
    """
    if not _is_mixed(model):
        q = len(model.beta) - int("Intercept" in model.design.fixed_names)
        fstat = (model.r2 / q) / ((1 - model.r2) / model.df_residual) if q else np.nan
        rss = float(np.sum(model.residuals() ** 2 * _prior_weights(model)))
        return pd.DataFrame(
            {
                "r.squared": [model.r2],
                "adj.r.squared": [model.adj_r2],
                "sigma": [model.sigma],
                "statistic": [fstat],
                "p.value": [stats.f.sf(fstat, q, model.df_residual) if q else np.nan],
                "df": [q],
                "logLik": [model.loglik],
                "AIC": [model.aic],
                "BIC": [model.bic],
                "deviance": [rss],
                "df.residual": [model.df_residual],
                "nobs": [model.nobs],
            }
        )
    glmm = getattr(model, "family", None) is not None
    row: dict[str, list] = {
        "nobs": [model.nobs],
        "sigma": [model.sigma],
        "logLik": [model.loglik],
        "AIC": [model.aic],
        "BIC": [model.bic],
    }
    if glmm:
        row["deviance"] = [_conditional_deviance(model)]
    elif model.reml:
        row["REMLcrit"] = [model.deviance]
    else:
        row["deviance"] = [model.deviance]
    row["df.residual"] = [model.nobs - model.npar]
    return pd.DataFrame(row)


def _prior_weights(model: Any) -> np.ndarray:
    problem = getattr(model, "problem", None)
    if problem is not None:
        return np.asarray(problem.prior_weights, dtype=float)
    w = model.design.weights
    return np.ones(model.nobs) if w is None else np.asarray(w, dtype=float)


def hat_values(model: Any) -> np.ndarray:
    """Diagonal of the hat matrix, as lme4's ``hatvalues`` for lmer and R's for lm.

    For lmer it is the hat matrix of the penalized least squares problem at θ̂:
    C (CᵀC + diag(I_q, 0))⁻¹ Cᵀ with C = W^½[ZΛ X]; formed densely, so NaN beyond
    2·10⁷ entries of C.
    """
    w = np.sqrt(_prior_weights(model))
    X = model.design.X * w[:, None]
    if not _is_mixed(model):
        Q, _ = np.linalg.qr(X)
        return np.einsum("ij,ij->i", Q, Q)
    terms = model.crossprods.terms
    q = sum(t.n_effects for t in terms)
    n = model.nobs
    if n * (q + X.shape[1]) > _HAT_MAX_ENTRIES:
        return np.full(n, np.nan)
    blocks = []
    for term, T in zip(terms, model.crossprods.factors(model.theta), strict=True):
        ZL = np.zeros((n, term.n_levels, term.n_columns))
        ZL[np.arange(n), term.codes, :] = term.matrix @ T
        blocks.append(ZL.reshape(n, -1) * w[:, None])
    C = np.hstack([*blocks, X])
    A = C.T @ C
    A[np.arange(q), np.arange(q)] += 1.0
    solved = np.linalg.solve(A, C.T)
    return np.einsum("ij,ji->i", C, solved)


def augment(model: Any, data: Any = None) -> pd.DataFrame:
    """The model frame with per-row diagnostics, as broom.mixed's ``augment``.

    lmer and glmer: ``.fitted`` (link scale), ``.resid`` (response residuals for lmer,
    deviance residuals for glmer, as lme4's ``residuals``), ``.hat``, ``.cooksd``
    (lmer; lme4's ``hatvalues`` and ``cooks.distance``), ``.fixed`` (Xβ̂), ``.mu``
    (response scale), ``.offset``, ``.sqrtXwt``, ``.sqrtrwt``, ``.weights`` (prior),
    ``.wtres`` (Pearson residuals) and, for glmer, ``.eta``.  glmer fits get no ``.hat``
    or ``.cooksd`` (lme4 itself warns that the hat matrix may not make sense there).
    ``lm``: broom's ``.fitted, .resid, .hat, .sigma, .cooksd, .std.resid``.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> m.augment().columns.tolist()[-11:]  # doctest: +NORMALIZE_WHITESPACE
    ['.fitted', '.resid', '.hat', '.cooksd', '.fixed', '.mu', '.offset', '.sqrtXwt',
     '.sqrtrwt', '.weights', '.wtres']
    """
    frame = model.design.frame if data is None else data
    if frame is None:
        raise DataError("augment() needs the model frame; pass the data with data=.")
    out = pd.DataFrame(frame).copy().reset_index(drop=True)
    internal = [c for c in out.columns if str(c).startswith("__")]
    if internal:  # glmer's evaluated response: show it under the formula's name
        out = out.drop(columns=internal)
        name = model.design.spec.response
        if model.call is not None:
            name = str(model.call.arguments["formula"]).split("~")[0].strip()
        out.insert(0, name, model.design.y)
    if len(out) != model.nobs:
        raise DataError(
            f"data has {len(out)} rows but the model was fitted to {model.nobs}; pass the "
            "rows used in the fit (after dropping missing values)."
        )
    weights = _prior_weights(model)
    if not _is_mixed(model):
        resid = model.residuals()
        hat = hat_values(model)
        p = len(model.beta)
        std = resid * np.sqrt(weights) / (model.sigma * np.sqrt(1 - hat))
        rss = float(np.sum(weights * resid**2))
        loo = np.sqrt((rss - weights * resid**2 / (1 - hat)) / (model.df_residual - 1))
        out[".fitted"] = model.fitted()
        out[".resid"] = resid
        out[".hat"] = hat
        out[".sigma"] = loo
        out[".cooksd"] = std**2 * hat / (p * (1 - hat))
        out[".std.resid"] = std
        return out
    glmm = getattr(model, "family", None) is not None
    fixed = model.predict(re_form="~0")
    offset = model.design.offset
    offset = np.zeros(model.nobs) if offset is None else offset
    if glmm:
        eta = model.predict(type="link")
        out[".fitted"] = eta
        out[".resid"] = model.residuals("deviance")
        out[".fixed"] = fixed - offset
        out[".mu"] = model.family.link.inverse(eta)
        out[".offset"] = offset
        mu_eta = model.family.link.mu_eta(eta)
        working = weights * mu_eta**2 / model.family.variance(out[".mu"].to_numpy())
        out[".sqrtXwt"] = np.sqrt(working)
        out[".sqrtrwt"] = np.sqrt(weights / model.family.variance(out[".mu"].to_numpy()))
        out[".weights"] = weights
        out[".wtres"] = model.residuals("pearson")
        out[".eta"] = eta
        return out
    fitted = model.fitted()
    resid = model.residuals()
    hat = hat_values(model)
    pearson = resid * np.sqrt(weights)
    p = len(model.design.fixed_names)
    out[".fitted"] = fitted
    out[".resid"] = resid
    out[".hat"] = hat
    out[".cooksd"] = (pearson / (1 - hat)) ** 2 * hat / (model.sigma**2 * p)
    out[".fixed"] = fixed - offset
    out[".mu"] = fitted
    out[".offset"] = offset
    out[".sqrtXwt"] = 1.0
    out[".sqrtrwt"] = np.sqrt(weights)
    out[".weights"] = weights
    out[".wtres"] = pearson
    return out
