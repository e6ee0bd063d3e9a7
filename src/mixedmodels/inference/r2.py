"""Marginal and conditional R² of mixed models (Nakagawa & Schielzeth), as
``performance::r2_nakagawa`` (performance 0.10, insight 0.19).

With σ²_f the variance of the fixed part's linear predictor (``var(Xβ̂)``, n − 1
denominator), σ²_r the random effects' variance averaged over the rows (for a term
with covariance Σ and columns z_i: mean of z_iᵀ Σ z_i, Johnson's extension for random
slopes; the columns are read from the fixed design, as insight does) and σ²_ε the
distribution-specific variance:

    marginal = σ²_f / (σ²_f + σ²_r + σ²_ε),   conditional = (σ²_f + σ²_r) / (…same…)

σ²_ε is σ² for lmer; for binomial fits π²/3 (logit), 1 (probit), π²/6 (cloglog); for
Poisson fits with a log link insight's default, the lognormal approximation
log(1 + 1/μ) with μ = exp(β₀) of the null model (the response on an intercept and the
same random terms, refitted), and 0.25 for a square-root link.  A term with one level per
observation (an observation-level random effect) counts in σ²_ε, as insight's
dispersion variance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from ..frontend.formula import parse_formula


def _random_variance(model: Any) -> tuple[float, float]:
    """σ²_r of the grouping terms and of observation-level terms (insight's dispersion)."""
    X = model.design.X
    names = list(model.design.fixed_names)
    columns = {("(Intercept)" if n == "Intercept" else n): X[:, i] for i, n in enumerate(names)}
    columns.setdefault("(Intercept)", np.ones(model.nobs))
    grouped, observation = 0.0, 0.0
    sigma2 = model.sigma**2
    for term, T in zip(model.crossprods.terms, model.crossprods.factors(model.theta), strict=True):
        Sigma = sigma2 * (T @ T.T)
        keep = [i for i, c in enumerate(term.columns) if c in columns]
        if not keep:
            continue
        Z = np.column_stack([columns[term.columns[i]] for i in keep])
        S = Sigma[np.ix_(keep, keep)]
        value = float(np.einsum("ij,jk,ik->", Z, S, Z)) / model.nobs
        if term.n_levels == model.nobs:
            observation += value
        else:
            grouped += value
    return grouped, observation


def _distribution_variance(model: Any) -> float:
    family = getattr(model, "family", None)
    if family is None:
        return model.sigma**2
    link = family.link.name
    value = family.distribution_variance(lambda: _null_model_mean(model))
    if value is not None:
        return value
    from ..errors import refuse

    raise refuse(
        f"{family.name} ({link} link) glmer fit",
        "r2()",
        "the variances of m.variance_components()",
        "r2() supports lmer, binomial and Poisson glmer fits",
    )


def _null_model_mean(model: Any) -> float:
    """exp(intercept) of the model refitted with an intercept only (insight's null model)."""
    if model.call is None:
        raise DataError("r2() of a Poisson fit refits the null model: fit with mm.glmer.")
    spec = parse_formula(model.call.arguments["formula"])
    terms = [
        f"({t.expr} | {t.group})" if t.structure == "us" else f"{t.structure}({t.expr} | {t.group})"
        for t in spec.random
    ]
    null = model.update(formula=f". ~ 1 + {' + '.join(terms)}")
    return float(np.exp(null.fixef.iloc[0]))


class LinearR2(float):
    """An lm's R²: a number (``fit.r2``, as before) that, called (``fit.r2()``), gives the
    mapping mixed models' ``r2()`` give, so one call works on lm, lmer and glmer."""

    adjusted: float

    def __new__(cls, value: float, adjusted: float) -> LinearR2:
        out = super().__new__(cls, value)
        out.adjusted = float(adjusted)
        return out

    def __reduce__(self) -> tuple:  # pickles as a plain float subclass would not
        return (LinearR2, (float(self), self.adjusted))

    def __call__(self) -> dict[str, float]:
        value = float(self)
        return {"marginal": value, "conditional": value, "adjusted": self.adjusted}


def r2(model: Any) -> dict[str, float]:
    """Marginal and conditional R², as ``performance::r2_nakagawa``.

    Returns
    -------
    dict
        ``{"marginal": …, "conditional": …}``.  For an ``lm`` both are its R² (no random
        effects) and ``"adjusted"`` is the adjusted R².

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> values = m.r2()
    >>> sorted(values)
    ['conditional', 'marginal']
    >>> bool(0 < values["marginal"] < values["conditional"] < 1)
    True
    """
    if not hasattr(model, "crossprods"):
        value = float(model.r2)
        return {"marginal": value, "conditional": value, "adjusted": float(model.adj_r2)}
    eta = model.design.X @ model.fixef.to_numpy()
    fixed = float(np.var(eta, ddof=1))
    grouped, observation = _random_variance(model)
    residual = _distribution_variance(model) + observation
    total = fixed + grouped + residual
    return {"marginal": fixed / total, "conditional": (fixed + grouped) / total}
