"""Inference on fitted models: intervals, tests and model comparison (issue: Inference)."""

from __future__ import annotations


class InferenceMixin:
    """Methods of fitted mixed models for inference (confint, profile, bootstrap, ddf tests).

    Mixed into :class:`mixedmodels.results.LinearMixedModel`; implementations live in
    the modules of this package.
    """
