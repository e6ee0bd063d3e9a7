"""What the lower layers call the objects the upper layers build, without importing them.

Inference and the toolbox take a fitted model as their argument, and the fitted models
delegate their methods to them; if inference imported the model classes the two would import
each other.  So the classes have small bases here: :class:`MixedModel` (every ``lmer`` fit),
:class:`GeneralizedMixedModel` (every ``glmer`` fit), which the tools name in annotations and
test with ``isinstance``.  Likewise the GLMM gradient reads a PIRLS problem and its state
(:class:`GlmmProblem`, :class:`PirlsState`) that :mod:`mixedmodels.glmm.pirls` builds on
that gradient.  This module imports nothing of the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd


class MixedModel:
    """Base of every fitted linear mixed model (:class:`mixedmodels.LinearMixedModel` and
    its subclasses); what the tools read of it is its public surface (``fixef``, ``theta``,
    ``sigma``, ``design``, ``crossprods``, ``objective``, ...).  It adds no behaviour."""

    __slots__ = ()

    if TYPE_CHECKING:  # pragma: no cover - the attributes every tool may read
        formula: str
        theta: np.ndarray
        fixef: pd.Series
        sigma: float
        vcov: pd.DataFrame
        nobs: int
        design: Any
        crossprods: Any
        objective: Any
        opt: Any
        reml: bool

        def __getattr__(self, name: str) -> Any: ...


class GeneralizedMixedModel(MixedModel):
    """Base of every fitted generalized linear mixed model
    (:class:`mixedmodels.GeneralizedLinearMixedModel`): a :class:`MixedModel` with a
    ``family`` and a ``problem`` (the PIRLS problem at the estimate)."""

    __slots__ = ()


class GlmmProblem(Protocol):
    """The PIRLS problem of :mod:`mixedmodels.glmm.pirls` as its gradient reads it."""

    y: np.ndarray
    X: np.ndarray
    offset: np.ndarray
    prior_weights: np.ndarray
    family: Any
    nagq: int
    ordered_terms: Any
    template: Any
    scalar_single: bool


class PirlsState(Protocol):
    """The converged state of PIRLS at (θ, β) (:class:`mixedmodels.glmm.pirls.PirlsResult`)."""

    u: list[np.ndarray]
    eta: np.ndarray
    mu: np.ndarray
    weights: np.ndarray
    factorization: Any
    pieces: Any
