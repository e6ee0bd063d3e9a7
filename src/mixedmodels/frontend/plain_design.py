"""The design of a formula made only of plain columns (main effects of numbers and
factors, random terms of such columns), read as numpy arrays without pandas' per-value
work or formulaic; the general path (:mod:`.design`) gives the same design for every
formula this one accepts, and handles all the others."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import _formulaic_compat as fc
from .checks import _drop_rank_deficient
from .columns import _check_weights, _extra_columns, _informative_rows, _warn_dropped
from .design_types import Design, NaAction, ReTerm
from .factors import _label, _used_codes, combine_codes, r_sort_key
from .formula import ModelSpec, RandomTerm

#: whether pandas protects a column read from a frame against later in-place edits of
#: that frame (copy-on-write, pandas 3's default) while the Series read lives: the plain
#: path then keeps views, and the Series with them
_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3 or bool(
    getattr(pd.options.mode, "copy_on_write", False) is True
)


@dataclass
class _PlainColumn:
    """One column of the plain path: numbers (``values``) or a factor (``codes`` over
    ``levels``, −1 where missing; ``categories`` the pandas categories to rebuild it).

    ``owner`` is the Series a view ``values`` was read from: while it lives, pandas'
    copy-on-write copies the frame's block before a later in-place edit of the user's
    frame (``data.loc[0, "x"] = …``), which would otherwise reach the fitted model's
    frame through the view.  A pickled column drops it (its values travel alone)."""

    values: np.ndarray | None = None
    codes: np.ndarray | None = None
    levels: list | None = None
    categories: Any = None
    owner: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "owner": None}

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
        # tolist() converts in one call; iterating an Arrow-backed Index boxes value by value
        return _PlainColumn(codes=codes, levels=categories.tolist(), categories=categories)
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        values = column.to_numpy()
        if _COPY_ON_WRITE:
            return _PlainColumn(values=values, owner=column)
        return _PlainColumn(values=values.copy())
    is_text = isinstance(dtype, pd.StringDtype) or (
        dtype.kind == "O" and pd.api.types.infer_dtype(column, skipna=True) == "string"
    )
    if not is_text:
        return None
    codes, uniques = pd.factorize(column)  # −1 for a missing value; first-seen order
    uniques = uniques.tolist()  # one conversion, not an Arrow scalar access per level
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
        # the levels are the categories as a list (_PlainColumn keeps the two in step)
        terms.append(fc.SimpleTerm(token, tuple(column.levels), full_left))
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
    read = _read_plain_columns(spec, frame, response)
    if read is None:
        return None
    fixed, randoms, columns = read
    extra = _extra_columns(spec, frame, weights, offset)
    labels = {label: label if label not in columns else f"{label} (argument)" for label in extra}

    n = frame.shape[0]
    missing, columns_with_na = _missing_rows(columns, extra, labels, n)
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
    # a view where the column is already float64 (its Series, kept with the column, has
    # copy-on-write copy the frame's block before a later edit): 8 MB a million rows
    y = np.asarray(columns[spec.response].values, dtype=float)
    matrix = _plain_matrix(fixed[0], fixed[1], columns, n_used)
    if matrix is None:
        return None
    X, fixed_spec = matrix
    terms = []
    for term, (intercept, tokens) in zip(spec.random, randoms, strict=True):
        # a term of the fixed part's own columns, (x | g) beside y ~ x, shares X's array
        # (neither is written to after the design): one n x k copy less per model
        same = (intercept, list(tokens)) == (fixed[0], list(fixed[1]))
        built = _plain_term(term, intercept, tokens, columns, n_used, matrix if same else None)
        if built is None:
            return None
        terms.append(built)
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
        kept_rows=np.flatnonzero(~missing) if n_missing else None,
    )


def _read_plain_columns(
    spec: ModelSpec, frame: pd.DataFrame, response: np.ndarray | None
) -> tuple[tuple[bool, list[str]], list[tuple[bool, list[str]]], dict[str, _PlainColumn]] | None:
    """The fixed part's and each random term's (intercept, columns) and every used column
    read as a :class:`_PlainColumn`; None when the formula or a column is not plain."""
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
    return fixed, randoms, columns  # type: ignore[return-value]


def _missing_rows(
    columns: dict[str, _PlainColumn],
    extra: dict[str, np.ndarray],
    labels: dict[str, str],
    n: int,
) -> tuple[np.ndarray, list[str]]:
    """The rows with a missing value in a used column, weights or offset, and the names of
    the columns that have one."""
    missing = np.zeros(n, dtype=bool)
    columns_with_na = []
    pieces = [(name, column.missing()) for name, column in columns.items()]
    pieces += [(labels[label], np.isnan(array)) for label, array in extra.items()]
    for name, flags in pieces:
        if flags is not None and flags.any():
            missing |= flags
            columns_with_na.append(name)
    return missing, columns_with_na


def _plain_term(
    term: RandomTerm,
    intercept: bool,
    tokens: list[str],
    columns: dict[str, _PlainColumn],
    n_used: int,
    fixed_matrix: tuple[np.ndarray, fc.SimpleSpec] | None = None,
) -> ReTerm | None:
    """One random-effects term of plain columns: its matrix and the codes of its grouping
    factor (the interaction of its factors); None where the general path must build it.
    ``fixed_matrix``: the fixed part's (X, spec) when the term has the same columns."""
    built = fixed_matrix or _plain_matrix(intercept, tokens, columns, n_used)
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
        if all(type(v) is str for v in levels):  # strings label themselves
            labels_list.append(np.array(levels, dtype=object))
        else:
            labels_list.append(np.array([_label(v) for v in levels], dtype=object))
    codes, levels = combine_codes(codes_list, labels_list)
    return ReTerm(
        group=term.group,
        codes=codes,
        levels=levels,
        matrix=built[0],
        columns=tuple("(Intercept)" if c == "Intercept" else c for c in built[1].column_names),
        structure=term.structure,
        expr=term.expr,
        factors=term.factors,
        model_spec=built[1],
    )
