"""A linear mixed model fitted on Dask data: the in-memory model on the summed blocks, with
predictions, fitted values and residuals as lazy Dask series over the partitions."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import check_choice
from ..lmm.deviance import Solution
from ..models.generalized_mixed import GeneralizedLinearMixedModel
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

    def bootstrap_simulator(self, func: Any, seeds: list[np.random.SeedSequence]) -> Any:
        """What :meth:`bootstrap` refits: every replicate's response drawn in one pass over
        the partitions (:mod:`mixedmodels.scale.bootstrap`).

        Examples
        --------
        >>> import mixedmodels as mm
        >>> m = mm.lmer("y ~ x + (1 | g)", "data/*.parquet")  # doctest: +SKIP
        >>> m.bootstrap(200, seed=1).confint()  # doctest: +SKIP
        """
        from .bootstrap import DaskSimulator

        return DaskSimulator(self, func, seeds)

    def simulate(self, nsim: int = 1, seed: Any = None, re_form: Any = "~0") -> np.ndarray:
        """Refused: the simulated responses would be as many rows as the data, in memory.
        :meth:`bootstrap` draws and refits them partition by partition."""
        raise _rows_refusal("simulate()", "bootstrap() (its responses stay on the workers)")

    @property
    def plot(self) -> Any:
        """Refused: the diagnostic plots read every row."""
        raise _rows_refusal("the plot accessor", "a fit in memory on a sample of the rows")


def _rows_refusal(tool: str, instead: str) -> Exception:
    from ..errors import refuse

    return refuse("model fitted on Dask data", tool, instead, "the rows stay in the partitions")


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


class RowlessGlmmProblem:
    """What a GLMM fitted on Dask data keeps of its problem: the blocks at the mode and
    the family (the rows stay in the partitions)."""

    nagq = 1

    def __init__(self, template: Any, family: Any):
        self.template = template
        self.family = family

    @property
    def n_theta(self) -> int:
        return self.template.n_theta

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        from ..errors import MixedModelsError

        raise MixedModelsError(
            f"This GLMM was fitted on Dask data: its rows stay in the partitions, so "
            f"'{name}' of its problem is not available. Refit in memory (a pandas "
            "DataFrame) for refits, profiles, bootstraps and simulations."
        )


class DaskGeneralizedLinearMixedModel(GeneralizedLinearMixedModel):
    """:class:`~mixedmodels.GeneralizedLinearMixedModel` whose rows stay in Dask
    partitions: the estimates, tables and vcov are the in-memory model's; ``predict``,
    ``fitted`` and ``residuals`` of the fitted rows (or Dask / parquet newdata) are lazy,
    and :attr:`fit_log` has one line per pass."""

    source: Any
    encoder: PartitionEncoder
    fit_log: list[str]

    attach = DaskLinearMixedModel.attach
    _portable = DaskLinearMixedModel._portable
    _over_rows = DaskLinearMixedModel._over_rows
    plot = DaskLinearMixedModel.plot

    def simulate(self, nsim: int = 1, seed: Any = None, re_form: Any = "~0") -> np.ndarray:
        """Refused: the simulated responses would be as many rows as the data, in memory."""
        raise _rows_refusal("simulate()", "a fit in memory (a pandas DataFrame)")

    def predict(
        self,
        newdata: Any = None,
        re_form: Any = None,
        type: str = "link",
        allow_new_levels: bool = False,
    ):
        """Predictions on the link (default) or response scale: a lazy Dask series for
        the fitted rows or Dask / parquet newdata, an ndarray for in-memory newdata.

        Examples
        --------
        >>> import mixedmodels as mm
        >>> m = mm.glmer("y ~ x + (1 | g)", "data/*.parquet", family="binomial")  # doctest: +SKIP
        >>> m.predict(type="response").compute()  # doctest: +SKIP
        """
        check_choice("type", type, ("link", "response"))
        if newdata is not None and not is_scale_input(newdata):
            return super().predict(newdata, re_form, type, allow_new_levels)
        self._selected_terms(re_form)
        if newdata is None:
            eta = self._over_rows(self.source, "fitted", re_form)
        else:
            eta = self._over_rows(as_dask_frame(newdata), "predict", re_form)
        if type == "link":
            return eta
        inverse = self.family.link.inverse
        return eta.map_partitions(
            lambda part: pd.Series(inverse(part.to_numpy()), index=part.index, name=part.name),
            meta=eta._meta,
        )

    def fitted(self):
        """Fitted means on the response scale, lazily."""
        return self.predict(type="response")

    def residuals(self, type: str = "deviance"):
        """Residuals of the fitted rows, lazily: ``deviance`` (default, as lme4),
        ``pearson``, ``response`` or ``working`` (as
        :meth:`GeneralizedLinearMixedModel.residuals`)."""
        import dask

        check_choice("type", type, ("deviance", "pearson", "response", "working"))
        light = dask.delayed(self._portable(), pure=True)
        encoder = dask.delayed(self.encoder, pure=True)
        return self.source.map_partitions(
            _glmm_residuals,
            light,
            encoder,
            self.family,
            type,
            meta=pd.Series(dtype=float, name="residuals"),
        )

    def scaled_residual_quantiles(self) -> np.ndarray:
        return np.full(5, np.nan)


def _glmm_residuals(
    part: pd.DataFrame, light: LinearMixedModel, encoder: PartitionEncoder, family: Any, type: str
) -> pd.Series:
    """One partition's GLMM residuals (the in-memory formulas on its rows)."""
    from ..glmm.families import working_residual

    rows = encoder.complete_rows(part)
    columns = list(dict.fromkeys([*encoder.plan.needed, *_offset_columns(encoder)]))
    frame = encoder.prepare(rows, columns)
    if not len(frame):
        return pd.Series(np.zeros(0), index=rows.index, name="residuals")
    eta = np.asarray(light.predict(frame, None), dtype=float)
    mu = family.link.inverse(eta)
    y = encoder.rows(rows).y
    wt = np.ones(len(y))
    if encoder.plan.weights is not None:
        wt = rows[encoder.plan.weights].to_numpy(dtype=float)
    if type == "response":
        out = y - mu
    elif type == "pearson":
        out = (y - mu) * np.sqrt(wt / family.variance(mu))
    elif type == "working":
        out = working_residual(y, mu, family.link.mu_eta(eta))
    else:
        dev = family.deviance_residuals(y, mu, wt)
        out = np.sign(y - mu) * np.sqrt(np.maximum(dev, 0.0))
    return pd.Series(out, index=rows.index, name="residuals")
