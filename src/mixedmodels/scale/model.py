"""A linear mixed model fitted on Dask data: the in-memory model on the summed blocks, with
predictions, fitted values and residuals as lazy Dask series over the partitions."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from ..lmm.deviance import Solution
from ..models.linear_mixed import LinearMixedModel
from . import is_scale_input
from .cluster import PassLog, as_dask_frame
from .encoding import PartitionEncoder


class DaskLinearMixedModel(LinearMixedModel):
    """:class:`~mixedmodels.LinearMixedModel` whose rows stay in Dask partitions.

    Every estimate, table and test that reads the blocks is the in-memory model's;
    ``predict``, ``fitted`` and ``residuals`` return lazy ``dask.dataframe.Series``
    (``.compute()`` them), and :attr:`fit_log` has one line per pass.
    """

    source: Any
    encoder: PartitionEncoder
    fit_log: list[str]

    def attach(self, source: Any, encoder: PartitionEncoder, log: PassLog) -> None:
        self.source = source
        self.encoder = encoder
        self.fit_log = log.lines

    def _portable(self) -> LinearMixedModel:
        """The model without its blocks: what one partition needs to predict (β, the
        modes, the terms' levels and specs), cheap to send to workers."""
        solution = self._solution
        light = copy.copy(self)
        light.__class__ = LinearMixedModel
        light.crossprods = SimpleNamespace(terms=self.crossprods.terms)
        light.__dict__["_solution"] = Solution(
            solution.beta, solution.sigma, None, solution.b, [], 0.0, 0.0
        )
        for name in ("source", "encoder", "fit_log"):
            light.__dict__.pop(name, None)
        return light

    def predict(self, newdata: Any = None, re_form: Any = None):
        """Predictions: a lazy Dask series for the fitted rows or Dask / parquet newdata,
        an ndarray for in-memory newdata (as :meth:`LinearMixedModel.predict`).

        Examples
        --------
        >>> import mixedmodels as mm
        >>> m = mm.lmer("y ~ x + (1 | g)", "data/*.parquet")  # doctest: +SKIP
        >>> m.predict().compute()  # doctest: +SKIP
        """
        self._selected_terms(re_form)  # an unknown term fails here, not on a worker
        if newdata is None:
            return self._over_rows(self.source, "fitted", re_form)
        if is_scale_input(newdata):
            return self._over_rows(as_dask_frame(newdata), "predict", re_form)
        return super().predict(newdata, re_form)

    def fitted(self):
        """Fitted values with all random effects, lazily (lme4's ``fitted``)."""
        return self._over_rows(self.source, "fitted", None)

    def residuals(self):
        """Response residuals y − fitted, lazily."""
        return self._over_rows(self.source, "residuals", None)

    def _over_rows(self, frame: Any, what: str, re_form: Any):
        import dask

        light = dask.delayed(self._portable(), pure=True)
        encoder = dask.delayed(self.encoder, pure=True)
        return frame.map_partitions(
            _partition_values,
            light,
            encoder,
            what,
            re_form,
            meta=pd.Series(dtype=float, name=what),
        )

    def scaled_residual_quantiles(self) -> np.ndarray:
        """Min, quartiles and max of the scaled residuals (dask's quantiles: approximate
        between partitions) for the summary."""
        scaled = self._over_rows(self.source, "scaled", None)
        return np.asarray(scaled.quantile([0, 0.25, 0.5, 0.75, 1]).compute())


def _partition_values(
    part: pd.DataFrame,
    light: LinearMixedModel,
    encoder: PartitionEncoder,
    what: str,
    re_form: Any,
) -> pd.Series:
    """One partition's predictions, fitted values or residuals."""
    # predict() adds the offset (offset= column and offset() terms) as in memory
    columns = list(dict.fromkeys([*encoder.plan.needed, *_offset_columns(encoder)]))
    if what == "predict":
        frame = encoder.prepare(part, [c for c in columns if c in part.columns])
        values = light.predict(frame, re_form) if len(frame) else np.zeros(0)
        return pd.Series(values, index=part.index, name=what)
    rows = encoder.complete_rows(part)
    frame = encoder.prepare(rows, columns)
    if not len(frame):
        return pd.Series(np.zeros(0), index=rows.index, name=what)
    values = light.predict(frame, re_form)
    if what in ("residuals", "scaled"):
        values = encoder.rows(rows).y - values
    if what == "scaled":  # the summary's: residuals / σ, times √w
        values = values / light.sigma
        if encoder.plan.weights is not None:
            values = values * np.sqrt(rows[encoder.plan.weights].to_numpy(dtype=float))
    return pd.Series(values, index=rows.index, name=what)


def _offset_columns(encoder: PartitionEncoder) -> list[str]:
    return [encoder.plan.offset] if encoder.plan.offset is not None else []
