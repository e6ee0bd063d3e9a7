"""The seed's toolbox on fitted models: simulation intervals, plots, equations (issue: toolbox)."""

from __future__ import annotations


class ToolboxMixin:
    """Methods of fitted mixed models for REsim, predictInterval, plots and LaTeX.

    Mixed into :class:`mixedmodels.results.LinearMixedModel`.
    """
