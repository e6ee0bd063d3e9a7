"""``lmer``: formula and data in, fitted :class:`LinearMixedModel` out.

The stages are public so that each can be called on its own, as lme4's
``lFormula`` (:func:`~mixedmodels.frontend.lmer_design.lmer_design`) -> ``mkLmerDevfun``
(:func:`~mixedmodels.lmm.devfun.deviance_function`) -> ``optimizeLmer``
(:func:`~mixedmodels.lmm.devfun.optimize_deviance`) -> ``mkMerMod`` (the model).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._warnings import warn
from ..errors import DataError, check_choice
from ..frontend.design_types import NaAction
from ..frontend.lmer_design import lmer_design
from ..frontend.update import FitCall
from ..lmm.devfun import deviance_function, optimize_deviance
from ..lmm.optimize import Control, warn_if_residual_vanishes, warn_if_singular
from ..models.linear_mixed import LinearMixedModel
from ..residual.correlation import CorrelationStructure
from ..residual.variance import VarianceFunction


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
        :mod:`mixedmodels.residual.variance`).
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
    model = _fit_in_memory(formula, data, reml, weights, na_action, control, offset)
    return call.attach(model)


def _fit_in_memory(
    formula: str,
    data: Any,
    reml: bool,
    weights: Any,
    na_action: NaAction,
    control: Control,
    offset: Any,
) -> LinearMixedModel:
    """lmer on data in memory without a residual structure: the design, the profiled
    deviance minimized over θ, the fitted model (lme4's ``lFormula``, ``mkLmerDevfun``,
    ``optimizeLmer`` and ``mkMerMod``)."""
    design = lmer_design(formula, data, weights=weights, offset=offset, na_action=na_action)
    func, cp = deviance_function(design, reml)
    try:
        opt, converged = optimize_deviance(func, cp, reml, control, design.nobs)
    except FloatingPointError:
        raise DataError(
            f"The deviance is not finite at the starting values: the {design.X.shape[1]} "
            f"fixed-effects columns leave (almost) no residual variation in the "
            f"{design.nobs} observations. Simplify the fixed effects."
        ) from None
    model = LinearMixedModel(design, cp, opt, reml, converged)
    warn_if_singular(opt.final, opt.lower)
    warn_if_residual_vanishes(opt.final, opt.lower)
    return model


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

    from ..frontend.columns import as_dataframe
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
        from ..errors import ConvergenceWarning

        warn(
            f"The variance function of the fitted values did not settle in "
            f"{_FITTED_MAX_ITER} updates of the fitted values (as nlme's maxIter).",
            ConvergenceWarning,
        )
    model._variance_spec = variance
    return model
