"""The profiler of a fitted model: lmer's or glmer's, the one place that tells them apart
(:mod:`.profile` holds the profiling itself, :mod:`.glmm_profile` the glmer criterion)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .glmm_profile import GlmmProfiler
from .profile import LmmProfiler, Profiler

if TYPE_CHECKING:  # pragma: no cover
    from .._protocols import MixedModel as LinearMixedModel


def make_profiler(model: LinearMixedModel, alphamax: float = 0.01, maxpts: int = 100) -> Profiler:
    """The profiler of a fitted model: :class:`LmmProfiler` for lmer fits,
    :class:`~.glmm_profile.GlmmProfiler` for glmer fits."""
    if getattr(model, "family", None) is not None:
        return GlmmProfiler(model, alphamax=alphamax, maxpts=maxpts)  # type: ignore[arg-type]
    return LmmProfiler(model, alphamax=alphamax, maxpts=maxpts)
