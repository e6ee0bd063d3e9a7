"""What the plots read off a fitted model: effect labels, the family, the response's name
and axis label, the grouping columns, the covariate on the x axis and the typical row other
covariates are held at."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import DataError


def _effect_label(column: str) -> str:
    return "Intercept" if column == "(Intercept)" else column


def _family(model: Any) -> Any:
    """The GLMM's family, None for a linear mixed model."""
    return getattr(model, "family", None)


def _response_name(model: Any) -> str:
    """The response as the formula writes it (glmer's design names it internally)."""
    spec = model.design.spec
    if spec.response in model.design.frame.columns and not spec.response.startswith("__"):
        return spec.response
    return spec.text.split("~", 1)[0].strip()


def _response_label(model: Any) -> str:
    """The y-axis label of fitted values: the response, and for a GLMM its mean's scale."""
    name = _response_name(model)
    family = _family(model)
    if family is None:
        return name
    if family.proportion_response:
        if name.startswith("cbind("):
            return f"proportion {name[6:].split(',', 1)[0].strip()} (response scale)"
        success = getattr(model, "success_level", None)
        return f"P({name} = {success})" if success else f"P({name}) (response scale)"
    return f"mean {name} (response scale)"


def _grouping_columns(model: Any) -> set[str]:
    if not hasattr(model, "crossprods"):  # an lm
        return set()
    return {factor for term in model.crossprods.terms for factor in term.factors}


def _x_column(model: Any, x: str | None) -> str:
    """The covariate on the x axis: ``x`` when given, else a numeric fixed-effect
    covariate that is no grouping factor, a random slope of the plotted term first."""
    frame = model.design.frame
    grouping = _grouping_columns(model)
    if x is not None:
        if x not in frame.columns or x == model.design.spec.response or x in grouping:
            raise DataError(
                f"x: {x!r} is not a covariate of the model. Expecting one of "
                f"{[c for c in frame.columns if c not in grouping and not c.startswith('__')]}."
            )
        if not pd.api.types.is_numeric_dtype(frame[x].dtype) or isinstance(
            frame[x].dtype, pd.CategoricalDtype
        ):
            raise DataError(f"x: {x!r} is not numeric; fitted lines need a numeric x.")
        return x
    from ..frontend._formulaic_compat import required_variables

    fixed_vars = set(required_variables(model.design.spec.fixed))
    terms = model.crossprods.terms if hasattr(model, "crossprods") else []
    slope_vars = [v for term in terms for v in required_variables(term.expr or "1")]

    def numeric(column: str) -> bool:
        if column not in frame.columns or column in grouping:
            return False
        values = frame[column]
        return (
            pd.api.types.is_numeric_dtype(values.dtype)
            and not isinstance(values.dtype, pd.CategoricalDtype)
            and values.nunique() > 2
        )

    candidates = [v for v in slope_vars if v in fixed_vars] + [
        c for c in frame.columns if c in fixed_vars
    ]
    for column in candidates:
        if numeric(column):
            return column
    raise DataError(
        "fitted plots need a numeric fixed-effect covariate for the x axis (grouping "
        "factors do not count); the model has none. Pass x= to choose one."
    )


def _typical_row(frame: pd.DataFrame, skip: set[str]) -> dict[str, Any]:
    """Covariates held fixed: numeric columns at their mean, factors at the reference level."""
    row: dict[str, Any] = {}
    for column in frame.columns:
        if column in skip:
            continue
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            row[column] = pd.Categorical([values.cat.categories[0]], values.cat.categories)[0]
        elif pd.api.types.is_bool_dtype(values.dtype):
            row[column] = False
        elif pd.api.types.is_numeric_dtype(values.dtype):
            row[column] = float(values.mean())
        else:
            row[column] = sorted(values.dropna().astype(str).unique())[0]
    return row
