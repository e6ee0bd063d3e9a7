"""R's factor semantics on pandas columns: level orders (R's ``sort()`` and ``factor()``),
level labels, the model frame's Categoricals, and the integer codes of grouping factors and
of their interactions (observed combinations only, ordered as R orders ``a:b``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def r_sort_key(label: str) -> tuple[str, str]:
    """Sort strings as R's ``sort()`` does in an English locale: case-insensitive first,
    lower case before upper case on ties."""
    return (label.casefold(), label.swapcase())


def factor_levels(values: pd.Series) -> list:
    """Levels of a column as R's ``factor()`` would order them (unused levels dropped)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna().unique())
        return [c for c in values.cat.categories if c in present]
    unique = pd.unique(values.dropna())
    if pd.api.types.is_bool_dtype(values.dtype):
        return [v for v in (False, True) if v in set(unique)]
    if pd.api.types.is_numeric_dtype(values.dtype):
        return sorted(unique)
    return sorted(unique, key=lambda v: r_sort_key(str(v)))


def _label(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _numbers_as_objects(column: pd.Series) -> bool:
    """An object column whose every value is a number (not a string, not a bool)."""
    if column.dtype != object:
        return False
    values = column.dropna()
    return len(values) > 0 and all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        for v in values
    )


def _prepare_frame(frame: pd.DataFrame, factor_columns: set[str]) -> pd.DataFrame:
    """Give every non-numeric column R's level order as a pandas Categorical."""
    out = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            out[name] = column.cat.remove_unused_categories()
        elif pd.api.types.is_bool_dtype(column.dtype) and name not in factor_columns:
            out[name] = pd.Categorical(
                column.map({True: "TRUE", False: "FALSE"}),
                categories=[v for v in ("FALSE", "TRUE") if v in set(column.map(_label))],
            )
        elif _numbers_as_objects(column) and name not in factor_columns:
            out[name] = column.astype(float)  # R's data frames have no such column: numbers
        elif not pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
            column.dtype
        ):
            levels = factor_levels(column)
            out[name] = pd.Categorical(column, categories=levels)
        else:
            out[name] = column
    return pd.DataFrame(out, index=frame.index)


def used_category_codes(column: pd.Series) -> tuple[np.ndarray, list]:
    """A Categorical's codes over the categories that occur (in category order, as
    ``factor_levels``), −1 for a missing value; read from the codes, not by mapping labels."""
    categories = column.array.categories.tolist()  # one call, also for Arrow-backed labels
    codes, present = _used_codes(column.array.codes, len(categories))
    return codes, categories if present is None else [categories[i] for i in present]


def _used_codes(codes: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Codes renumbered over the levels that occur, and those levels' positions (None when
    every level occurs); −1 stays −1."""
    codes = codes.astype(np.int64)
    # without missing values (−1) the codes are counted as they are: no masked copy
    counts = np.bincount(
        codes if codes.min(initial=0) >= 0 else codes[codes >= 0], minlength=n_levels
    )
    if counts.all():
        return codes, None
    present = np.flatnonzero(counts)
    renumber = np.full(n_levels + 1, -1, dtype=np.int64)  # the last slot: −1 stays
    renumber[present] = np.arange(present.size)
    return renumber[codes], present


def group_codes(frame: pd.DataFrame, factors: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and labels of the interaction of ``factors`` (observed combinations only).

    Levels are ordered as R orders ``a:b``: by the first factor's levels, then the second's.
    """
    codes_list = []
    labels_list = []
    for name in factors:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
            column.dtype
        ):
            # numbers: np.unique sorts and codes in one pass (R's factor() sorts numerically)
            levels, codes = np.unique(column.to_numpy(), return_inverse=True)
            codes_list.append(codes.astype(np.int64))
            labels_list.append(np.array([_label(v) for v in levels], dtype=object))
            continue
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes, levels = used_category_codes(column)
            codes_list.append(codes)
            labels_list.append(np.array([_label(v) for v in levels], dtype=object))
            continue
        levels = factor_levels(column)
        codes = pd.Categorical(column, categories=levels).codes.astype(np.int64)
        codes_list.append(codes)
        labels_list.append(np.array([_label(v) for v in levels], dtype=object))
    return combine_codes(codes_list, labels_list)


def combine_codes(
    codes_list: list[np.ndarray], labels_list: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The codes and labels of the interaction of factors given as (codes, labels) each,
    observed combinations only, ordered by the first factor's levels, then the second's."""
    if len(codes_list) == 1:
        return codes_list[0], labels_list[0]
    combined = np.zeros(len(codes_list[0]), dtype=np.int64)
    for codes, labels in zip(codes_list, labels_list, strict=True):
        combined = combined * len(labels) + codes
    observed, codes = np.unique(combined, return_inverse=True)
    labels = []
    for value in observed:
        parts = []
        for level_labels in reversed(labels_list):
            value, index = divmod(int(value), len(level_labels))
            parts.append(level_labels[index])
        labels.append(":".join(reversed(parts)))
    return codes.astype(np.int64), np.array(labels, dtype=object)
