"""Data files with R's factor levels: what the command line and the demo read.

A CSV carries no factor levels, so pandas would order them alphabetically and the reference
level (the first one, absorbed into the intercept) would differ from R's. ``levels.json``
gives each factor's levels in R's order, either for one data set
(``{"sex": ["male", "female"]}``) or for several, keyed by data-set name
(``{"gpa": {"sex": [...]}, "pupils": {...}}``, the layout of the seed's ``levels.json``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..errors import DataError


class DataFileError(DataError):
    """A data or levels file cannot be read or does not match the data."""


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a ``.csv``, ``.tsv``, ``.txt`` or ``.parquet`` file into a DataFrame.

    Examples
    --------
    >>> read_table("no/such.csv")
    Traceback (most recent call last):
    ...
    mixedmodels.datasets.files.DataFileError: data file 'no/such.csv' not found.
    """
    file = Path(path)
    if not file.is_file():
        raise DataFileError(f"data file {str(path)!r} not found.")
    suffix = file.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(file)
        if suffix in (".csv", ".txt", ""):
            return pd.read_csv(file)
        if suffix == ".tsv":
            return pd.read_csv(file, sep="\t")
    except (ImportError, ValueError, OSError) as error:
        raise DataFileError(f"cannot read {str(path)!r}: {error}") from None
    raise DataFileError(f"data file {str(path)!r}: expecting a .csv, .tsv or .parquet file.")


def read_levels(path: str | Path, dataset: str | None = None) -> dict[str, list[str]]:
    """The factor levels in a ``levels.json`` file, for ``dataset`` when it holds several.

    Parameters
    ----------
    path : str or Path
    dataset : str, optional
        The data set's key in a file keyed by data set (the data file's stem, usually).

    Returns
    -------
    dict
        Column name → levels in order.
    """
    file = Path(path)
    if not file.is_file():
        raise DataFileError(f"levels file {str(path)!r} not found.")
    try:
        content = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        raise DataFileError(f"levels file {str(path)!r} is not valid JSON: {error}") from None
    if not isinstance(content, dict) or not content:
        raise DataFileError(
            f"levels file {str(path)!r}: expecting an object of column → list of levels."
        )
    if all(isinstance(value, dict) for value in content.values()):
        if dataset not in content:
            raise DataFileError(
                f"levels file {str(path)!r} has levels for {sorted(content)}, not for "
                f"{dataset!r}: name the data file after one of them."
            )
        content = content[dataset]
    out = {}
    for column, levels in content.items():
        if not isinstance(levels, list) or not all(isinstance(v, str | int) for v in levels):
            raise DataFileError(
                f"levels file {str(path)!r}: the levels of {column!r} must be a list of strings."
            )
        out[str(column)] = [str(v) for v in levels]
    return out


def parse_factor_option(text: str) -> tuple[str, list[str]]:
    """``"ses=lowest,2,3"`` → ``("ses", ["lowest", "2", "3"])`` (the ``--factor`` option)."""
    column, sep, levels = text.partition("=")
    values = [v.strip() for v in levels.split(",")] if sep else []
    if not column.strip() or not values or not all(values):
        raise DataFileError(
            f"--factor {text!r}: expecting COLUMN=LEVEL1,LEVEL2,... (the first level is the "
            "reference)."
        )
    return column.strip(), values


def apply_levels(frame: pd.DataFrame, levels: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """A copy of ``frame`` whose listed columns are categoricals with the given level order.

    Integer-coded columns (``1, 2, ...``) are matched as text (``"1"``, ``"2"``). A value not
    among the levels is an error, never a silent missing value.

    Examples
    --------
    >>> frame = pd.DataFrame({"sex": ["male", "female", "male"]})
    >>> apply_levels(frame, {"sex": ["male", "female"]})["sex"].cat.categories.tolist()
    ['male', 'female']
    >>> apply_levels(frame, {"sex": ["female"]})
    Traceback (most recent call last):
    ...
    mixedmodels.datasets.files.DataFileError: column 'sex' has values not among its levels ['female']: ['male'] (add them to the levels).
    """  # noqa: E501
    out = frame.copy()
    for column, order in levels.items():
        if column not in out.columns:
            raise DataFileError(
                f"levels given for {column!r}, which is not a column of the data "
                f"(columns: {', '.join(map(str, out.columns))})."
            )
        values = out[column]
        if pd.api.types.is_float_dtype(values.dtype) and values.dropna().mod(1).eq(0).all():
            values = values.astype("Int64")
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values):
            values = values.astype(str).where(values.notna())
        elif not pd.api.types.is_string_dtype(values.dtype) and not isinstance(
            values.dtype, pd.CategoricalDtype
        ):
            values = values.astype(str).where(values.notna())
        order = [str(v) for v in order]
        if len(set(order)) != len(order):
            raise DataFileError(f"the levels of {column!r} repeat a value: {order}.")
        present = pd.Series(values.dropna().astype(str).unique())
        unknown = sorted(present[~present.isin(order)].tolist())
        if unknown:
            raise DataFileError(
                f"column {column!r} has values not among its levels {order}: {unknown[:10]} "
                "(add them to the levels)."
            )
        out[column] = pd.Categorical(values.astype("string"), categories=order)
    return out
