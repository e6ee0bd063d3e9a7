"""The first pass and the per-partition encoding it makes identical everywhere.

The first pass (:func:`survey_partition`, summed over partitions) finds every level of
every factor and grouping factor, the rows with missing values and infinite values.  The
client then builds one :class:`PartitionEncoder`: the fixed-effects and random-effects
model specs made on a small prototype holding every level (so formulaic encodes each
partition with the same columns), and each term's global levels in R's order (from
:func:`mixedmodels.frontend.factors.group_codes` on the union of the observed combinations).  Each
partition is then encoded by the in-memory code itself: ``Design.encode_fixed`` and
``ReTerm.encode_rows``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._warnings import warn
from ..errors import DataError, MissingDataWarning, RankDeficiencyWarning
from ..frontend import _formulaic_compat as fc
from ..frontend.design_types import Design, ReTerm
from ..frontend.factors import factor_levels, group_codes
from ..frontend.formula import ModelSpec
from ..lmm.crossprods import BlockSums, internal_order

# formulaic's stateful transforms: their state (a mean, knots) would come from one partition
_STATEFUL = re.compile(r"\b(center|scale|standardize|poly|bs|cr|cs|cc|te|ns|hashed|lag)\s*\(")
_HEAD_ROWS = 64


@dataclass
class ColumnPlan:
    """Which columns a fit reads and what each is."""

    spec: ModelSpec
    needed: list[str]  # the formula's variables
    group_columns: list[str]
    weights: str | None
    offset: str | None
    factor_sets: list[tuple[str, ...]]  # the grouping factors of each term

    @classmethod
    def of(cls, spec: ModelSpec, weights: Any, offset: Any, columns: list[str]) -> ColumnPlan:
        for label, value in (("weights", weights), ("offset", offset)):
            if value is not None and not isinstance(value, str):
                raise DataError(
                    f"On Dask data {label}= must be a column name, not an array: add the "
                    "values as a column of the data."
                )
        text = " ".join([spec.response, spec.fixed, *spec.offsets, *(t.expr for t in spec.random)])
        found = _STATEFUL.search(text)
        if found:
            raise DataError(
                f"The formula uses the stateful transform {found.group(1)}(), whose statistics "
                "would differ between partitions; compute the transformed column before the "
                "fit (e.g. with dask's column arithmetic), or fit in memory."
            )
        needed = fc.required_variables(spec.response) + fc.required_variables(spec.fixed)
        for expr in spec.offsets:  # the formula's offset() terms: read, NA-dropped, added
            needed += fc.required_variables(expr)
        groups: list[str] = []
        for term in spec.random:
            needed += fc.required_variables(term.expr)
            groups += list(term.factors)
        needed = list(dict.fromkeys(needed + groups))
        extra = [v for v in (weights, offset) if v is not None]
        missing = [name for name in needed + extra if name not in columns]
        if missing:
            from ..frontend.columns import _unknown_column_error

            raise _unknown_column_error(missing, [str(c) for c in columns])
        factor_sets = list(dict.fromkeys(tuple(t.factors) for t in spec.random))
        return cls(spec, needed, list(dict.fromkeys(groups)), weights, offset, factor_sets)

    @property
    def columns(self) -> list[str]:
        extra = [v for v in (self.weights, self.offset) if v is not None]
        return list(dict.fromkeys(self.needed + extra))


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` of numbers, by pandas' hash table and a sort of the distinct values
    only (numpy's unique took ~1 s per 2M-row column: a hash pass, then a full sort)."""
    return np.sort(pd.unique(values))


def _is_number(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
        column.dtype
    )


@dataclass
class Survey:
    """What the first pass finds in a set of rows; surveys of disjoint rows add."""

    n_rows: int
    n_missing: int
    na_columns: set[str]
    infinite: dict[str, int]
    values: dict[str, np.ndarray]  # unique values of factor and grouping columns
    combinations: dict[tuple[str, ...], pd.DataFrame]  # of multi-factor grouping terms
    head: pd.DataFrame = field(repr=False)

    def __add__(self, other: Survey) -> Survey:
        values = {}
        for name, array in self.values.items():
            joined = np.concatenate([array, other.values[name]])
            values[name] = pd.unique(joined) if joined.dtype == object else _sorted_unique(joined)
        combinations = {
            key: pd.concat([frame, other.combinations[key]]).drop_duplicates()
            for key, frame in self.combinations.items()
        }
        return Survey(
            self.n_rows + other.n_rows,
            self.n_missing + other.n_missing,
            self.na_columns | other.na_columns,
            {k: v + other.infinite[k] for k, v in self.infinite.items()},
            values,
            combinations,
            self.head if len(self.head) else other.head,
        )


def survey_partition(part: pd.DataFrame, plan: ColumnPlan) -> Survey:
    """The first pass over one partition."""
    used = part[plan.columns]
    isna = used.isna()
    missing = isna.any(axis=1).to_numpy()
    kept = used.loc[~missing]
    infinite = {}
    values = {}
    for name in plan.columns:
        column = kept[name]
        if _is_number(column):
            infinite[name] = int(np.isinf(column.to_numpy(dtype=float)).sum())
            if name in plan.group_columns:
                values[name] = _sorted_unique(column.to_numpy())
        else:
            values[name] = np.asarray(pd.unique(column), dtype=object)
    combinations = {
        factors: kept[list(factors)].drop_duplicates().reset_index(drop=True)
        for factors in plan.factor_sets
        if len(factors) > 1
    }
    return Survey(
        n_rows=int(len(kept)),
        n_missing=int(missing.sum()),
        na_columns={str(c) for c in used.columns[isna.any(axis=0).to_numpy()]},
        infinite=infinite,
        values=values,
        combinations=combinations,
        head=kept.head(_HEAD_ROWS).reset_index(drop=True),
    )


@dataclass
class PartitionEncoder:
    """Encodes any partition exactly as every other: same levels, same columns.

    ``design`` is the fit's design without rows (its terms carry the global levels and
    model specs, no codes); ``categories`` the global levels of each factor column."""

    plan: ColumnPlan
    categories: dict[str, list]
    design: Design
    n_rows: int
    n_dropped_na: int
    #: the sorted global values of each numeric grouping column: a term grouped by one of
    #: them is coded by binary search, in the order of its levels (numbers sort as R's)
    numeric_levels: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_survey(cls, plan: ColumnPlan, survey: Survey, na_action: str) -> PartitionEncoder:
        spec = plan.spec
        if survey.n_missing:
            columns = ", ".join(sorted(survey.na_columns))
            if na_action == "fail":
                raise DataError(
                    f"{survey.n_missing} row(s) have missing values (in {columns}) and "
                    "na_action='fail'. Drop them, or pass na_action='omit' to drop them for you."
                )
            warn(
                f"Dropped {survey.n_missing} row(s) with missing values in {columns}.",
                MissingDataWarning,
            )
        if survey.n_rows == 0:
            raise DataError("Every row has a missing value in a used column: nothing to fit.")
        for name, count in survey.infinite.items():
            if count:
                raise DataError(
                    f"Column '{name}' has {count} infinite value(s). Remove or replace them "
                    "before fitting."
                )
        categories = {}
        for name, values in survey.values.items():
            if values.dtype != object:
                continue  # a numeric grouping column: group_codes sorts its values
            series = pd.Series(values, dtype=survey.head[name].dtype)
            if pd.api.types.is_bool_dtype(series.dtype) and name not in plan.group_columns:
                categories[name] = [v for v in ("FALSE", "TRUE") if v in {_tf(x) for x in values}]
            elif pd.api.types.is_bool_dtype(series.dtype):
                continue  # a boolean grouping factor: group_codes orders FALSE, TRUE
            else:
                categories[name] = list(factor_levels(series))
        numeric_levels = {
            name: values
            for name, values in survey.values.items()
            if values.dtype != object and name in plan.group_columns
        }
        encoder = cls(plan, categories, None, survey.n_rows, survey.n_missing, numeric_levels)  # type: ignore[arg-type]
        prototype = encoder._prototype(survey.head)
        X, names, fixed_spec = fc.fixed_matrix(spec.fixed, prototype)
        del X
        terms = []
        for term in spec.random:
            _, columns, term_spec = fc.random_matrix(term.expr, prototype)
            if not columns:
                raise DataError(
                    f"The random-effects term ({term.expr} | {term.group}) has no columns."
                )
            if len(term.factors) == 1:
                name = term.factors[0]
                union = pd.DataFrame({name: survey.values[name]})
            else:
                union = survey.combinations[tuple(term.factors)]
            _, levels = group_codes(encoder.prepare(union, list(union.columns)), term.factors)
            terms.append(
                ReTerm(
                    group=term.group,
                    codes=np.zeros(0, dtype=np.int64),
                    levels=levels,
                    matrix=np.zeros((0, len(columns))),
                    columns=tuple(columns),
                    structure=term.structure,
                    expr=term.expr,
                    factors=term.factors,
                    model_spec=term_spec,
                )
            )
        p = len(names)
        encoder.design = RowlessDesign(
            spec=spec,
            y=np.zeros(0),
            X=np.zeros((0, p)),
            fixed_names=tuple(names),
            terms=tuple(terms),
            weights=None,
            offset=None,
            n_dropped_na=survey.n_missing,
            dropped_columns=(),
            fixed_model_spec=fixed_spec,
            offset_terms=spec.offsets,
            offset_column=plan.offset,
            n_rows=survey.n_rows,
        )
        return encoder

    def _prototype(self, head: pd.DataFrame) -> pd.DataFrame:
        """A few rows holding every level of every factor column, for the model specs."""
        sizes = [len(v) for k, v in self.categories.items() if k not in self.plan.group_columns]
        n = max([len(head), *sizes])
        rows = head.iloc[np.arange(n) % len(head)].reset_index(drop=True)
        for name, levels in self.categories.items():
            if name not in self.plan.group_columns and levels:
                rows[name] = np.asarray(levels, dtype=object)[np.arange(n) % len(levels)]
        return self.prepare(rows, list(rows.columns))

    def prepare(self, part: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
        """Columns as the in-memory fit prepares them, with the global levels."""
        out = {}
        for name in self.plan.needed if columns is None else columns:
            column = part[name]
            levels = self.categories.get(name)
            if levels is not None:
                if pd.api.types.is_bool_dtype(column.dtype):
                    column = column.map(_tf)
                out[name] = pd.Categorical(np.asarray(column, dtype=object), categories=levels)
            elif pd.api.types.is_bool_dtype(column.dtype) or _is_number(column):
                out[name] = column.to_numpy()
            else:
                out[name] = np.asarray(column, dtype=object)
        return pd.DataFrame(out, index=part.index)

    def complete_rows(self, part: pd.DataFrame) -> pd.DataFrame:
        """The partition's rows without a missing value in a used column (na_action)."""
        used = part[self.plan.columns]
        return used.loc[~used.isna().any(axis=1).to_numpy()]

    def rows(self, part: pd.DataFrame) -> PartitionRows:
        """The numeric rows of one partition: y, X, the terms with codes, weights, offset."""
        part = self.complete_rows(part)
        frame = self.prepare(part)
        design = self.design
        y = fc.evaluate_response(self.plan.spec.response, frame) if len(frame) else np.zeros(0)
        if not np.all(np.isfinite(y)):
            raise DataError(
                f"The response '{self.plan.spec.response}' has non-finite values after "
                "transformation (e.g. log of 0). Check its range."
            )
        X = design.encode_fixed(frame) if len(frame) else np.zeros((0, len(design.fixed_names)))
        terms = []
        for term in design.terms:
            if len(frame):
                matrix, codes = self._encode_term(term, frame)
            else:
                matrix, codes = np.zeros((0, term.n_columns)), np.zeros(0, dtype=np.int64)
            terms.append(dataclasses.replace(term, codes=codes, matrix=matrix))
        weights = None
        if self.plan.weights is not None:
            weights = part[self.plan.weights].to_numpy(dtype=float)
            if np.any(weights < 0):
                raise DataError("Weights must be non-negative.")
        offset = self.offset(part, frame)
        return PartitionRows(y, X, terms, weights, offset, part.index)

    def _encode_term(self, term: ReTerm, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """A term's matrix and global codes on complete rows.  A term grouped by one numeric
        column is coded by binary search in that column's sorted global values, whose order
        is its levels' (``ReTerm.encode_rows`` would label and look up every level, ~2 µs
        a level per partition: seconds at a million groups)."""
        values = self.numeric_levels.get(term.factors[0]) if len(term.factors) == 1 else None
        if values is None:
            return term.encode_rows(frame)
        column = frame[term.factors[0]].to_numpy()
        table = _code_table(values)
        if table is None:
            codes = np.searchsorted(values, column).astype(np.int64)
        else:  # integers over a dense range: one gather (binary search costs ~0.5 µs a row)
            codes = table[column - values[0]]
        return fc.encode(term.model_spec, frame), codes

    def offset(self, part: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray | None:
        """The offset of complete rows: ``offset=``'s column plus the formula's
        ``offset()`` terms (evaluated on the prepared ``frame``), as in memory; None
        without either."""
        total = None
        if self.plan.offset is not None:
            total = part[self.plan.offset].to_numpy(dtype=float)
        for expr in self.plan.spec.offsets:
            values = fc.evaluate_numeric(expr, frame) if len(frame) else np.zeros(0)
            total = values if total is None else total + values
        if total is not None and not np.all(np.isfinite(total)):
            raise DataError("The offset has non-finite values (e.g. log of 0). Check its range.")
        return total

    def ordered_terms(self) -> tuple[np.ndarray, list[ReTerm]]:
        order = internal_order(self.design.terms)
        return order, [self.design.terms[i] for i in order]


def _code_table(values: np.ndarray) -> np.ndarray | None:
    """For sorted integer ``values`` spanning at most 4x their count: the code of each
    integer from ``values[0]`` on (−1 for none), else None."""
    if values.dtype.kind not in "iu" or not len(values):
        return None
    span = int(values[-1]) - int(values[0]) + 1
    if span > 4 * len(values):
        return None
    table = np.full(span, -1, dtype=np.int64)
    table[values - values[0]] = np.arange(len(values))
    return table


def _tf(value: Any) -> str:
    return "TRUE" if bool(value) else "FALSE"


@dataclass
class PartitionRows:
    y: np.ndarray
    X: np.ndarray
    terms: list[ReTerm]  # formula order, with codes and matrices
    weights: np.ndarray | None
    offset: np.ndarray | None
    index: pd.Index

    def ordered(self, order: np.ndarray) -> list[ReTerm]:
        return [self.terms[i] for i in order]


def partition_block_sums(part: pd.DataFrame, encoder: PartitionEncoder) -> BlockSums:
    """The second pass over one partition: its cross-product blocks, global codes."""
    rows = encoder.rows(part)
    order, _ = encoder.ordered_terms()
    return BlockSums.of_rows(rows.y, rows.X, rows.ordered(order), rows.weights, rows.offset)


@dataclass(frozen=True)
class RowlessDesign(Design):
    """A design whose rows stay in the partitions: the blocks were formed where they are."""

    n_rows: int = 0

    @property
    def nobs(self) -> int:
        return self.n_rows


def drop_rank_deficient(sums: BlockSums, design: Design) -> tuple[BlockSums, Design]:
    """Drop fixed-effects columns dependent on earlier ones, from XᵀX alone.

    The in-memory rule (|R_jj| ≤ 1e-7 ‖x_j‖ in X = QR, earlier columns kept) read from
    the Cholesky factor of XᵀX, whose diagonal is |R_jj|."""
    p = sums.XyXy.shape[0] - 1
    XtX = sums.XyXy[:p, :p]
    kept: list[int] = []
    for j in range(p):
        norm2 = XtX[j, j]
        if kept:
            block = XtX[np.ix_(kept, kept)]
            cross = XtX[kept, j]
            residual2 = norm2 - cross @ np.linalg.solve(block, cross)
        else:
            residual2 = norm2
        if np.sqrt(max(residual2, 0.0)) > 1e-7 * (np.sqrt(norm2) if norm2 > 0 else 1.0):
            kept.append(j)
    if len(kept) == p:
        return sums, design
    names = list(design.fixed_names)
    dropped = [names[j] for j in range(p) if j not in kept]
    warn(
        f"Fixed-effects model matrix is rank deficient: dropping {len(dropped)} column"
        f"{'s' if len(dropped) > 1 else ''} ({', '.join(dropped)}). They are linear "
        "combinations of the other columns; remove them from the formula to silence this.",
        RankDeficiencyWarning,
    )
    columns = [*kept, p]
    sums = dataclasses.replace(
        sums,
        C1=sums.C1[:, :, columns],
        C2=sums.C2[:, columns],
        XyXy=sums.XyXy[np.ix_(columns, columns)],
    )
    design = dataclasses.replace(
        design,
        X=np.zeros((0, len(kept))),
        fixed_names=tuple(names[j] for j in kept),
        dropped_columns=tuple(dropped),
    )
    return sums, design
