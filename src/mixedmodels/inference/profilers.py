"""The profiler of a fitted model: lmer's or glmer's, the one place that tells them apart
(:mod:`.profile` holds the profiling itself, :mod:`.glmm_profile` the glmer criterion),
and :func:`profile_model`, the profile of a fitted model behind its ``profile()``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._threads import blas_threads_for
from .glmm_profile import GlmmProfiler
from .profile import LmmProfiler, Profiler, profile_table, select_parameters

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .._protocols import MixedModel as LinearMixedModel


def make_profiler(model: LinearMixedModel, alphamax: float = 0.01, maxpts: int = 100) -> Profiler:
    """The profiler of a fitted model: :class:`LmmProfiler` for lmer fits,
    :class:`~.glmm_profile.GlmmProfiler` for glmer fits."""
    if getattr(model, "family", None) is not None:
        return GlmmProfiler(model, alphamax=alphamax, maxpts=maxpts)  # type: ignore[arg-type]
    return LmmProfiler(model, alphamax=alphamax, maxpts=maxpts)


def profile_model(
    model: LinearMixedModel,
    parm: object = None,
    *,
    alphamax: float = 0.01,
    maxpts: int = 100,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Likelihood profiles of a fitted model's parameters; see
    :meth:`mixedmodels.inference.InferenceMixin.profile`."""
    profiler = make_profiler(model, alphamax=alphamax, maxpts=maxpts)
    which = select_parameters(profiler.names, profiler.nvp, parm)
    with blas_threads_for(model.crossprods):
        table = profile_table(profiler, which, progress=progress)
    table["parameter"] = table["parameter"].replace({"(Intercept)": "Intercept"})
    return table
