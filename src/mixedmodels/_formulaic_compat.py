"""The only module that talks to formulaic.

formulaic names treatment-coded columns ``sex[T.female]``; R (and our users) write
``sexfemale``.  The renaming lives here, with everything else that depends on
formulaic's behaviour, so a formulaic upgrade touches one file.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError, FormulaError

_LEVEL_RE = re.compile(r"\[(?:T\.)?([^\[\]]*)\]")


def r_name(name: str) -> str:
    """formulaic column name -> R's: ``sex[T.female]`` -> ``sexfemale``, ``x ** 2`` -> ``x^2``."""
    name = _LEVEL_RE.sub(r"\1", name)
    return name.replace(" ** ", "^").replace("**", "^")


@lru_cache(maxsize=256)
def _parsed(rhs: str):
    from formulaic import Formula

    return Formula(rhs)


def required_variables(expr: str) -> list[str]:
    """Data columns an expression reads (functions and modules such as ``np`` excluded)."""
    try:
        variables = _parsed(expr).required_variables
    except Exception as exc:  # any formulaic failure is a syntax problem here
        raise FormulaError(f"Cannot parse '{expr}': {exc}") from None
    return sorted(str(v) for v in variables)


def _materialize(rhs: str, frame: pd.DataFrame):
    from formulaic import model_matrix

    try:
        return model_matrix(rhs, frame, na_action="raise")
    except FormulaError:
        raise
    except Exception as exc:
        raise DataError(f"Could not evaluate '{rhs}' on the data: {exc}") from None


def evaluate_response(response: str, frame: pd.DataFrame) -> np.ndarray:
    """The response as floats (a column, or an expression such as ``log(y)``)."""
    if response in frame.columns:
        column = frame[response]
    else:
        matrix = _materialize(f"{response} ~ 1", frame).lhs
        if matrix.shape[1] != 1:
            raise DataError(
                f"The response '{response}' gives {matrix.shape[1]} columns; expecting one."
            )
        column = matrix.iloc[:, 0]
    if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
        column.dtype
    ):
        raise DataError(
            f"The response '{response}' is not numeric (dtype {column.dtype}). A linear mixed "
            "model needs a numeric response; use glmer() for a binary or categorical one."
        )
    return column.to_numpy(dtype=float)


def fixed_matrix(rhs: str, frame: pd.DataFrame) -> tuple[np.ndarray, list[str], Any]:
    """Fixed-effects matrix with R-style names, and the formulaic spec to encode new data."""
    matrix = _materialize(rhs, frame)
    names = [r_name(str(c)) for c in matrix.columns]
    return np.asarray(matrix, dtype=float), names, matrix.model_spec


def random_matrix(expr: str, frame: pd.DataFrame) -> tuple[np.ndarray, list[str], Any]:
    """A bar term's left-hand side matrix; lme4 names its intercept ``(Intercept)``."""
    values, names, spec = fixed_matrix(expr, frame)
    names = ["(Intercept)" if n == "Intercept" else n for n in names]
    return values, names, spec


def encode(model_spec: Any, frame: pd.DataFrame) -> np.ndarray:
    """Encode new data exactly as the fit did (same levels, same columns)."""
    try:
        return np.asarray(model_spec.get_model_matrix(frame, na_action="ignore"), dtype=float)
    except Exception as exc:
        raise DataError(f"Could not encode the new data as the fit did: {exc}") from None
