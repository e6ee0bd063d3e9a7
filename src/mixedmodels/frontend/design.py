"""Model frame and design: data -> (y, X, random-effects terms, weights).

The random-effects terms are kept as (integer codes of the grouping factor, small
n x k model matrix): a dense Z is never formed.  The fixed-effects matrix comes
from formulaic with R-style column names (see :mod:`mixedmodels.frontend._formulaic_compat`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._warnings import warn
from ..errors import (
    DataError,
    MissingDataWarning,
    RankDeficiencyWarning,
    ScaleWarning,
    check_choice,
)
from . import _formulaic_compat as fc
from .formula import ModelSpec, RandomTerm

NaAction = Literal["omit", "exclude", "fail"]
_NA_ACTIONS = ("omit", "exclude", "fail")


@dataclass(frozen=True)
class ReTerm:
    """One random-effects term, stored without a dense Z.

    Attributes
    ----------
    group : str
        Name of the grouping factor, e.g. ``"student"`` or ``"hospital:ward"``.
    codes : ndarray of int, shape (n,)
        Level index of every row.
    levels : ndarray
        Level labels (strings), in R's factor order.
    matrix : ndarray, shape (n, k)
        The term's model matrix (``1``, ``x``, ...).
    columns : tuple of str
        R-style names of the k columns, e.g. ``("(Intercept)", "occasion")``.
    structure : str
        ``"us"`` (unstructured, lme4) or ``"diag"``.
    expr : str
        The left-hand side the columns came from (kept for prediction).
    """

    group: str
    codes: np.ndarray
    levels: np.ndarray
    matrix: np.ndarray
    columns: tuple[str, ...]
    structure: str
    expr: str
    factors: tuple[str, ...]
    model_spec: Any = field(repr=False, compare=False, default=None)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def n_columns(self) -> int:
        return self.matrix.shape[1]

    @property
    def n_effects(self) -> int:
        return self.n_levels * self.n_columns

    def encode_rows(
        self, frame: pd.DataFrame, allow_new_levels: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """New rows as the fit saw them: the term's matrix and each row's level index.

        The index is −1 for a missing grouping value and for a level the fit never saw
        (unless ``allow_new_levels`` is False, which refuses those as lme4's default
        does): the row then gets the population prediction for this term.
        """
        missing = [name for name in self.factors if name not in frame.columns]
        if missing:
            raise DataError(
                f"newdata lacks the grouping column(s) {missing} of the term "
                f"({self.expr} | {self.group}). Add them, or predict without random effects."
            )
        lookup = {label: i for i, label in enumerate(self.levels)}
        absent = frame[list(self.factors)].isna().any(axis=1).to_numpy()
        mapped = np.full(len(frame), -1, dtype=np.int64)
        unseen: list[str] = []
        if not absent.all():
            present = frame.loc[~absent, list(self.factors)]
            codes, labels = group_codes(present, self.factors)
            known = np.array([lookup.get(label, -1) for label in labels], dtype=np.int64)
            mapped[~absent] = known[codes]
            unseen = [str(label) for label, k in zip(labels, known, strict=True) if k < 0]
        if unseen and not allow_new_levels:
            raise DataError(
                f"newdata has {len(unseen)} level(s) of '{self.group}' the fit did not see "
                f"({', '.join(unseen[:5])}{' ...' if len(unseen) > 5 else ''}). Pass "
                "allow_new_levels=True to give them the population prediction (lme4's "
                "allow.new.levels = TRUE)."
            )
        matrix = fc.encode(self.model_spec, frame)
        # a term's own covariate may be missing: no contribution rather than NaN
        matrix[~np.isfinite(matrix).all(axis=1) & (mapped < 0)] = 0.0
        return matrix, mapped


@dataclass(frozen=True)
class Design:
    """Everything the numerics need, plus what prediction needs to encode new data."""

    spec: ModelSpec
    y: np.ndarray
    X: np.ndarray
    fixed_names: tuple[str, ...]
    terms: tuple[ReTerm, ...]
    weights: np.ndarray | None
    offset: np.ndarray | None
    n_dropped_na: int
    dropped_columns: tuple[str, ...]
    fixed_model_spec: Any = field(repr=False, compare=False, default=None)
    #: the model frame, or a function that builds it when first read (see ``frame``)
    _frame: pd.DataFrame | Callable[[], pd.DataFrame] | None = field(
        repr=False, compare=False, default=None
    )
    row_index: pd.Index | None = field(repr=False, compare=False, default=None)
    #: what prediction needs to rebuild the offset on new rows: the formula's offset()
    #: expressions, the ``offset=`` column name, and whether ``offset=`` was an array
    offset_terms: tuple[str, ...] = ()
    offset_column: str | None = None
    offset_is_array: bool = False
    #: ``na_action="exclude"``: how many rows were given and the positions of those kept
    na_action: str = "omit"
    n_input_rows: int | None = None
    kept_rows: np.ndarray | None = field(repr=False, compare=False, default=None)

    @property
    def nobs(self) -> int:
        return len(self.y)

    @property
    def frame(self) -> pd.DataFrame | None:
        """The model frame: the used columns of the fitted rows, factors as Categoricals.

        The plain-column path builds it on first use: most fits never read it."""
        if self._frame is not None and not isinstance(self._frame, pd.DataFrame):
            object.__setattr__(self, "_frame", self._frame())
        return self._frame

    def encode_fixed(self, frame: pd.DataFrame) -> np.ndarray:
        """The fixed-effects matrix of new rows, encoded as the fit's (dropped columns too)."""
        X = fc.encode(self.fixed_model_spec, frame)
        names = list(self.fixed_model_spec.column_names)
        X = X[:, [names.index(name) for name in self.fixed_names]]
        if not np.all(np.isfinite(X)):
            raise DataError("newdata has missing values in the fixed-effects columns.")
        return X

    def encode_offset(self, frame: pd.DataFrame) -> np.ndarray:
        """The offset of new rows, rebuilt as the fit's (zeros when the fit had none)."""
        total = np.zeros(len(frame))
        if self.offset_is_array:
            raise DataError(
                "The fit's offset was given as an array, which new rows cannot carry. Refit "
                "with the offset as a column (offset='column' or offset(column) in the "
                "formula) so that predict(newdata) can read it."
            )
        sources = list(self.offset_terms) + ([self.offset_column] if self.offset_column else [])
        for expr in sources:
            total = total + evaluate_numeric(expr, frame)
        if not np.all(np.isfinite(total)):
            raise DataError("newdata has missing values in the offset.")
        return total

    def pad(self, values: np.ndarray) -> np.ndarray:
        """Per-row results aligned with the input rows under ``na_action="exclude"`` (NaN
        for the rows dropped for missing values, as R's ``naresid``); unchanged otherwise."""
        if self.na_action != "exclude" or self.kept_rows is None or self.n_dropped_na == 0:
            return values
        out = np.full(self.n_input_rows, np.nan)
        out[self.kept_rows] = values
        return out

    def unpad(self, values: np.ndarray) -> np.ndarray:
        """The fitted rows of what :meth:`pad` returned."""
        if len(values) == self.nobs or self.kept_rows is None:
            return values
        return np.asarray(values)[self.kept_rows]


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
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        names = ", ".join(map(str, dict.fromkeys(duplicated)))
        raise DataError(
            f"The data have duplicated column names ({names})"
            ": a formula could not tell them apart. Rename or drop the copies."
        )
    if frame.shape[0] == 0:
        raise DataError("The data have no rows: pass a table with observations.")
    return frame


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
    categories = list(column.array.categories)
    codes, present = _used_codes(column.array.codes, len(categories))
    return codes, categories if present is None else [categories[i] for i in present]


def _used_codes(codes: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Codes renumbered over the levels that occur, and those levels' positions (None when
    every level occurs); −1 stays −1."""
    codes = codes.astype(np.int64)
    counts = np.bincount(codes[codes >= 0], minlength=n_levels)
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


def _drop_rank_deficient(
    X: np.ndarray, names: list[str], rows: np.ndarray | None = None
) -> tuple[np.ndarray, list[str], list[str]]:
    """Drop linearly dependent columns, keeping the earlier ones, as R's ``qr`` does for lme4.

    Without pivoting, |R_jj| is the norm of what column j adds to the columns before
    it; a column adding less than 1e-7 of its own norm is dependent.  ``rows`` restricts
    the check to those rows (the ones with a positive weight).
    """
    if X.shape[1] == 0:
        return X, names, []
    checked = X if rows is None else X[rows]
    R = np.linalg.qr(checked, mode="r")
    norms = np.linalg.norm(checked, axis=0)
    diagonal = np.zeros(X.shape[1])
    diagonal[: min(checked.shape)] = np.abs(np.diag(R))  # columns beyond the n-th add nothing
    dependent = diagonal <= 1e-7 * np.where(norms > 0, norms, 1.0)
    if not dependent.any():
        return X, names, []
    keep = np.flatnonzero(~dependent)
    dropped = [names[i] for i in np.flatnonzero(dependent)]
    warn(
        f"Fixed-effects model matrix is rank deficient: dropping {len(dropped)} column"
        f"{'s' if len(dropped) > 1 else ''} ({', '.join(dropped)}). They are linear "
        "combinations of the other columns; remove them from the formula to silence this.",
        RankDeficiencyWarning,
    )
    return X[:, keep], [names[i] for i in keep], dropped


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
        kept_rows=np.flatnonzero(~missing),
    )


#: whether pandas protects a column read from a frame against later in-place edits of
#: that frame (copy-on-write, pandas 3's default): the plain path then keeps views
_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3 or bool(
    getattr(pd.options.mode, "copy_on_write", False) is True
)


@dataclass
class _PlainColumn:
    """One column of the plain path: numbers (``values``) or a factor (``codes`` over
    ``levels``, −1 where missing; ``categories`` the pandas categories to rebuild it)."""

    values: np.ndarray | None = None
    codes: np.ndarray | None = None
    levels: list | None = None
    categories: Any = None

    @property
    def is_factor(self) -> bool:
        return self.codes is not None

    def missing(self) -> np.ndarray | None:
        if self.is_factor:
            return self.codes < 0
        if self.values.dtype.kind == "f":
            return np.isnan(self.values)
        return None

    def take(self, keep: np.ndarray) -> _PlainColumn:
        if not self.is_factor:
            return _PlainColumn(values=self.values[keep])
        codes, present = _used_codes(self.codes[keep], len(self.levels))
        if present is None:
            return _PlainColumn(codes=codes, levels=self.levels, categories=self.categories)
        levels = [self.levels[i] for i in present]
        categories = None if self.categories is None else self.categories[present]
        return _PlainColumn(codes=codes, levels=levels, categories=categories)

    def series_values(self) -> Any:
        if not self.is_factor:
            return self.values
        categories = self.levels if self.categories is None else self.categories
        return pd.Categorical.from_codes(self.codes, categories=categories)


@dataclass
class _PlainFrame:
    """Builds the plain path's model frame when a tool first reads it (a class, not a
    closure, so that a fitted model pickles)."""

    columns: dict[str, _PlainColumn]
    index: pd.Index

    def __call__(self) -> pd.DataFrame:
        return pd.DataFrame(
            {name: column.series_values() for name, column in self.columns.items()},
            index=self.index,
        )


def _plain_column(column: pd.Series) -> _PlainColumn | None:
    """A column as numbers or factor codes without pandas' per-value work; None for the
    kinds the general path converts (logicals, numbers stored as objects, ordered factors,
    nullable dtypes, dates)."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        if dtype.ordered:
            return None
        categories = dtype.categories
        codes, present = _used_codes(column.array.codes, len(categories))
        if present is not None:
            categories = categories[present]
        return _PlainColumn(codes=codes, levels=list(categories), categories=categories)
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        values = column.to_numpy()
        return _PlainColumn(values=values if _COPY_ON_WRITE else values.copy())
    is_text = isinstance(dtype, pd.StringDtype) or (
        dtype.kind == "O" and pd.api.types.infer_dtype(column, skipna=True) == "string"
    )
    if not is_text:
        return None
    codes, uniques = pd.factorize(column)  # −1 for a missing value; first-seen order
    order = sorted(range(len(uniques)), key=lambda i: r_sort_key(str(uniques[i])))
    renumber = np.empty(len(uniques) + 1, dtype=np.int64)
    renumber[order] = np.arange(len(order))
    renumber[-1] = -1
    return _PlainColumn(codes=renumber[codes], levels=[uniques[i] for i in order])


def _plain_matrix(
    intercept: bool, tokens: list[str], columns: dict[str, _PlainColumn], n: int
) -> tuple[np.ndarray, fc.SimpleSpec] | None:
    """Intercept and main effects, treatment-coded as ``fc.SimpleSpec`` encodes them (the
    first factor coded fully when there is no intercept); None where the general path
    would hand the formula to formulaic (no levels, brackets in a level)."""
    terms = []
    full_left = not intercept
    for token in tokens:
        column = columns[token]
        if not column.is_factor:
            terms.append(fc.SimpleTerm(token))
            continue
        if not column.levels or any("[" in str(v) or "]" in str(v) for v in column.levels):
            return None
        categories = column.levels if column.categories is None else list(column.categories)
        terms.append(fc.SimpleTerm(token, tuple(categories), full_left))
        full_left = False
    spec = fc.SimpleSpec(intercept, tuple(terms))
    X = np.empty((n, len(spec.column_names)))
    j = 0
    if intercept:
        X[:, 0] = 1.0
        j = 1
    for term in terms:
        column = columns[term.name]
        if term.levels is None:
            X[:, j] = column.values
            j += 1
            continue
        start = 0 if term.full else 1
        width = len(term.levels) - start
        block = X[:, j : j + width]
        block[:] = 0.0
        rows = np.flatnonzero(column.codes >= start)
        block[rows, column.codes[rows] - start] = 1.0
        j += width
    return X, spec


def _lme4_name(column: str) -> str:
    return "(Intercept)" if column == "Intercept" else column


def _plain_design(
    spec: ModelSpec,
    frame: pd.DataFrame,
    weights: Any,
    offset: Any,
    na_action: NaAction,
    response: np.ndarray | None,
) -> Design | None:
    """The design of a formula made only of plain columns, read as numpy arrays; None
    whenever anything needs the general path (an expression, an interaction, a column
    kind it converts, an error to report), which then gives the same design or error.

    A formula such as ``Reaction ~ Days + (Days | Subject)`` spends milliseconds in
    pandas indexing and formulaic on the general path and a fraction of that here;
    ``tests/test_plain_design.py`` checks the two column for column.
    """
    names = frame.columns
    if spec.response not in names or any(e.strip() not in names for e in spec.offsets):
        return None
    fixed = fc.simple_tokens(spec.fixed, names)
    randoms = [fc.simple_tokens(term.expr, names) for term in spec.random]
    if fixed is None or any(r is None for r in randoms):
        return None
    group_vars = [name for term in spec.random for name in term.factors]
    if any(name not in names for name in group_vars):
        return None
    random_vars = [name for r in randoms for name in sorted(r[1])]  # type: ignore[index]
    needed = list(dict.fromkeys([spec.response, *sorted(fixed[1]), *random_vars, *group_vars]))
    columns: dict[str, _PlainColumn] = {}
    for name in needed:
        if name == spec.response and response is not None:
            columns[name] = _PlainColumn(values=np.asarray(response, dtype=float))
            continue
        column = _plain_column(frame[name])
        if column is None:
            return None
        columns[name] = column
    if columns[spec.response].is_factor:
        return None
    extra = _extra_columns(spec, frame, weights, offset)
    labels = {label: label if label not in columns else f"{label} (argument)" for label in extra}

    n = frame.shape[0]
    missing = np.zeros(n, dtype=bool)
    columns_with_na = []
    pieces = [(name, column.missing()) for name, column in columns.items()]
    pieces += [(labels[label], np.isnan(array)) for label, array in extra.items()]
    for name, flags in pieces:
        if flags is not None and flags.any():
            missing |= flags
            columns_with_na.append(name)
    n_missing = int(missing.sum())
    if n_missing and (na_action == "fail" or n_missing == n):
        return None
    if n_missing:
        keep = ~missing
        columns = {name: column.take(keep) for name, column in columns.items()}
        extra = {label: array[keep] for label, array in extra.items()}
    numbers = [c.values for c in columns.values() if not c.is_factor] + list(extra.values())
    if any(v.dtype.kind == "f" and np.isinf(v).any() for v in numbers):
        return None  # the general path names the column and the row
    n_used = n - n_missing
    y = columns[spec.response].values.astype(float)
    matrix = _plain_matrix(fixed[0], fixed[1], columns, n_used)
    if matrix is None:
        return None
    X, fixed_spec = matrix
    terms = []
    for term, (intercept, tokens) in zip(spec.random, randoms, strict=True):  # type: ignore[misc]
        built = _plain_matrix(intercept, tokens, columns, n_used)
        if built is None or built[0].shape[1] == 0:
            return None
        codes_list, labels_list = [], []
        for name in term.factors:
            column = columns[name]
            if column.is_factor:
                codes, levels = column.codes, column.levels
            else:
                levels, codes = np.unique(column.values, return_inverse=True)
                codes = codes.astype(np.int64)
            codes_list.append(codes)
            labels_list.append(np.array([_label(v) for v in levels], dtype=object))
        codes, levels = combine_codes(codes_list, labels_list)
        terms.append(
            ReTerm(
                group=term.group,
                codes=codes,
                levels=levels,
                matrix=built[0],
                columns=tuple(
                    "(Intercept)" if c == "Intercept" else c for c in built[1].column_names
                ),
                structure=term.structure,
                expr=term.expr,
                factors=term.factors,
                model_spec=built[1],
            )
        )
    if n_missing:
        _warn_dropped(n_missing, columns_with_na)
    fixed_names = list(fixed_spec.column_names)
    row_weights = extra.get("weights")
    if row_weights is not None:
        _check_weights(row_weights)
    X, fixed_names, dropped = _drop_rank_deficient(
        X, fixed_names, rows=_informative_rows(row_weights)
    )
    row_index = frame.index[~missing] if n_missing else frame.index
    return Design(
        spec=spec,
        y=y,
        X=X,
        fixed_names=tuple(fixed_names),
        terms=tuple(terms),
        weights=row_weights,
        offset=extra.get("offset"),
        n_dropped_na=n_missing,
        dropped_columns=tuple(dropped),
        fixed_model_spec=fixed_spec,
        _frame=_PlainFrame(columns, row_index),
        row_index=row_index,
        offset_terms=spec.offsets,
        offset_column=offset if isinstance(offset, str) else None,
        offset_is_array=offset is not None and not isinstance(offset, str),
        na_action=na_action,
        n_input_rows=n,
        kept_rows=np.flatnonzero(~missing),
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


def check_lmm_design(design: Design, generalized: bool = False) -> None:
    """lme4's checks of a mixed model's design: enough levels, enough observations, fewer
    fixed effects than observations, a response that varies (linear models), and a
    warning for badly scaled covariates.

    ``generalized`` applies glmer's versions (``allow.n = TRUE``): as many levels or
    random effects as observations are allowed there (observation-level random effects),
    more are refused.
    """
    n = design.nobs
    for term in design.terms:
        if term.n_levels < 2:
            raise DataError(
                f"Grouping factor '{term.group}' has only {term.n_levels} level: a variance "
                "cannot be estimated from one group. Use it as a fixed effect instead."
            )
        if term.n_levels > n or (term.n_levels == n and not generalized):
            raise DataError(
                f"Grouping factor '{term.group}' has {term.n_levels} levels for {n} observations:"
                " each group needs more than one observation for the random effect to be "
                "distinguishable from the residual. Remove the term or use a coarser grouping."
            )
    total = sum(t.n_effects for t in design.terms)
    # glmmTMB (structured terms such as diag(0 + f | g)) does not refuse this, and its
    # residual-like models need it: gpa ~ (1|student) + diag(0 + occas|student)
    structured = any(t.structure != "us" for t in design.terms)
    if (total > n or (total == n and not generalized)) and not structured:
        raise DataError(
            f"The model has {total} random effects for {n} observations: more random effects "
            "than observations. Simplify the random-effects terms."
        )
    p = design.X.shape[1]
    if p >= n:
        raise DataError(
            f"The model has {p} fixed-effects columns for {n} observations: at least as many "
            "coefficients as observations leave nothing to estimate the variances from. "
            "Simplify the fixed effects."
        )
    # a Dask fit's design holds no rows (they stay in the partitions): nothing to check here
    if (
        not generalized
        and design.y.size
        and np.ptp(design.y) <= 1e-12 * max(1.0, float(np.abs(design.y).max()))
    ):
        raise DataError(
            f"The response is constant (every value is {design.y[0]:g}): there is no "
            "variation for a mixed model to describe."
        )
    warn_if_badly_scaled(design.X, design.fixed_names)


def warn_if_badly_scaled(X: np.ndarray, names: tuple[str, ...] | list[str]) -> None:
    """lme4's ``check.scaleX``: warn when a continuous column's SD, or the ratio of two
    columns' SDs, is beyond 1000 (or below 1/1000); the optimizer then works badly."""
    continuous = [j for j in range(X.shape[1]) if not ((X[:, j] == 0.0) | (X[:, j] == 1.0)).all()]
    if not continuous:
        return
    sds = X[:, continuous].std(axis=0, ddof=1) if X.shape[0] > 1 else np.ones(len(continuous))
    sds = np.where(sds > 0, sds, 1.0)
    logs = np.log(sds)
    worst = max(np.abs(logs).max(), logs.max() - logs.min())
    if worst > np.log(1e3):
        listed = ", ".join(
            f"{names[j]} (SD {sd:.3g})" for j, sd in zip(continuous, sds, strict=True)
        )
        warn(
            f"Some predictor variables are on very different scales: {listed}. Consider "
            "rescaling them, e.g. scale(x) in the formula (lme4's check.scaleX).",
            ScaleWarning,
        )
