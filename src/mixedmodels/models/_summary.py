"""Text and HTML renderings of fitted models, laid out like lme4's ``summary``."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from .._protocols import MixedModel as LinearMixedModel


def _fmt(value: float, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.{digits - 1}e}"


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _random_effects_block(model: LinearMixedModel) -> list[str]:
    rows = []
    vc = model.varcorr()
    corr_by_group: dict[str, list[float]] = {}
    structure_of: dict[str, str] = {}
    for _, row in vc.iterrows():
        if _text(row["var2"]):
            corr_by_group.setdefault(row["group"], []).append(row["sdcor"])
            structure_of[row["group"]] = _text(row.get("structure"))
    last_group = None
    for _, row in vc.iterrows():
        if _text(row["var2"]):
            continue
        group = row["group"] if row["group"] != last_group else ""
        last_group = row["group"]
        rows.append([group, _text(row["var1"]), _fmt(row["vcov"]), _fmt(row["sdcor"])])
    widths = [
        max(len(r[i]) for r in rows + [["Groups", "Name", "Variance", "Std.Dev."]])
        for i in range(4)
    ]
    header = ["Groups", "Name", "Variance", "Std.Dev."]
    lines = [" " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append(" " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for group, corrs in corr_by_group.items():
        # glmmTMB's print: the one correlation of an ar1 or cs term, named by its structure
        named = f" ({structure_of[group]})" if structure_of[group] in ("ar1", "cs") else ""
        lines.append(f" Correlations ({group}): " + " ".join(f"{c:.2f}" for c in corrs) + named)
    return lines


def _effects_blocks(model, statistics: dict[str, str]) -> list[str]:
    """The random-effects table, the counts and the fixed-effects table of lme4's summary;
    ``statistics`` maps fixed_effects() columns to the printed headers after the SE."""
    lines = _random_effects_block(model)
    groups = ", ".join(f"{g}, {n}" for g, n in model.ngroups.items())
    lines += [f"Number of obs: {model.nobs}, groups:  {groups}", "", "Fixed effects:"]
    fe = model.fixed_effects()
    columns = {"Estimate": fe["value"].to_numpy(), "Std. Error": fe["se"].to_numpy()}
    columns.update({header: fe[name].to_numpy() for name, header in statistics.items()})
    table = pd.DataFrame(columns, index=fe["term"].to_numpy())
    lines.append(table.to_string(float_format=lambda v: f"{v:.6g}"))
    return lines


def lmm_summary(model: LinearMixedModel) -> str:
    method = "REML" if model.reml else "maximum likelihood"
    lines = [f"Linear mixed model fit by {method}", f"Formula: {model.formula}"]
    if model.design.n_dropped_na:
        lines.append(f"  ({model.design.n_dropped_na} observations deleted due to missingness)")
    lines.append("")
    if model.reml:
        lines.append(f"REML criterion at convergence: {model.deviance:.1f}")
    else:
        lines.append(
            f"     AIC      BIC   logLik deviance\n {model.aic:8.1f} {model.bic:8.1f} "
            f"{model.loglik:8.1f} {model.deviance:8.1f}"
        )
    lines.append("")
    if hasattr(model, "scaled_residual_quantiles"):  # rows in Dask partitions
        q = model.scaled_residual_quantiles()
    else:
        scaled = model.design.unpad(model.residuals()) / model.sigma
        if model.design.weights is not None:
            scaled = scaled * np.sqrt(model.design.weights)
        q = np.quantile(scaled, [0, 0.25, 0.5, 0.75, 1])
    lines.append("Scaled residuals:")
    lines.append("     Min       1Q   Median       3Q      Max")
    lines.append(" " + " ".join(f"{v:8.4f}" for v in q))
    lines.append("")
    lines.append("Random effects:")
    lines.extend(_effects_blocks(model, {"t": "t value"}))
    if model.design.dropped_columns:
        lines.append(
            f"fixed-effect model matrix is rank deficient so dropping "
            f"{len(model.design.dropped_columns)} columns: "
            f"{', '.join(model.design.dropped_columns)}"
        )
    if model.is_singular:
        lines.append("boundary (singular) fit: see help('isSingular')")
    if not model.converged:
        lines.append("Convergence warnings: " + "; ".join(model.opt_summary.messages))
    return "\n".join(lines)


def _equation_html(model: LinearMixedModel) -> str:
    """The equation as MathML (no MathJax needed), or nothing for a model to_latex lacks."""
    from ..errors import MixedModelsError
    from ..toolbox.mathml import latex_to_mathml

    try:
        return latex_to_mathml(model.to_latex())
    except (MixedModelsError, ValueError):
        return ""


def lmm_html(model: LinearMixedModel) -> str:
    """The notebook view: a headline naming the model kind, fit statistics, both tables."""
    family = getattr(model, "family", None)
    if family is None:
        headline = f"<b>Linear mixed model</b> ({'REML' if model.reml else 'ML'})"
    else:
        method = "Laplace" if model.nagq == 1 else f"adaptive Gauss-Hermite, nAGQ = {model.nagq}"
        headline = (
            f"<b>Generalized linear mixed model</b>: {html.escape(family.r_name)} family, "
            f"{html.escape(family.link.name)} link (ML, {method})"
        )
    parts = [
        f"<div><p>{headline}: <code>{html.escape(model.formula)}</code></p>",
        _equation_html(model),
        f"<p>n = {model.nobs}; logLik = {model.loglik:.3f}; AIC = {model.aic:.2f}; "
        f"BIC = {model.bic:.2f}</p>",
        model.fixed_effects().to_html(index=False, float_format=lambda v: f"{v:.4g}"),
        model.variance_components().to_html(index=False, float_format=lambda v: f"{v:.4g}"),
        "</div>",
    ]
    return "\n".join(parts)


def glmm_summary(model) -> str:
    """lme4's summary layout for a glmer fit."""
    method = (
        "Laplace Approximation"
        if model.nagq == 1
        else f"Adaptive Gauss-Hermite Quadrature (nAGQ = {model.nagq})"
    )
    lines = [
        f"Generalized linear mixed model fit by maximum likelihood ({method})",
        f" Family: {model.family.r_name}  ( {model.family.link.name} )",
        f"Formula: {model.formula}",
    ]
    if model.design.n_dropped_na:
        lines.append(f"  ({model.design.n_dropped_na} observations deleted due to missingness)")
    lines += [
        "",
        "     AIC      BIC   logLik deviance df.resid",
        f" {model.aic:8.1f} {model.bic:8.1f} {model.loglik:8.1f} {model.deviance:8.1f} "
        f"{model.nobs - model.npar:8d}",
        "",
        "Random effects:",
    ]
    # lme4 heads the statistic "t value" when a scale is estimated (Gamma, inverse
    # Gaussian), its p-value still from the normal
    statistic = ("z", "z value") if model.family.scale_free else ("t", "t value")
    lines.extend(_effects_blocks(model, {statistic[0]: statistic[1], "p_value": "Pr(>|z|)"}))
    if model.is_singular:
        lines.append("boundary (singular) fit: see help('isSingular')")
    if not model.converged:
        lines.append("Convergence warnings: " + "; ".join(model.full_opt_summary.messages))
    return "\n".join(lines)
