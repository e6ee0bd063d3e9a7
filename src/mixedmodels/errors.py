"""Errors and warnings shared by the whole package.

Every error derives from :class:`MixedModelsError`; every warning is its own
category so users can filter it (``warnings.simplefilter("ignore", SingularFitWarning)``).
"""

from __future__ import annotations


class MixedModelsError(Exception):
    """Base class of every error raised by mixedmodels."""


class FormulaError(MixedModelsError, ValueError):
    """A model formula could not be parsed.

    Parameters
    ----------
    message : str
        What is wrong and how to fix it.
    formula : str, optional
        The formula text; when given with ``position`` the message shows a caret.
    position : int, optional
        0-based character offset of the problem in ``formula``.
    """

    def __init__(self, message: str, formula: str | None = None, position: int | None = None):
        self.formula = formula
        self.position = position
        text = message
        if formula is not None and position is not None:
            position = max(0, min(position, len(formula)))
            text = f"{message}\n  {formula}\n  {' ' * position}^ (position {position})"
        super().__init__(text)


class DataError(MixedModelsError, ValueError):
    """The data do not fit the model: unknown columns, bad values, impossible designs."""


class ConvergenceWarning(UserWarning):
    """The optimizer stopped without satisfying the convergence checks."""


class SingularFitWarning(UserWarning):
    """The fit is on the boundary: a variance is zero or a correlation is +-1."""


class RankDeficiencyWarning(UserWarning):
    """Fixed-effects columns were linearly dependent and some were dropped."""


class MissingDataWarning(UserWarning):
    """Rows with missing values were dropped before fitting."""


class ProfileWarning(UserWarning):
    """A likelihood profile could not bracket an interval bound or was not monotone."""


class RefitWarning(UserWarning):
    """REML fits were refitted by maximum likelihood before a likelihood-ratio test."""
