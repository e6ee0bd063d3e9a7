"""Residual variance functions and correlation structures (nlme) (issue: residual structures)."""

from __future__ import annotations


class ResidualMixin:
    """Methods of fitted mixed models about the residual structure.

    Mixed into :class:`mixedmodels.results.LinearMixedModel`.
    """
