"""Estimated marginal means and their contrasts, as R's emmeans (1.8).

The reference grid crosses the levels of every factor of the fixed part with every
numeric covariate at its mean (or the values given in ``at``).  A marginal mean of the
``specs`` factors is the prediction averaged over the other factors' levels with equal
weights (emmeans' default ``weights = "equal"``), so it is one linear function
``l β``: its SE is ``sqrt(l V lᵀ)``, and its degrees of freedom come from the fit's
method: Kenward-Roger (pbkrtest's df with its adjusted covariance, as emmeans'
``lmer.df = "kenward-roger"``), Satterthwaite (lmerTest's) — both from
:mod:`mixedmodels.inference.ddf` — the residual df of an ``lm``, or ∞ (asymptotic) for
glmer fits.  Pairwise contrasts are the differences of those linear functions; Tukey's
p-values use the studentized range with each contrast's own df, as emmeans does.

On the response scale (``type="response"``) of a GLMM the means are back-transformed
(delta-method SE, intervals transformed from the link scale) and named ``prob`` for
binomial fits and ``rate`` for Poisson and negative binomial ones; pairwise contrasts
of a logit link are odds ratios, of a log link ratios, with the tests on the link scale.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import DataError
from ..frontend import _formulaic_compat as fc
from .wald import ddf_method

Ddf = Literal["kenward-roger", "satterthwaite", "asymptotic"]
Scale = Literal["link", "response"]
Adjust = Literal["tukey", "holm", "bonferroni", "none"]

#: emmeans' ``pbkrtest.limit`` and ``lmerTest.limit``: beyond this many observations its
#: default df method falls back (Kenward-Roger → Satterthwaite → asymptotic).
DDF_LIMIT = 3000


def _choice(name: str, value: Any, options: Any) -> None:
    allowed = get_args(options)
    if value not in allowed:
        raise DataError(f"{name}: expecting one of {set(allowed)}. Got {value!r}.")


def _names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    raise DataError(f"{what}: expecting a column name or a list of names. Got {value!r}.")


class _Grid:
    """The reference grid: one row per combination of factor levels and covariate values."""

    def __init__(self, model: Any, at: Mapping[str, Any] | None):
        design = model.design
        frame = design.frame
        if frame is None:
            raise DataError("emmeans needs the model frame, which this fit does not keep.")
        if design.offset is not None:
            raise DataError(
                "emmeans does not handle models with an offset here; refit without it or "
                "predict() on a grid of your own."
            )
        variables = fc.required_variables(design.spec.fixed)
        at = dict(at or {})
        unknown = [k for k in at if k not in variables]
        if unknown:
            raise DataError(
                f"at names {unknown}, which are not variables of the fixed part "
                f"(expecting any of {variables})."
            )
        self.factors: dict[str, list] = {}
        values: dict[str, list] = {}
        for name in variables:
            column = frame[name]
            if isinstance(column.dtype, pd.CategoricalDtype):
                levels = list(column.cat.categories)
                if name in at:
                    chosen = _names(at[name], f"at[{name!r}]")
                    missing = [v for v in chosen if v not in [str(x) for x in levels]]
                    if missing:
                        raise DataError(
                            f"at[{name!r}] names levels {missing} that '{name}' does not have "
                            f"(its levels: {[str(x) for x in levels]})."
                        )
                    levels = [x for x in levels if str(x) in chosen]
                self.factors[name] = levels
                values[name] = levels
            else:
                given = at.get(name)
                if given is None:
                    values[name] = [float(np.mean(column.to_numpy(dtype=float)))]
                else:
                    values[name] = [float(v) for v in np.atleast_1d(given)]
        self.variables = variables
        self.values = values
        rows = list(itertools.product(*(values[v] for v in variables)))
        grid = pd.DataFrame(rows, columns=variables)
        for name in self.factors:
            categories = list(frame[name].cat.categories)
            grid[name] = pd.Categorical(grid[name], categories=categories)
        self.frame = grid
        # the response's column is not needed to encode X, but formulaic may ask for it
        self.X = design.encode_fixed(grid)


def _label(row: Sequence[Any]) -> str:
    return " ".join(str(v) for v in row)


def _df_method(model: Any, ddf: Ddf | None):
    """The df method and the covariance of β̂ it uses (KR: pbkrtest's adjusted one)."""
    if getattr(model, "family", None) is not None:
        if ddf not in (None, "asymptotic"):
            raise DataError(
                f"ddf={ddf!r} applies to linear mixed models; glmer's marginal means are "
                "asymptotic (ddf='asymptotic'), as emmeans'."
            )
        return None, model.vcov.to_numpy()
    if not hasattr(model, "crossprods"):  # lm: the residual df for every linear function
        if ddf not in (None, "asymptotic"):
            raise DataError(f"ddf={ddf!r} applies to mixed models; lm uses its residual df.")
        if ddf == "asymptotic":
            return None, model.vcov.to_numpy()
        return float(model.df_residual), model.vcov.to_numpy()
    if ddf is None:
        if model.nobs > DDF_LIMIT:
            ddf = "asymptotic"
        else:
            ddf = "kenward-roger" if model.reml else "satterthwaite"
    _choice("ddf", ddf, Ddf)
    if ddf == "asymptotic":
        return None, model.vcov.to_numpy()
    method = ddf_method(model, ddf)
    return method, getattr(method, "vcov_adjusted", method.vcov)


def _dfs(method: Any, L: np.ndarray) -> np.ndarray:
    if method is None:
        return np.full(L.shape[0], np.inf)
    if isinstance(method, float):
        return np.full(L.shape[0], method)
    return np.array([method.df(row) for row in L])


def _response_name(model: Any) -> str:
    return model.family.mean_name


def _interval_names(df: np.ndarray) -> tuple[str, str]:
    if np.all(np.isinf(df)):
        return "asymp.LCL", "asymp.UCL"
    return "lower.CL", "upper.CL"


def _adjust_p(
    stat: np.ndarray, df: np.ndarray, adjust: str, family_size: int, n_means: int
) -> np.ndarray:
    p = 2.0 * stats.t.sf(np.abs(stat), df)
    if adjust == "none" or family_size <= 1:
        return p
    if adjust == "bonferroni":
        return np.minimum(1.0, p * family_size)
    if adjust == "holm":
        order = np.argsort(p)
        scaled = np.maximum.accumulate(p[order] * (family_size - np.arange(family_size)))
        out = np.empty_like(p)
        out[order] = np.minimum(1.0, scaled)
        return out
    # Tukey: the studentized range of n_means means, each contrast with its own df
    return stats.studentized_range.sf(np.abs(stat) * np.sqrt(2.0), n_means, df)


def emmeans(
    model: Any,
    specs: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    at: Mapping[str, Any] | None = None,
    ddf: Ddf | None = None,
    type: Scale = "link",
    pairwise: bool = False,
    adjust: Adjust | None = None,
    contrasts: Mapping[str, Sequence[float]] | None = None,
    level: float = 0.95,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Estimated marginal means of ``specs`` (within ``by`` groups), as ``emmeans``.

    Parameters
    ----------
    model : LinearModel, LinearMixedModel or GeneralizedLinearMixedModel
    specs : str or list of str
        The factors whose means to estimate (``emmeans(m, ~ ses)``'s ``ses``).
    by : str or list of str, optional
        Factors to condition on (``~ ses | sex``); means and contrasts per group.
    at : dict, optional
        Covariate values (default: their means) or subsets of factor levels.
    ddf : {"kenward-roger", "satterthwaite", "asymptotic"}, optional
        Degrees of freedom of an lmer fit; by default emmeans' choice: Kenward-Roger for
        REML fits (Satterthwaite for ML fits) up to 3000 observations, else asymptotic.
        glmer fits are asymptotic, lm fits use the residual df.
    type : {"link", "response"}
        The scale of a GLMM's means; ``"response"`` back-transforms (``prob``/``rate``).
    pairwise : bool
        Also return the pairwise contrasts (``emmeans(m, pairwise ~ specs)``).
    adjust : {"tukey", "holm", "bonferroni", "none"}, optional
        Multiplicity adjustment of the contrasts' p-values within each ``by`` group:
        Tukey for pairwise contrasts (emmeans' default), none for custom ones.
    contrasts : dict of name -> weights, optional
        Custom contrasts, weights over the means of one ``by`` group in their order.
    level : float
        Confidence level of the means' intervals (not adjusted, as emmeans).

    Returns
    -------
    DataFrame, or (means, contrasts) with ``pairwise`` or ``contrasts``
        Means: the ``specs`` and ``by`` columns, ``emmean`` (or ``prob``/``rate``),
        ``SE``, ``df``, ``lower.CL``, ``upper.CL`` (``asymp.LCL``/``asymp.UCL`` when
        the df are infinite).  Contrasts: ``contrast``, the ``by`` columns,
        ``estimate`` (``odds.ratio``/``ratio`` on the response scale, with ``null``),
        ``SE``, ``df``, ``t.ratio`` (``z.ratio`` when asymptotic), ``p.value``.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> data = mm.datasets.pupils(seed=1)
    >>> m = mm.lmer("achievement ~ sex + ses + (1 | primary_school_id)", data)
    >>> means, pairs = m.emmeans("sex", pairwise=True, ddf="satterthwaite")
    >>> means.columns.tolist()
    ['sex', 'emmean', 'SE', 'df', 'lower.CL', 'upper.CL']
    >>> pairs["contrast"].tolist()
    ['male - female']
    """
    _choice("type", type, Scale)
    if adjust is not None:
        _choice("adjust", adjust, Adjust)
    if not 0.0 < float(level) < 1.0:
        raise DataError(f"level: expecting a number between 0 and 1. Got {level!r}.")
    specs_ = _names(specs, "specs")
    by_ = _names(by, "by")
    if not specs_:
        raise DataError("specs: name at least one factor of the fixed part.")
    grid = _Grid(model, at)
    for name in specs_ + by_:
        if name not in grid.factors:
            raise DataError(
                f"'{name}' is not a factor of the fixed part; emmeans averages over factors "
                f"(the model's factors: {list(grid.factors)}). Give covariate values with at=."
            )
    glmm = getattr(model, "family", None) is not None
    if type == "response" and not glmm:
        type = "link"  # an identity link: the two scales coincide
    method, vcov = _df_method(model, ddf)
    beta = model.fixef.to_numpy()

    L, labels = _cell_weights(grid, specs_, by_)
    estimate = L @ beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", L, vcov, L))
    df = _dfs(method, L)
    quantile = np.where(np.isinf(df), stats.norm.ppf(0.5 + level / 2), 0.0)
    finite = np.isfinite(df)
    quantile[finite] = stats.t.ppf(0.5 + level / 2, df[finite])
    lower, upper = estimate - quantile * se, estimate + quantile * se
    means = _cell_labels(labels, specs_, by_, grid)
    _add_means(means, model, type, estimate, se, df, lower, upper)
    if not pairwise and contrasts is None:
        return means

    table = _contrasts(
        model, method, vcov, beta, L, labels, specs_, by_, grid, pairwise, contrasts, adjust, type
    )
    return means, table


def _cell_weights(grid: _Grid, specs_: list[str], by_: list[str]) -> tuple[np.ndarray, list]:
    """The rows of L (one per cell of ``by_`` x ``specs_``: the mean of the grid's rows of
    that cell) and each cell's (specs levels, by levels)."""
    keys = grid.frame[specs_ + by_].astype(str).agg("\x1f".join, axis=1).to_numpy()
    cells = list(itertools.product(*(grid.factors[v] for v in by_ + specs_)))
    L_rows, labels = [], []
    for cell in cells:
        by_part, spec_part = cell[: len(by_)], cell[len(by_) :]
        key = "\x1f".join(str(v) for v in (*spec_part, *by_part))
        L_rows.append(grid.X[keys == key].mean(axis=0))
        labels.append((spec_part, by_part))
    return np.array(L_rows), labels


def _cell_labels(labels: list, specs_: list[str], by_: list[str], grid: _Grid) -> pd.DataFrame:
    """The means table's factor columns, one row per cell, as Categoricals in level order."""
    means = pd.DataFrame({name: [lab[0][i] for lab in labels] for i, name in enumerate(specs_)})
    for i, name in enumerate(by_):
        means[name] = [lab[1][i] for lab in labels]
    for name in specs_ + by_:
        means[name] = pd.Categorical(means[name], categories=grid.factors[name])
    return means


def _add_means(
    means: pd.DataFrame,
    model: Any,
    type: str,
    estimate: np.ndarray,
    se: np.ndarray,
    df: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
) -> None:
    """The means, SEs, df and interval columns, back-transformed for ``type="response"``
    (the SE by the delta method, the interval's ends mapped)."""
    low_name, high_name = _interval_names(df)
    value_name = "emmean"
    if type == "response":
        link = model.family.link
        value_name = _response_name(model)
        means[value_name] = link.inverse(estimate)
        means["SE"] = se * np.abs(link.mu_eta(estimate))
        means["df"] = df
        bounds = np.sort(np.vstack([link.inverse(lower), link.inverse(upper)]), axis=0)
        means[low_name], means[high_name] = bounds[0], bounds[1]
    else:
        means[value_name] = estimate
        means["SE"] = se
        means["df"] = df
        means[low_name], means[high_name] = lower, upper


def _contrasts(
    model, method, vcov, beta, L, labels, specs_, by_, grid, pairwise, contrasts, adjust, type
) -> pd.DataFrame:
    n_spec = int(np.prod([len(grid.factors[v]) for v in specs_]))
    n_groups = L.shape[0] // n_spec
    if pairwise:
        adjust = "tukey" if adjust is None else adjust
        pairs = list(itertools.combinations(range(n_spec), 2))
        weights = []
        names = []
        for i, j in pairs:
            w = np.zeros(n_spec)
            w[i], w[j] = 1.0, -1.0
            weights.append(w)
            names.append((i, j))
    else:
        adjust = "none" if adjust is None else adjust
        if adjust == "tukey":
            raise DataError(
                "Tukey's adjustment is for pairwise comparisons; for custom contrasts use "
                "adjust='holm', 'bonferroni' or 'none'."
            )
        weights, names = [], []
        for name, w in contrasts.items():
            w = np.asarray(w, dtype=float)
            if w.shape != (n_spec,):
                raise DataError(
                    f"contrast {name!r} has {w.size} weights; expecting {n_spec}, one per "
                    "mean of a by-group in the order emmeans() returns them."
                )
            weights.append(w)
            names.append(name)
    glmm = getattr(model, "family", None) is not None
    link_name = model.family.link.name if glmm else "identity"
    ratio = type == "response" and link_name in ("logit", "log")
    frames = []
    for g in range(n_groups):
        block = L[g * n_spec : (g + 1) * n_spec]
        C = np.array(weights) @ block
        est = C @ beta
        se = np.sqrt(np.einsum("ij,jk,ik->i", C, vcov, C))
        df = _dfs(method, C)
        stat = est / se
        p = _adjust_p(stat, df, adjust, len(weights), n_spec)
        spec_labels = [_label(labels[g * n_spec + k][0]) for k in range(n_spec)]
        sep = " / " if ratio else " - "
        contrast = [
            f"{spec_labels[n[0]]}{sep}{spec_labels[n[1]]}" if isinstance(n, tuple) else n
            for n in names
        ]
        frame = pd.DataFrame({"contrast": contrast})
        for i, name in enumerate(by_):
            frame[name] = labels[g * n_spec][1][i]
        stat_name = "z.ratio" if np.all(np.isinf(df)) else "t.ratio"
        if ratio:
            value = np.exp(est)
            frame["odds.ratio" if link_name == "logit" else "ratio"] = value
            frame["SE"] = value * se
            frame["df"] = df
            frame["null"] = 1.0
        else:
            frame["estimate"] = est
            frame["SE"] = se
            frame["df"] = df
        frame[stat_name] = stat
        frame["p.value"] = p
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    for name in by_:
        table[name] = pd.Categorical(table[name], categories=grid.factors[name])
    return table
