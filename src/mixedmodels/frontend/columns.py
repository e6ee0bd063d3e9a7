"""The data table and its columns as a formula reads them: tables of any kind to pandas,
unknown columns named with suggestions, the kinds and values a model frame refuses, numeric
expressions, prior weights and the offset, and the warning for rows dropped as missing."""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np
import pandas as pd

from .._warnings import warn
from ..errors import DataError, MissingDataWarning
from . import _formulaic_compat as fc
from .formula import ModelSpec


def _from_polars(data: Any) -> pd.DataFrame:
    """Column by column (polars' own to_pandas() needs pyarrow), keeping the level order
    of Enum and Categorical columns as pandas Categoricals."""
    if hasattr(data, "collect") and not hasattr(data, "to_numpy"):  # a LazyFrame
        data = data.collect()
    columns = {}
    for name in data.columns:
        series = data[name]
        kind = str(series.dtype)
        if kind.startswith(("Enum", "Categorical")):
            if kind.startswith("Enum"):
                categories = list(series.dtype.categories)
            else:
                categories = list(series.cat.get_categories())
            columns[name] = pd.Categorical(series.cast(str).to_list(), categories=categories)
        else:
            columns[name] = series.to_numpy()
    return pd.DataFrame(columns)


def as_dataframe(data: Any) -> pd.DataFrame:
    """Accept a pandas DataFrame, a polars DataFrame or LazyFrame, an Arrow table or a
    mapping of arrays (factor level order is kept from Categorical, Enum and dictionary
    columns)."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif type(data).__module__.startswith("polars"):
        frame = _from_polars(data)
    elif hasattr(data, "to_pandas") and callable(data.to_pandas):
        frame = data.to_pandas()
    elif isinstance(data, dict):
        try:
            frame = pd.DataFrame(data)
        except (TypeError, ValueError) as exc:
            raise DataError(f"Could not build a table from the dict of arrays: {exc}") from None
    else:
        raise DataError(
            "data must be a pandas DataFrame, a polars DataFrame or a dict of arrays. "
            f"Got {type(data).__name__}."
        )
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"data must be a table. Got {type(frame).__name__}.")
    # is_unique is cached on the Index; a boolean mask of pandas 3's Arrow-backed column
    # names would cost a pyarrow filter (~50 µs) on every fit
    if not frame.columns.is_unique:
        duplicated = frame.columns[frame.columns.duplicated()]
        names = ", ".join(map(str, dict.fromkeys(duplicated)))
        raise DataError(
            f"The data have duplicated column names ({names})"
            ": a formula could not tell them apart. Rename or drop the copies."
        )
    if frame.shape[0] == 0:
        raise DataError("The data have no rows: pass a table with observations.")
    return frame


def _unknown_column_error(
    missing: list[str], columns: list[str], where: str = "the formula"
) -> DataError:
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, columns, n=3, cutoff=0.6)
        hints.append(
            f"'{name}'" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else "")
        )
    return DataError(
        f"Unknown column{'s' if len(missing) > 1 else ''} {', '.join(hints)} in {where}. "
        f"The data have: {', '.join(columns[:30])}{' ...' if len(columns) > 30 else ''}."
    )


def _check_columns(needed: list[str], frame: pd.DataFrame) -> None:
    columns = [str(c) for c in frame.columns]
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise _unknown_column_error(missing, columns)


def _check_finite(frame: pd.DataFrame, columns: list[str]) -> None:
    for name in columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
            column.dtype
        ):
            values = column.to_numpy(dtype=float)
            bad = np.isinf(values)
            if bad.any():
                raise DataError(
                    f"Column '{name}' has {int(bad.sum())} infinite value(s) (first at row "
                    f"{frame.index[np.argmax(bad)]!r}). Remove or replace them before fitting."
                )


def _expression_columns(expr: str, frame: pd.DataFrame, where: str) -> list[str]:
    """The columns an expression reads, refusing names that are neither columns nor
    functions (the check derives from the parsed formula, stateful transforms included)."""
    found, unknown = fc.formula_variables(expr, frame.columns)
    if unknown:
        raise _unknown_column_error(unknown, [str(c) for c in frame.columns], where)
    return sorted(found)  # the model frame's column order, as before: sorted per piece


def evaluate_numeric(expr: str, frame: pd.DataFrame) -> np.ndarray:
    """One number per row of a column or an expression such as ``log(exposure)``."""
    _expression_columns(expr, frame, f"'{expr}'")
    return fc.evaluate_numeric(expr, frame)


def _numeric_column(column: pd.Series, label: str) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce")
    if values.isna().sum() > column.isna().sum():
        raise DataError(f"{label} must be numeric. Got dtype {column.dtype}.")
    return values.to_numpy(dtype=float)


def _check_kinds(frame: pd.DataFrame, columns: list[str], group_columns: set[str]) -> None:
    """Refuse what R's model frame would not read as a number or a factor."""
    for name in columns:
        dtype = frame[name].dtype
        if name in group_columns:
            continue
        if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
            raise DataError(
                f"Column '{name}' holds {'durations' if 'timedelta' in str(dtype) else 'dates'} "
                f"(dtype {dtype}), which a model cannot use as they are. Convert it to a number "
                f"(e.g. days since the first: (data['{name}'] - data['{name}'].min()) / "
                f"pd.Timedelta(days=1)) or to a factor (data['{name}'].astype(str))."
            )


def _extra_columns(
    spec: ModelSpec, frame: pd.DataFrame, weights: Any, offset: Any
) -> dict[str, np.ndarray]:
    """The prior weights and the offset (``offset=`` plus the formula's ``offset()`` terms),
    one value per row of ``frame``, keyed ``"weights"`` and ``"offset"``."""
    extra: dict[str, np.ndarray] = {}
    for label, value in (("weights", weights), ("offset", offset)):
        if value is None:
            continue
        if isinstance(value, str):
            _check_columns([value], frame)
            extra[label] = _numeric_column(frame[value], f"{label}='{value}'")
        else:
            try:
                array = np.asarray(value, dtype=float).ravel()
            except (TypeError, ValueError):
                raise DataError(
                    f"{label} must be a column name or one number per row. Got "
                    f"{type(value).__name__}."
                ) from None
            if array.shape[0] != frame.shape[0]:
                raise DataError(
                    f"{label} has {array.shape[0]} values but the data have {frame.shape[0]} rows."
                )
            extra[label] = array
    for expr in spec.offsets:
        values = fc.evaluate_numeric(expr, frame)
        extra["offset"] = values if "offset" not in extra else extra["offset"] + values
    return extra


def _warn_dropped(n_missing: int, columns: list[str]) -> None:
    warn(
        f"Dropped {n_missing} row(s) with missing values in {', '.join(columns)}.",
        MissingDataWarning,
    )


def _informative_rows(row_weights: np.ndarray | None) -> np.ndarray | None:
    """The rows of positive weight when some weight is zero, else None (all rows): rows of
    zero weight carry no information, and R's lm.wfit leaves them out of its rank check,
    so a column that varies only there is dependent."""
    if row_weights is None or np.all(row_weights > 0):
        return None
    return np.flatnonzero(row_weights > 0)


def _check_weights(row_weights: np.ndarray) -> None:
    if np.any(row_weights < 0):
        raise DataError(
            f"Weights must be non-negative; {int(np.sum(row_weights < 0))} are negative."
        )
    if not np.any(row_weights > 0):
        raise DataError("Every weight is zero: there is nothing to fit.")
