"""Model frame and design: data -> (y, X, random-effects terms, weights), lme4's
``model.frame`` and ``model.matrix`` for any formula.

:func:`build_design` takes the plain-column path (:mod:`.plain_design`) when the formula
allows it and the general path here otherwise; both hand a :class:`~.design_types.Design`
downstream.

The random-effects terms are kept as (integer codes of the grouping factor, small
n x k model matrix): a dense Z is never formed.  The fixed-effects matrix comes
from formulaic with R-style column names (see :mod:`mixedmodels.frontend._formulaic_compat`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, check_choice
from . import _formulaic_compat as fc
from .checks import _drop_rank_deficient
from .columns import (
    _check_columns,
    _check_finite,
    _check_kinds,
    _check_weights,
    _expression_columns,
    _extra_columns,
    _informative_rows,
    _warn_dropped,
    as_dataframe,
)
from .design_types import _NA_ACTIONS, Design, NaAction, ReTerm
from .factors import _prepare_frame, group_codes
from .formula import ModelSpec, RandomTerm
from .plain_design import _plain_design


def build_design(
    spec: ModelSpec,
    data: Any,
    *,
    weights: Any = None,
    offset: Any = None,
    na_action: NaAction = "omit",
    require_random: bool = True,
    response: np.ndarray | None = None,
) -> Design:
    """Build the model frame and design of a parsed formula.

    Parameters
    ----------
    spec : ModelSpec
        From :func:`mixedmodels.frontend.formula.parse_formula`.
    data : DataFrame, polars DataFrame or dict of arrays
    weights : str, array-like or None
        Prior weights: a column name or one value per row.
    offset : str, array-like or None
        A known term added to the linear predictor.
    na_action : {"omit", "fail"}
        ``"omit"`` drops rows with missing values in any used column and counts them;
        ``"fail"`` raises :class:`DataError` when there are any.
    require_random : bool
        Whether a formula without random-effects terms is an error.
    response : ndarray, optional
        The response already evaluated, one value per row (glmer's binary coding or
        proportions); its missing values drop rows as a column's would.

    Returns
    -------
    Design
    """
    check_choice("na_action", na_action, _NA_ACTIONS)
    frame = as_dataframe(data)
    if require_random and not spec.random:
        raise DataError(
            "The formula has no random-effects term such as (1 | group). "
            "Use mixedmodels.lm() for a model without random effects."
        )
    if not spec.response:
        raise DataError("The formula has no response: write 'y ~ ...'.")

    plain = _plain_design(spec, frame, weights, offset, na_action, response)
    if plain is not None:
        return plain
    return _general_design(spec, frame, weights, offset, na_action, response)


def _general_design(
    spec: ModelSpec,
    frame: pd.DataFrame,
    weights: Any,
    offset: Any,
    na_action: NaAction,
    response: np.ndarray | None,
) -> Design:
    """Any formula: the columns read from the parsed formula, the matrices by formulaic
    unless they are main effects of plain columns (see ``_formulaic_compat``)."""
    response_vars = _expression_columns(spec.response, frame, "the response")
    fixed_vars = _expression_columns(spec.fixed, frame, "the fixed effects")
    offset_vars: list[str] = []
    for expr in spec.offsets:
        offset_vars.extend(_expression_columns(expr, frame, "offset()"))
    random_vars: list[str] = []
    group_vars: list[str] = []
    for term in spec.random:
        random_vars.extend(_expression_columns(term.expr, frame, f"({term.expr} | {term.group})"))
        group_vars.extend(term.factors)
    _check_columns(group_vars, frame)
    extra = _extra_columns(spec, frame, weights, offset)
    needed = list(dict.fromkeys(response_vars + fixed_vars + random_vars + group_vars))
    _check_kinds(frame, needed, set(group_vars))

    used = frame[needed].copy()
    if response is not None:
        used[spec.response] = np.asarray(response, dtype=float)
    for label, array in extra.items():
        used[label if label not in used.columns else f"{label} (argument)"] = array
    missing = used.isna().any(axis=1).to_numpy()
    n_missing = int(missing.sum())
    if n_missing:
        columns_with_na = [str(c) for c in used.columns[used.isna().any(axis=0)]]
        if na_action == "fail":
            raise DataError(
                f"{n_missing} row(s) have missing values (in {', '.join(columns_with_na)}) and "
                "na_action='fail'. Drop them, or pass na_action='omit' to drop them for you."
            )
        _warn_dropped(n_missing, columns_with_na)
        used = used.loc[~missing]
        if used.shape[0] == 0:
            raise DataError("Every row has a missing value in a used column: nothing to fit.")
    _check_finite(used, list(used.columns))
    clean = _prepare_frame(used[needed], set(group_vars))

    if response is not None:
        y = used[spec.response].to_numpy(dtype=float)
    else:
        y = fc.evaluate_response(spec.response, clean)
    if not np.all(np.isfinite(y)):
        raise DataError(
            f"The response '{spec.response}' has non-finite values after transformation "
            "(e.g. log of 0). Check its range."
        )
    X, fixed_names, fixed_model_spec = fc.fixed_matrix(spec.fixed, clean)
    if not np.all(np.isfinite(X)):
        bad = [fixed_names[j] for j in np.flatnonzero(~np.isfinite(X).all(axis=0))]
        raise DataError(
            f"The fixed-effects column(s) {', '.join(bad)} have non-finite values after "
            "transformation (e.g. log of 0). Check the covariates' range."
        )
    terms = []
    for term in spec.random:
        terms.append(_build_term(term, clean))

    row_weights = extra.get("weights")
    if row_weights is not None:
        row_weights = row_weights[~missing] if n_missing else row_weights
        _check_weights(row_weights)
    X, fixed_names, dropped = _drop_rank_deficient(
        X, fixed_names, rows=_informative_rows(row_weights)
    )
    row_offset = extra.get("offset")
    if row_offset is not None and n_missing:
        row_offset = row_offset[~missing]
    return Design(
        spec=spec,
        y=y,
        X=X,
        fixed_names=tuple(fixed_names),
        terms=tuple(terms),
        weights=row_weights,
        offset=row_offset,
        n_dropped_na=n_missing,
        dropped_columns=tuple(dropped),
        fixed_model_spec=fixed_model_spec,
        _frame=clean,
        row_index=clean.index,
        offset_terms=spec.offsets,
        offset_column=offset if isinstance(offset, str) else None,
        offset_is_array=offset is not None and not isinstance(offset, str),
        na_action=na_action,
        n_input_rows=frame.shape[0],
        kept_rows=np.flatnonzero(~missing) if missing.any() else None,
    )


def _build_term(term: RandomTerm, frame: pd.DataFrame) -> ReTerm:
    matrix, columns, model_spec = fc.random_matrix(term.expr, frame)
    if matrix.shape[1] == 0:
        raise DataError(f"The random-effects term ({term.expr} | {term.group}) has no columns.")
    codes, levels = group_codes(frame, term.factors)
    return ReTerm(
        group=term.group,
        codes=codes,
        levels=levels,
        matrix=matrix,
        columns=tuple(columns),
        structure=term.structure,
        expr=term.expr,
        factors=term.factors,
        model_spec=model_spec,
    )
