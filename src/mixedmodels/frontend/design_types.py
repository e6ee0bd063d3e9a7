"""What the front end hands downstream: :class:`ReTerm` (one random-effects term as group
codes plus a small n x k matrix, never a dense Z) and :class:`Design` (the response, the
fixed-effects matrix, the terms, weights and offset, and what prediction needs to encode
new rows)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import DataError
from . import _formulaic_compat as fc
from .columns import evaluate_numeric
from .factors import group_codes
from .formula import ModelSpec

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
