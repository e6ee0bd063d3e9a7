"""``lmer`` on Dask data: two passes over the partitions, then the in-memory optimizer."""

from __future__ import annotations

from typing import Any

from ..errors import DataError
from ..frontend.checks import check_lmm_design
from ..frontend.formula import parse_formula
from ..lmm.crossprods import CrossProducts, check_tail_size
from ..lmm.devfun import optimize_deviance
from ..lmm.deviance import deviance
from ..lmm.optimize import Control, warn_if_residual_vanishes, warn_if_singular
from .cluster import PassLog, as_dask_frame, fit_client, tree_sum
from .encoding import (
    ColumnPlan,
    PartitionEncoder,
    drop_rank_deficient,
    partition_block_sums,
    survey_partition,
)
from .memory import available_bytes, check_fits


def first_pass(
    client: Any, frame: Any, plan: ColumnPlan, na_action: str, log: PassLog
) -> PartitionEncoder:
    """Levels, NA counts and infinite values of every partition, made one encoder."""
    survey = tree_sum(client, frame.to_delayed(), survey_partition, (plan,), "levels", log)
    return PartitionEncoder.from_survey(plan, survey, na_action)


def open_source(data: Any, spec, weights: Any, offset: Any) -> tuple[Any, ColumnPlan]:
    """The Dask frame of the used columns, and what each column is."""
    frame = as_dask_frame(data)
    plan = ColumnPlan.of(spec, weights, offset, list(frame.columns))
    return frame[plan.columns], plan


def lmer_dask(
    formula: str,
    data: Any,
    *,
    reml: bool,
    weights: Any,
    na_action: str,
    control: Control,
    offset: Any,
):
    """See :func:`mixedmodels.lmer`; ``data`` a dask DataFrame or parquet path or glob."""
    from .model import DaskLinearMixedModel

    spec = parse_formula(formula)
    if not spec.random:
        raise DataError(
            "The formula has no random-effects term such as (1 | group). "
            "Use mixedmodels.lm() for a model without random effects."
        )
    if not spec.response:
        raise DataError("The formula has no response: write 'y ~ ...'.")
    if any(t.structure != "us" for t in spec.random):
        raise DataError(
            "glmmTMB-style structured terms (diag, cs, ar1, ...) are not fitted on Dask data "
            "yet; use lme4 terms such as (x || g), or fit in memory with a pandas DataFrame."
        )
    if na_action not in ("omit", "fail"):
        raise ValueError(f"na_action: expecting one of {{'omit', 'fail'}}. Got {na_action!r}.")
    frame, plan = open_source(data, spec, weights, offset)
    log = PassLog()
    with fit_client() as client:
        encoder = first_pass(client, frame, plan, na_action, log)
        check_lmm_design(encoder.design)
        order, ordered = encoder.ordered_terms()
        check_tail_size(ordered)
        check_fits(ordered, len(encoder.design.fixed_names), *available_bytes(client))
        [shared] = client.scatter([encoder], broadcast=True)
        sums = tree_sum(client, frame.to_delayed(), partition_block_sums, (shared,), "blocks", log)
    sums, design = drop_rank_deficient(sums, encoder.design)
    encoder.design = design
    cp = CrossProducts.from_sums(sums, ordered, order)

    def func(theta):
        return deviance(cp, theta, reml)

    opt, converged = optimize_deviance(func, cp, reml, control, design.nobs)
    log.record(f"optimizer: {opt.evaluations} deviance evaluations on the blocks")
    model = DaskLinearMixedModel(design, cp, opt, reml, converged)
    model.attach(frame, encoder, log)
    warn_if_singular(opt.final, opt.lower)
    warn_if_residual_vanishes(opt.final, opt.lower)
    return model
