"""glmer's response as R reads it, parsed once from the formula's left-hand side.

``cbind(successes, failures)`` (binomial proportions and their trials), R's 0/1 rule for
a factor response, arithmetic on columns, and the per-row ``weights=``/``offset=``
arguments; the in-memory fit (:mod:`mixedmodels.fitting.glmer`) and the Dask fit read
the same functions.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from .columns import _check_columns, evaluate_numeric
from .formula import ModelSpec


def _split_arguments(text: str) -> list[str]:
    depth, start, parts = 0, 0, []
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _binary(values: pd.Series) -> np.ndarray:
    """R's rule for a factor response: the first level is failure, the others success."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = values.dropna().unique()
        if len(present) > 2:
            raise DataError(
                f"The response has {len(present)} levels; a binomial response needs two "
                "levels, 0/1, proportions with weights=, or cbind(successes, failures)."
            )
        values = values.cat.remove_unused_categories()
        codes = values.cat.codes.to_numpy()
        return np.where(codes < 0, np.nan, (codes > 0).astype(float))
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype(float).to_numpy()
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype=float)
    levels = sorted(
        pd.unique(values.dropna()), key=lambda v: (str(v).casefold(), str(v).swapcase())
    )
    if len(levels) > 2 or not levels:
        raise DataError(
            f"The response has {len(levels)} distinct values; a binomial response needs two "
            "levels, 0/1, proportions with weights=, or cbind(successes, failures)."
        )
    return np.where(values.isna(), np.nan, (values != levels[0]).astype(float))


def generalized_response(
    spec: ModelSpec, frame: pd.DataFrame, proportion: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """glmer's response and the binomial trials it implies, if any.

    ``proportion`` is whether the family's response is a proportion (binomial): then
    ``cbind(successes, failures)`` gives the proportions and the trials, and a factor,
    logical or two-valued column is 0/1 by R's rule (the first level is failure).
    Otherwise a numeric column or arithmetic on columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from mixedmodels.frontend.formula import parse_formula
    >>> frame = pd.DataFrame({"s": [1, 3], "f": [3, 1], "g": ["a", "b"]})
    >>> spec = parse_formula("cbind(s, f) ~ 1 + (1 | g)")
    >>> y, trials = generalized_response(spec, frame, proportion=True)
    >>> y.tolist(), trials.tolist()
    ([0.25, 0.75], [4.0, 4.0])
    """
    text = spec.response
    match = re.match(r"^\s*cbind\s*\((.*)\)\s*$", text, re.S)
    if match:
        args = _split_arguments(match.group(1))
        if len(args) != 2:
            raise FormulaError(
                f"cbind() needs two arguments (successes, failures); got {len(args)}."
            )
        if not proportion:
            raise DataError(
                "cbind(successes, failures) is a binomial response; use family='binomial'."
            )
        successes, failures = (evaluate_numeric(a, frame) for a in args)
        if np.any(successes < 0) or np.any(failures < 0):
            raise DataError("cbind(successes, failures) has negative counts.")
        trials = successes + failures
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(trials > 0, successes / trials, 0.0)
        y[np.isnan(successes) | np.isnan(failures)] = np.nan
        return y, trials
    if text in frame.columns:
        column = frame[text]
        if proportion:
            return _binary(column), None
        if not pd.api.types.is_numeric_dtype(column.dtype) or isinstance(
            column.dtype, pd.CategoricalDtype
        ):
            raise DataError(f"The response '{text}' is not numeric (dtype {column.dtype}).")
        return column.to_numpy(dtype=float), None
    return evaluate_numeric(text, frame), None


def row_values(frame: pd.DataFrame, value: Any, label: str) -> np.ndarray:
    """A ``weights=``/``offset=`` argument as one number per row: a column name is checked
    as lmer checks it (DataError with close matches), an array for its length."""
    if isinstance(value, str):
        _check_columns([value], frame)
        return frame[value].to_numpy(dtype=float)
    array = np.asarray(value, dtype=float).ravel()
    if array.shape[0] != frame.shape[0]:
        raise DataError(
            f"{label} has {array.shape[0]} values but the data have {frame.shape[0]} rows."
        )
    return array


def success_level(response: str, frame: pd.DataFrame, proportion: bool) -> str | None:
    """The level a binomial factor response counts as success (R: every level but the first)."""
    if not proportion or response not in frame.columns:
        return None
    column = frame[response]
    if isinstance(column.dtype, pd.CategoricalDtype):
        levels = list(column.cat.categories)
    elif pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return None
    else:
        levels = sorted(
            pd.unique(column.dropna()), key=lambda v: (str(v).casefold(), str(v).swapcase())
        )
    return str(levels[1]) if len(levels) == 2 else None
