"""Model frame and design: data -> (y, X, random-effects terms, weights).

The random-effects terms are kept as (integer codes of the grouping factor, small
n x k model matrix): a dense Z is never formed.  The fixed-effects matrix comes
from formulaic with R-style column names (see :mod:`mixedmodels._formulaic_compat`).
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from . import _formulaic_compat as fc
from .errors import DataError, MissingDataWarning, RankDeficiencyWarning
from .formula import ModelSpec, RandomTerm

NaAction = Literal["omit", "fail"]
_NA_ACTIONS = ("omit", "fail")


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

    def encode_rows(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """New rows as the fit saw them: the term's matrix and each row's level index,
        −1 for a level the fit never saw (it then gets the population prediction)."""
        missing = [name for name in self.factors if name not in frame.columns]
        if missing:
            raise DataError(
                f"newdata lacks the grouping column(s) {missing} of the term "
                f"({self.expr} | {self.group}). Add them, or predict without random effects."
            )
        lookup = {label: i for i, label in enumerate(self.levels)}
        codes, labels = group_codes(frame, self.factors)
        mapped = np.array([lookup.get(label, -1) for label in labels], dtype=np.int64)[codes]
        return fc.encode(self.model_spec, frame), mapped


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
    frame: pd.DataFrame | None = field(repr=False, compare=False, default=None)
    row_index: pd.Index | None = field(repr=False, compare=False, default=None)

    @property
    def nobs(self) -> int:
        return len(self.y)

    def encode_fixed(self, frame: pd.DataFrame) -> np.ndarray:
        """The fixed-effects matrix of new rows, encoded as the fit's (dropped columns too)."""
        X = fc.encode(self.fixed_model_spec, frame)
        names = [fc.r_name(str(c)) for c in self.fixed_model_spec.column_names]
        X = X[:, [names.index(name) for name in self.fixed_names]]
        if not np.all(np.isfinite(X)):
            raise DataError("newdata has missing values in the fixed-effects columns.")
        return X


def as_dataframe(data: Any) -> pd.DataFrame:
    """Accept a pandas DataFrame, a polars DataFrame or a mapping of arrays."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif type(data).__module__.startswith("polars"):
        # column by column: polars' own to_pandas() needs pyarrow
        frame = pd.DataFrame({name: data[name].to_numpy() for name in data.columns})
    elif hasattr(data, "to_pandas") and callable(data.to_pandas):
        frame = data.to_pandas()
    elif isinstance(data, dict):
        try:
            frame = pd.DataFrame(data)
        except ValueError as exc:
            raise DataError(f"Could not build a table from the dict of arrays: {exc}") from None
    else:
        raise DataError(
            "data must be a pandas DataFrame, a polars DataFrame or a dict of arrays. "
            f"Got {type(data).__name__}."
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


def _unknown_column_error(missing: list[str], columns: list[str]) -> DataError:
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, columns, n=3, cutoff=0.6)
        hints.append(
            f"'{name}'" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else "")
        )
    return DataError(
        f"Unknown column{'s' if len(missing) > 1 else ''} {', '.join(hints)} in the formula. "
        f"The data have: {', '.join(columns[:30])}{' ...' if len(columns) > 30 else ''}."
    )


def _check_columns(needed: list[str], frame: pd.DataFrame) -> None:
    columns = [str(c) for c in frame.columns]
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise _unknown_column_error(missing, columns)


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
        elif not pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
            column.dtype
        ):
            levels = factor_levels(column)
            out[name] = pd.Categorical(column, categories=levels)
        else:
            out[name] = column
    return pd.DataFrame(out, index=frame.index)


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
        levels = factor_levels(column)
        if isinstance(column.dtype, pd.CategoricalDtype):
            mapping = {v: i for i, v in enumerate(levels)}
            codes = column.map(mapping).to_numpy(dtype=np.int64)
        else:
            codes = pd.Categorical(column, categories=levels).codes.astype(np.int64)
        codes_list.append(codes)
        labels_list.append(np.array([_label(v) for v in levels], dtype=object))
    if len(factors) == 1:
        return codes_list[0], labels_list[0]
    combined = np.zeros(len(frame), dtype=np.int64)
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
    X: np.ndarray, names: list[str]
) -> tuple[np.ndarray, list[str], list[str]]:
    """Drop linearly dependent columns, keeping the earlier ones, as R's ``qr`` does for lme4.

    Without pivoting, |R_jj| is the norm of what column j adds to the columns before
    it; a column adding less than 1e-7 of its own norm is dependent.
    """
    if X.shape[1] == 0:
        return X, names, []
    R = np.linalg.qr(X, mode="r")
    norms = np.linalg.norm(X, axis=0)
    dependent = np.abs(np.diag(R)) <= 1e-7 * np.where(norms > 0, norms, 1.0)
    if not dependent.any():
        return X, names, []
    keep = np.flatnonzero(~dependent)
    dropped = [names[i] for i in np.flatnonzero(dependent)]
    warnings.warn(
        f"Fixed-effects model matrix is rank deficient: dropping {len(dropped)} column"
        f"{'s' if len(dropped) > 1 else ''} ({', '.join(dropped)}). They are linear "
        "combinations of the other columns; remove them from the formula to silence this.",
        RankDeficiencyWarning,
        stacklevel=4,
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


def build_design(
    spec: ModelSpec,
    data: Any,
    *,
    weights: Any = None,
    offset: Any = None,
    na_action: NaAction = "omit",
    require_random: bool = True,
) -> Design:
    """Build the model frame and design of a parsed formula.

    Parameters
    ----------
    spec : ModelSpec
        From :func:`mixedmodels.formula.parse_formula`.
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

    Returns
    -------
    Design
    """
    if na_action not in _NA_ACTIONS:
        raise ValueError(f"na_action: expecting one of {set(_NA_ACTIONS)}. Got {na_action!r}.")
    frame = as_dataframe(data)
    if require_random and not spec.random:
        raise DataError(
            "The formula has no random-effects term such as (1 | group). "
            "Use mixedmodels.lm() for a model without random effects."
        )
    if not spec.response:
        raise DataError("The formula has no response: write 'y ~ ...'.")

    response_vars = fc.required_variables(spec.response)
    fixed_vars = fc.required_variables(spec.fixed)
    random_vars: list[str] = []
    group_vars: list[str] = []
    for term in spec.random:
        random_vars.extend(fc.required_variables(term.expr))
        group_vars.extend(term.factors)
    extra: dict[str, np.ndarray] = {}
    for label, value in (("weights", weights), ("offset", offset)):
        if value is None:
            continue
        if isinstance(value, str):
            _check_columns([value], frame)
            extra[label] = frame[value].to_numpy(dtype=float)
        else:
            array = np.asarray(value, dtype=float).ravel()
            if array.shape[0] != frame.shape[0]:
                raise DataError(
                    f"{label} has {array.shape[0]} values but the data have {frame.shape[0]} rows."
                )
            extra[label] = array
    needed = list(dict.fromkeys(response_vars + fixed_vars + random_vars + group_vars))
    _check_columns(needed, frame)

    used = frame[needed].copy()
    for label, array in extra.items():
        used[f"__{label}__"] = array
    missing = used.isna().any(axis=1).to_numpy()
    n_missing = int(missing.sum())
    if n_missing:
        columns_with_na = [str(c) for c in used.columns[used.isna().any(axis=0)]]
        if na_action == "fail":
            raise DataError(
                f"{n_missing} row(s) have missing values (in {', '.join(columns_with_na)}) and "
                "na_action='fail'. Drop them, or pass na_action='omit' to drop them for you."
            )
        warnings.warn(
            f"Dropped {n_missing} row(s) with missing values in {', '.join(columns_with_na)}.",
            MissingDataWarning,
            stacklevel=3,
        )
        used = used.loc[~missing]
        if used.shape[0] == 0:
            raise DataError("Every row has a missing value in a used column: nothing to fit.")
    _check_finite(used, list(used.columns))
    clean = _prepare_frame(used[needed], set(group_vars))

    y = fc.evaluate_response(spec.response, clean)
    if not np.all(np.isfinite(y)):
        raise DataError(
            f"The response '{spec.response}' has non-finite values after transformation "
            "(e.g. log of 0). Check its range."
        )
    X, fixed_names, fixed_model_spec = fc.fixed_matrix(spec.fixed, clean)
    X, fixed_names, dropped = _drop_rank_deficient(X, fixed_names)

    terms = []
    for term in spec.random:
        terms.append(_build_term(term, clean))

    row_weights = extra.get("weights")
    if row_weights is not None:
        row_weights = row_weights[~missing] if n_missing else row_weights
        if np.any(row_weights < 0):
            raise DataError("Weights must be non-negative.")
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
        frame=clean,
        row_index=clean.index,
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


def check_lmm_design(design: Design) -> None:
    """lme4's checks for a linear mixed model: enough levels and enough observations."""
    n = design.nobs
    for term in design.terms:
        if term.n_levels < 2:
            raise DataError(
                f"Grouping factor '{term.group}' has only {term.n_levels} level: a variance "
                "cannot be estimated from one group. Use it as a fixed effect instead."
            )
        if term.n_levels >= n:
            raise DataError(
                f"Grouping factor '{term.group}' has {term.n_levels} levels for {n} observations:"
                " each group needs more than one observation for the random effect to be "
                "distinguishable from the residual. Remove the term or use a coarser grouping."
            )
    total = sum(t.n_effects for t in design.terms)
    # glmmTMB (structured terms such as diag(0 + f | g)) does not refuse this, and its
    # residual-like models need it: gpa ~ (1|student) + diag(0 + occas|student)
    structured = any(t.structure != "us" for t in design.terms)
    if total >= n and not structured:
        raise DataError(
            f"The model has {total} random effects for {n} observations: more random effects "
            "than observations. Simplify the random-effects terms."
        )
