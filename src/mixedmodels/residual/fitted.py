"""Free functions of a fitted mixed model about its residual structure, behind the
methods of :class:`~.methods.ResidualMixin`: nlme's ``coef`` of the variance and
correlation structures, their ``intervals``, the residual variance per level, and
``getVarCov``-style marginal covariances σ²(ZΛΛᵀZᵀ + R).

Models fitted with ``variance=`` or ``correlation=`` set ``residual_structure`` and
``residual_params``; for the others the residuals are independent with variance σ².
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataError, MixedModelsError

_DENSE_MAX_ROWS = 2000


def residual_parameters(model: Any) -> pd.Series:
    """The residual structure's parameters as nlme reports them.

    See :meth:`mixedmodels.residual.methods.ResidualMixin.residual_parameters`.
    """
    if model.residual_structure is None:
        return pd.Series([], dtype=float)
    return model.residual_structure.coef(model.residual_params)


def residual_intervals(model: Any, level: float = 0.95) -> pd.DataFrame:
    """Intervals of the residual structure's parameters, as nlme's ``intervals(m)``
    ``$varStruct`` and ``$corStruct``: Wald on the unconstrained scale the fit
    optimizes (nlme's: log SD ratios for VarIdent, the power for VarPower,
    log((1 + φ)/(1 − φ)) for CorAR1, ...), est ± z·SE with z the normal quantile, then
    mapped to the scale of :meth:`residual_parameters`.

    See :meth:`mixedmodels.residual.methods.ResidualMixin.residual_intervals`.
    """
    from scipy import stats

    from ..errors import refuse
    from ..lmm.optimize import finite_difference_derivatives

    structure = model.residual_structure
    if structure is None or structure.n_params == 0:
        raise refuse(
            "lmer fit without estimated residual-structure parameters",
            "residual_intervals()",
            "confint() for the variance components and fixed effects",
        )
    if not 0.0 < float(level) < 1.0:
        raise DataError(f"level must be a number strictly between 0 and 1. Got {level!r}.")
    objective = model.objective
    x = objective.start
    _, hessian = finite_difference_derivatives(objective, x, objective.lower)
    nr = structure.n_params
    try:
        covariance = 2.0 * np.linalg.inv(hessian)[-nr:, -nr:]
    except np.linalg.LinAlgError:
        covariance = np.full((nr, nr), np.nan)
    se = np.sqrt(np.diag(covariance)) if np.all(np.diag(covariance) > 0) else np.full(nr, np.nan)
    if not np.all(np.isfinite(se)):
        raise MixedModelsError(
            "residual_intervals(): the approximate covariance of the residual parameters "
            "is not positive definite (nlme's 'Non-positive definite approximate "
            "variance-covariance'): the structure is not identified at this fit. Use "
            "confint(method='boot')."
        )
    z = stats.norm.ppf(0.5 + float(level) / 2.0)
    params = x[-nr:]
    est = structure.coef(params)
    lower = structure.coef(params - z * se).to_numpy()
    upper = structure.coef(params + z * se).to_numpy()
    return pd.DataFrame(
        {"lower": np.minimum(lower, upper), "est": est.to_numpy(),
         "upper": np.maximum(lower, upper)},
        index=est.index,
    )  # fmt: skip


def residual_variances(model: Any) -> pd.DataFrame:
    """Residual variance per level: ``level``, ``relative_sd``, ``variance``.

    See :meth:`mixedmodels.residual.methods.ResidualMixin.residual_variances`.
    """
    sigma = float(model.sigma)
    structure = model.residual_structure
    if structure is not None and structure.variance is not None:
        params = structure._split(model.residual_params)[0]
        return structure.variance.table(params, sigma)
    term_index = residual_like_term(model)
    if term_index is None:
        return pd.DataFrame({"level": ["(all)"], "relative_sd": [1.0], "variance": [sigma**2]})
    term = model.crossprods.terms[term_index]
    T = model.crossprods.factors(model.theta)[term_index]
    variance = sigma**2 * (np.diag(T @ T.T) + 1.0)
    prefix = term.expr.split("+")[-1].strip()
    levels = [c[len(prefix) :] if c.startswith(prefix) else c for c in term.columns]
    return pd.DataFrame(
        {
            "level": levels,
            "relative_sd": np.sqrt(variance / variance[0]),
            "variance": variance,
        }
    )


def residual_like_term(model: Any) -> int | None:
    """A structured term on indicator columns with one row per (group, column)."""
    for index, term in enumerate(model.crossprods.terms):
        if term.structure == "us" or term.n_columns < 2:
            continue
        M = term.matrix
        if not (np.all((M == 0) | (M == 1)) and np.all(M.sum(axis=1) == 1)):
            continue
        cells = term.codes * term.n_columns + np.argmax(M, axis=1)
        if len(np.unique(cells)) == len(cells):
            return index
    return None


def marginal_cov(
    model: Any, groups: Any = None, group_var: str | None = None
) -> pd.DataFrame | sp.csr_matrix:
    """Var(y) for the rows of the chosen groups: ``σ²(ZΛΛᵀZᵀ + R)``.

    See :meth:`mixedmodels.residual.methods.ResidualMixin.marginal_cov`.
    """
    terms = model.crossprods.terms
    n = len(terms[0].codes)
    if groups is None:
        rows = np.arange(n)
    else:
        term = terms[0]
        if group_var is not None:
            matching = [t for t in terms if t.group == group_var]
            if not matching:
                raise ValueError(
                    f"group_var {group_var!r} is not a grouping factor of the model "
                    f"(expecting one of {sorted({t.group for t in terms})})."
                )
            term = matching[0]
        wanted = [str(g) for g in (groups if isinstance(groups, list | tuple) else [groups])]
        lookup = {str(label): i for i, label in enumerate(term.levels)}
        unknown = [g for g in wanted if g not in lookup]
        if unknown:
            raise ValueError(f"Unknown level(s) {unknown} of '{term.group}'.")
        rows = np.flatnonzero(np.isin(term.codes, [lookup[g] for g in wanted]))
    sigma2 = float(model.sigma) ** 2
    m = len(rows)
    V = sp.csr_matrix((m, m))
    for term, T in zip(terms, model.crossprods.factors(model.theta), strict=True):
        k = term.n_columns
        cols = (term.codes[rows, None] * k + np.arange(k)[None, :]).ravel()
        Z = sp.csr_matrix(
            (term.matrix[rows].ravel(), cols, np.arange(0, m * k + 1, k)),
            shape=(m, term.n_levels * k),
        )
        block = sp.kron(sp.identity(term.n_levels, format="csr"), sp.csr_matrix(T @ T.T))
        V = V + Z @ block @ Z.T
    if model.residual_structure is None:
        V = V + sp.identity(m, format="csr")
    else:
        V = V + model.residual_structure.covariance(model.residual_params, rows)
    V = (sigma2 * V).tocsr()
    if m > _DENSE_MAX_ROWS:
        return V
    index = model.design.row_index
    labels = index[rows] if index is not None else rows
    return pd.DataFrame(V.toarray(), index=labels, columns=labels)
