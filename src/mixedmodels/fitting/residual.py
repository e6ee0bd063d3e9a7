"""Fitting linear mixed models with a residual structure (``lmer(..., variance=,
correlation=)``): the residual parameters are optimized together with θ, and each
evaluation whitens ``[y X Z]`` by ``R^(−1/2)``, rebuilds the cross-products (one O(n)
pass) and adds ``log|R|`` to the profiled deviance (see :mod:`mixedmodels.residual.structures`).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .._warnings import warn
from ..errors import DataError, MissingDataWarning, SingularFitWarning
from ..frontend.columns import as_dataframe
from ..frontend.design_types import Design, ReTerm
from ..frontend.factors import group_codes
from ..frontend.lmer_design import lmer_design
from ..lmm.crossprods import CrossProducts
from ..lmm.deviance import Solution, solve
from ..lmm.optimize import (
    Control,
    check_convergence,
    minimize,
    restart_on_slope,
    warn_if_residual_vanishes,
    warn_if_singular,
)
from ..models.linear_mixed import LinearMixedModel
from ..residual.correlation import CorrelationStructure
from ..residual.structures import ResidualStructure, unidentified_correlation
from ..residual.variance import VarianceFunction
from ..residual.whitened import WhitenedDeviance


class StructuredLinearMixedModel(LinearMixedModel):
    """A linear mixed model with a residual variance function and/or correlation structure.

    ``crossprods`` holds the cross-products of the data as observed (for terms,
    prediction and fitted values); ``whitened_crossprods`` those of ``R^(−1/2)[y X Z]`` at
    the estimates, from which β, σ and the conditional modes are solved.  The optimizer's
    vector is θ followed by the residual parameters on their unconstrained scale.
    """

    def __init__(
        self,
        design: Design,
        crossprods: CrossProducts,
        opt: Any,
        reml: bool,
        converged: bool,
        structure: ResidualStructure,
        whitened_crossprods: CrossProducts,
    ):
        super().__init__(design, crossprods, opt, reml, converged)
        self.residual_structure = structure
        self.residual_params = opt.final[crossprods.n_theta :].copy()
        self.whitened_crossprods = whitened_crossprods

    @cached_property
    def _solution(self) -> Solution:
        return solve(self.whitened_crossprods, self.theta, self.reml)

    @property
    def theta(self) -> np.ndarray:
        return self.opt_summary.final[: self.crossprods.n_theta].copy()

    def _refitted(self, objective: Any, opt: Any) -> StructuredLinearMixedModel:  # type: ignore[override]
        whitened, _ = objective.crossprods_at(opt.final[self.crossprods.n_theta :])
        model = StructuredLinearMixedModel(
            objective.design,
            objective.crossprods,
            opt,
            objective.reml,
            True,
            self.residual_structure,
            whitened,
        )
        model._variance_spec = self._variance_spec
        model._correlation_spec = self._correlation_spec
        return model

    @property
    def npar(self) -> int:
        """β, θ, σ and the residual structure's parameters."""
        return super().npar + self.residual_structure.n_params

    def summary(self) -> str:
        params = self.residual_parameters()
        lines = [super().summary(), "", "Residual structure:"]
        for spec in (self._variance_spec, self._correlation_spec):
            if spec is not None:
                lines.append(f"  {spec!r}")
        lines.extend(f"  {name}: {value:.6g}" for name, value in params.items())
        return "\n".join(lines)

    _variance_spec: Any = None
    _correlation_spec: Any = None


def _needed_columns(
    variance: VarianceFunction | None, correlation: CorrelationStructure | None
) -> list[str]:
    columns: list[str] = []
    for spec in (variance, correlation):
        if spec is not None:
            columns.extend(spec.columns())
    return list(dict.fromkeys(columns))


def _correlation_groups(
    correlation: CorrelationStructure, frame: pd.DataFrame, terms: tuple[ReTerm, ...]
) -> tuple[np.ndarray, str]:
    if correlation.group is None:
        inner = max(terms, key=lambda t: t.n_levels)  # nlme: the innermost grouping
        return inner.codes, inner.group
    factors = tuple(correlation.group.split(":"))
    codes, _ = group_codes(frame, factors)
    return codes, correlation.group


def _check_nesting(groups: np.ndarray, group_name: str, terms: tuple[ReTerm, ...]) -> None:
    """Each correlation group must lie in one level of every term (whitening mixes rows)."""
    n_groups = len(np.unique(groups))
    for term in terms:
        pairs = np.unique(groups.astype(np.int64) * term.n_levels + term.codes)
        if len(pairs) != n_groups:
            raise DataError(
                f"The correlation group '{group_name}' is not nested in the grouping factor "
                f"'{term.group}' of the term ({term.expr} | {term.group}): some group has rows "
                f"in several levels of '{term.group}'. Whitening correlated residuals mixes "
                "the rows of a group, so each group must lie within one level of every "
                "random-effects term; correlated residuals with crossed random effects are "
                "not supported. Use a group nested in every term, or a variance function "
                "(VarIdent, VarPower, VarExp, VarFixed), which works with any terms."
            )


def bind_residual_structure(
    design: Design,
    rows: pd.DataFrame,
    variance: VarianceFunction | None,
    correlation: CorrelationStructure | None,
) -> ResidualStructure:
    """Evaluate the structures on the model's rows (checks included)."""
    bound_variance = variance.bind(rows) if variance is not None else None
    bound_correlation = None
    group_name = None
    if correlation is not None:
        groups, group_name = _correlation_groups(correlation, rows, design.terms)
        _check_nesting(groups, group_name, design.terms)
        bound_correlation = correlation.bind(rows, groups, group_name)
    prior = None
    if design.weights is not None:
        if np.any(design.weights <= 0):
            raise DataError(
                "Prior weights must be positive with a residual structure (a zero weight "
                "gives an infinite residual variance). Drop those rows instead."
            )
        prior = -0.5 * np.log(design.weights)
    return ResidualStructure(
        variance=bound_variance,
        correlation=bound_correlation,
        prior_log_sd=prior,
        group_name=group_name,
        n_rows=design.nobs,
    )


def fit_with_residual_structure(
    formula: str,
    data: Any,
    *,
    reml: bool,
    weights: Any,
    na_action: Any,
    control: Control,
    offset: Any,
    variance: VarianceFunction | None,
    correlation: CorrelationStructure | None,
) -> StructuredLinearMixedModel:
    """``lmer`` with ``variance=`` and/or ``correlation=`` (called by :func:`~mixedmodels.lmer`)."""

    for spec, kind, allowed in (
        (variance, "variance", "VarIdent, VarPower, VarExp or VarFixed"),
        (correlation, "correlation", "CorAR1, CorCAR1, CorCompSymm or CorSymm"),
    ):
        if spec is not None and not hasattr(spec, "bind"):
            raise TypeError(f"{kind}= expects mm.{allowed}. Got {type(spec).__name__}.")
    frame = as_dataframe(data)
    if not frame.index.is_unique:
        frame = frame.reset_index(drop=True)
    needed = _needed_columns(variance, correlation)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"The residual structure uses column(s) {missing} that are not in the data "
            f"(which has {', '.join(map(str, list(frame.columns)[:30]))})."
        )
    if needed:
        bad = frame[needed].isna().any(axis=1).to_numpy()
        if bad.any():
            if na_action == "fail":
                raise DataError(
                    f"{int(bad.sum())} row(s) have missing values in {needed} and na_action='fail'."
                )
            warn(
                f"Dropped {int(bad.sum())} row(s) with missing values in {', '.join(needed)}.",
                MissingDataWarning,
            )
            frame = frame.loc[~bad]
    design = lmer_design(formula, frame, weights=weights, offset=offset, na_action=na_action)
    rows = frame.loc[design.row_index, needed] if needed else frame.loc[design.row_index]
    structure = bind_residual_structure(design, rows, variance, correlation)

    plain = CrossProducts.build(design.y, design.X, design.terms, design.weights, design.offset)
    func = WhitenedDeviance(design, structure, reml, plain.n_theta)
    x0 = np.concatenate([plain.initial_theta(), structure.initial()])
    lower = np.concatenate([plain.lower_bounds(), structure.lower_bounds()])
    calc = control.wants_derivatives("lmer", design.nobs)
    opt = minimize(func, x0, lower, control)
    # with the derivatives' budget (the slope check costs 2 evaluations a parameter); not
    # on the flat ridge of an unidentified correlation, where every point is an optimum
    if calc and unidentified_correlation(structure, design.terms) is None:
        opt = restart_on_slope(func, opt, control)
    converged = check_convergence(func, opt) if calc else opt.return_code != "MAXEVAL_REACHED"
    whitened, _ = func.crossprods(opt.final[plain.n_theta :])
    model = StructuredLinearMixedModel(design, plain, opt, reml, converged, structure, whitened)
    model._variance_spec = variance
    model._correlation_spec = correlation
    n_theta = plain.n_theta
    warn_if_singular(model.theta, opt.lower[:n_theta])
    warn_if_residual_vanishes(opt.final[:n_theta], opt.lower[:n_theta])
    _warn_if_residual_on_bound(model, opt.final[n_theta:], opt.lower[n_theta:])
    return model


def _warn_if_residual_on_bound(
    model: StructuredLinearMixedModel, params: np.ndarray, lower: np.ndarray
) -> None:
    """A residual parameter on its bound (VarConstPower's power at 0 when the covariate
    has zeros): the variance function is then constant in the covariate, and the fit is the
    model without it."""
    on_bound = np.isfinite(lower) & (params <= lower + 1e-6)
    if not on_bound.any():
        return
    names = list(model.residual_parameters().index)
    held = ", ".join(f"{names[i]} = {lower[i]:g}" for i in np.flatnonzero(on_bound))
    warn(
        f"boundary fit of the residual structure: {held} (the covariate has zeros, where a "
        "negative power gives an infinite variance). The variance function is then constant "
        "and its const not identified: the model without it fits as well.",
        SingularFitWarning,
    )
