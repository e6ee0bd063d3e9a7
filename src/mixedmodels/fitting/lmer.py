"""``lmer``: formula and data in, fitted :class:`LinearMixedModel` out.

The stages are public so that each can be called on its own, as lme4's
``lFormula`` -> ``mkLmerDevfun`` -> ``optimizeLmer`` -> ``mkMerMod``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from .._threads import blas_threads_for
from ..errors import DataError, check_choice
from ..frontend.design import Design, NaAction, build_design, check_lmm_design
from ..frontend.formula import parse_formula
from ..frontend.update import FitCall
from ..lmm.deviance import CrossProducts, deviance
from ..lmm.gradient import deviance_and_gradient, supports_gradient
from ..lmm.optimize import (
    Control,
    OptSummary,
    boundary_mask,
    check_convergence,
    escape_boundary,
    gradient_derivatives,
    minimize,
    minimize_with_gradient,
    warn_if_singular,
)
from ..models.linear_mixed import LinearMixedModel
from ..residual.structures import CorrelationStructure, VarianceFunction


def lmer_design(
    formula: str,
    data: Any,
    *,
    weights: Any = None,
    offset: Any = None,
    na_action: NaAction = "omit",
) -> Design:
    """Parse and build the design of an LMM (lme4's ``lFormula``)."""
    design = build_design(
        parse_formula(formula), data, weights=weights, offset=offset, na_action=na_action
    )
    check_lmm_design(design)
    if any(t.structure != "us" for t in design.terms):
        # glmmTMB-style model: among terms with as many levels, the widest goes first so
        # it forms the block-diagonal first block and the dense tail stays small (lme4
        # formulas keep lme4's order, which its output labels follow)
        ordered = sorted(design.terms, key=lambda t: (-t.n_levels, -t.n_columns))
        design = dataclasses.replace(design, terms=tuple(ordered))
    return design


def deviance_function(
    design: Design, reml: bool = True
) -> tuple[Callable[[np.ndarray], float], CrossProducts]:
    """The profiled deviance as a function of θ (lme4's ``mkLmerDevfun``).

    Returns the function and the cross-products it closes over.
    """
    cp = CrossProducts.build(design.y, design.X, design.terms, design.weights, design.offset)
    if any(t.structure != "us" for t in design.terms):
        # glmmTMB-style terms sharing a grouping factor: the same deviance on merged,
        # block-diagonal terms (see mixedmodels.lmm.structured); the model keeps cp's terms
        from ..lmm.structured import merged_crossprods

        merged = merged_crossprods(cp, design.y, design.X, design.weights, design.offset)
        if merged is not None:
            return (lambda theta: deviance(merged, theta, reml)), cp
    return (lambda theta: deviance(cp, theta, reml)), cp


def lmer(
    formula: str,
    data: Any,
    reml: bool = True,
    weights: Any = None,
    na_action: NaAction = "omit",
    control: dict | Control | None = None,
    offset: Any = None,
    variance: VarianceFunction | None = None,
    correlation: CorrelationStructure | None = None,
) -> LinearMixedModel:
    """Fit a linear mixed model with lme4's formula syntax.

    Parameters
    ----------
    formula : str
        ``"y ~ x + (1 + x | g)"``; see :func:`mixedmodels.frontend.formula.parse_formula`.
    data : pandas DataFrame, polars DataFrame, dict of arrays, dask DataFrame or parquet path
        A dask DataFrame, or a parquet path or glob (read lazily), is fitted on
        dask.distributed with the same results (:mod:`mixedmodels.scale`; needs
        ``mixedmodels[dask]``).
    reml : bool, default True
        REML (default, as lme4) or maximum likelihood.
    weights : str or array-like, optional
        Prior weights (a column name or one value per row), as lme4's ``weights``.
    na_action : {"omit", "fail"}
        Drop and count rows with missing values, or refuse them.
    control : dict or Control, optional
        Optimizer settings, e.g. ``{"optimizer": "nelder_mead"}``.
    offset : str or array-like, optional
        A known term added to the linear predictor.
    variance : VarIdent, VarPower, VarExp or VarFixed, optional
        A residual variance function, as nlme's ``weights=`` (see
        :mod:`mixedmodels.residual.structures`).
    correlation : CorAR1, CorCAR1, CorCompSymm or CorSymm, optional
        A residual correlation structure within groups, as nlme's ``correlation=``.
        With either, the residual parameters are estimated together with θ by whitening.

    Returns
    -------
    LinearMixedModel

    Examples
    --------
    >>> import mixedmodels as mm
    >>> data = mm.datasets.gpa(seed=1)
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data)
    >>> bool(m.sigma > 0)
    True
    """
    reml = bool(check_choice("reml", reml, (True, False)))
    call = FitCall.capture(lmer, locals())
    control = Control.from_any(control)
    if variance is not None or correlation is not None:
        from .residual import fit_with_residual_structure

        fit = (
            _fit_fitted_variance
            if getattr(variance, "uses_fitted", False)
            else fit_with_residual_structure
        )
        return call.attach(
            fit(
                formula,
                data,
                reml=reml,
                weights=weights,
                na_action=na_action,
                control=control,
                offset=offset,
                variance=variance,
                correlation=correlation,
            )
        )
    from ..scale import is_scale_input

    if is_scale_input(data):  # Dask data or parquet: the blocks are formed on the cluster
        from ..scale.lmer import lmer_dask

        return call.attach(
            lmer_dask(
                formula,
                data,
                reml=reml,
                weights=weights,
                na_action=na_action,
                control=control,
                offset=offset,
            )
        )
    design = lmer_design(formula, data, weights=weights, offset=offset, na_action=na_action)
    func, cp = deviance_function(design, reml)
    try:
        opt, converged = optimize_deviance(func, cp, reml, control, design.nobs, stacklevel=4)
    except FloatingPointError:
        raise DataError(
            f"The deviance is not finite at the starting values: the {design.X.shape[1]} "
            f"fixed-effects columns leave (almost) no residual variation in the "
            f"{design.nobs} observations. Simplify the fixed effects."
        ) from None
    model = LinearMixedModel(design, cp, opt, reml, converged)
    warn_if_singular(opt.final, opt.lower, stacklevel=2)
    return call.attach(model)


#: nlme's default ``lmeControl(maxIter = 50, tolerance = 1e-6)``, tighter: the fixed point
#: is reached to 1e-8 so that nlme's own stopping error dominates any comparison
_FITTED_MAX_ITER = 50
_FITTED_TOLERANCE = 1e-8


def _fit_fitted_variance(formula: str, data: Any, *, variance: Any, **options: Any) -> Any:
    """A variance function of the fitted values (nlme's ``form = ~ fitted(.)``).

    nlme alternates: optimize with the covariate held at the current fitted values, then
    recompute the fitted values (innermost level, random effects included) and repeat
    until the parameters stop moving (``lme``'s outer loop; the first covariate is the
    fit without the variance function).  The estimate is the fixed point, which this
    iteration reaches too.
    """
    import pandas as pd

    from ..frontend.design import as_dataframe
    from .residual import fit_with_residual_structure

    frame = as_dataframe(data)
    if not frame.index.is_unique:
        frame = frame.reset_index(drop=True)
    column = ".fitted"
    while column in frame.columns:
        column = "." + column
    concrete = variance.with_covariate(column)
    correlation = options.pop("correlation")
    if correlation is not None:
        model = fit_with_residual_structure(
            formula, frame, variance=None, correlation=correlation, **options
        )
    else:
        model = lmer(formula, frame, variance=None, **options)
    previous = None
    for _ in range(_FITTED_MAX_ITER):
        fitted = pd.Series(np.nan, index=frame.index)
        fitted.loc[model.design.row_index] = model.design.unpad(model.fitted())
        frame = frame.assign(**{column: fitted})
        model = fit_with_residual_structure(
            formula, frame, variance=concrete, correlation=correlation, **options
        )
        current = np.concatenate([model.opt_summary.final, model.fixef.to_numpy()])
        if (
            previous is not None
            and np.max(np.abs(current - previous) / np.maximum(np.abs(previous), 1e-3))
            < _FITTED_TOLERANCE
        ):
            break
        previous = current
    else:
        import warnings

        from ..errors import ConvergenceWarning

        warnings.warn(
            f"The variance function of the fitted values did not settle in "
            f"{_FITTED_MAX_ITER} updates of the fitted values (as nlme's maxIter).",
            ConvergenceWarning,
            stacklevel=3,
        )
    model._variance_spec = variance
    return model


def optimize_deviance(
    func: Callable[[np.ndarray], float],
    cp: CrossProducts,
    reml: bool,
    control: Control,
    nobs: int,
    stacklevel: int = 3,
) -> tuple[OptSummary, bool]:
    """Minimize the profiled deviance over θ (the gradient path where it pays), with the
    restarts off a bound; the optimizer's summary and whether the fit converged."""
    calc = control.calc_derivs if control.calc_derivs is not None else nobs < 10_000
    with blas_threads_for(cp):
        if control.optimizer == "bobyqa" and _gradient_pays(cp):
            opt, derivatives = _fit_with_gradient(cp, reml, control, calc)
        else:
            opt = minimize(func, cp.initial_theta(), cp.lower_bounds(), control)
            opt = escape_boundary(func, opt, control)
            derivatives = None
        converged = (
            check_convergence(func, opt, stacklevel=stacklevel, derivatives=derivatives)
            if calc
            else opt.return_code != "MAXEVAL_REACHED"
        )
    return opt, converged


def _gradient_pays(cp: CrossProducts) -> bool:
    """Whether L-BFGS-B on the exact gradient beats BOBYQA for this model: scalar terms,
    a dense tail and at least three θ.  A gradient costs 2-3 deviances (the tail's
    inverse), so it pays only where BOBYQA needs many evaluations.  Measured side by side
    (2 cores, shared): InstEval (3 θ) 105 BOBYQA evaluations against ~22 gradients, about
    half the time; with two θ BOBYQA needs 30-38 and stays faster (pupils 13 gradients,
    0.081 s against 0.063 s; 500k crossed 28 against 35, 8.5 s against 4.8 s; Chem97)."""
    return supports_gradient(cp) and cp.q2 > 0 and cp.n_theta >= 3


def _fit_with_gradient(
    cp: CrossProducts, reml: bool, control: Control, calc: bool
) -> tuple[Any, tuple[np.ndarray, np.ndarray] | None]:
    """θ̂ by L-BFGS-B on the exact gradient, restarted off a bound as BOBYQA's fits are,
    and the convergence check's derivatives from gradient differences."""

    def func_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return deviance_and_gradient(cp, theta, reml)

    lower = cp.lower_bounds()
    opt = minimize_with_gradient(func_and_gradient, cp.initial_theta(), lower, control)
    opt = _probe_off_bound(func_and_gradient, opt, control)
    derivatives = None
    if calc:
        derivatives = gradient_derivatives(
            lambda theta: func_and_gradient(theta)[1], opt.final, lower
        )
    return opt, derivatives


#: how far off a bound the gradient path looks for a descent direction
_PROBE = 1e-3


def _probe_off_bound(
    func_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
    summary: Any,
    control: Control,
) -> Any:
    """Restarts of a gradient search that ended with a relative SD on its bound.

    The deviance is even in each scalar θ_j, so its gradient vanishes at θ_j = 0 and
    L-BFGS-B can stop there although the deviance falls off the bound (Chem97 ended
    at θ_lea = 0, 0.25 above the optimum at 0.054).  One gradient at θ_j = 1e-3 per such
    coordinate tells: a negative slope (or a lower value) restarts the search there,
    a fraction of the evaluations BOBYQA's restarts took (``optimize.escape_boundary``).
    """
    for _ in range(len(summary.final)):
        on_bound = np.flatnonzero(boundary_mask(summary.final, summary.lower))
        moved = None
        for j in on_bound:
            trial = summary.final.copy()
            trial[j] = summary.lower[j] + _PROBE
            value, grad = func_and_gradient(trial)
            summary.evaluations += 1
            if grad[j] < 0 or value < summary.objective:
                moved = trial
                break
        if moved is None:
            return summary
        restart = minimize_with_gradient(func_and_gradient, moved, summary.lower, control)
        if restart.objective > summary.objective:
            summary.evaluations += restart.evaluations
            return summary
        restart.evaluations += summary.evaluations
        restart.initial = summary.initial
        restart.optimizer = f"{summary.optimizer}, restarted off the bound"
        summary = restart
    return summary
