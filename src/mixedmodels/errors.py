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


class ScaleWarning(UserWarning):
    """Covariates are on very different scales (lme4's ``check.scaleX``)."""


class MissingDataWarning(UserWarning):
    """Rows with missing values were dropped before fitting."""


class ProfileWarning(UserWarning):
    """A likelihood profile could not bracket an interval bound or was not monotone."""


class RefitWarning(UserWarning):
    """REML fits were refitted by maximum likelihood before a likelihood-ratio test."""


class OptionError(MixedModelsError, ValueError, TypeError):
    """An argument is not one of the values the function accepts (see :func:`check_choice`)."""


def check_choice(name: str, value: object, choices: tuple) -> object:
    """The one place options are validated: ``value`` if it is one of ``choices``.

    Examples
    --------
    >>> check_choice("na_action", "omit", ("omit", "exclude", "fail"))
    'omit'
    >>> check_choice("reml", "no", (True, False))
    Traceback (most recent call last):
    ...
    mixedmodels.errors.OptionError: reml: expecting one of (True, False). Got 'no'.
    """
    if hasattr(value, "item") and not isinstance(value, str):
        try:
            value = value.item()  # numpy scalars: np.True_ is True
        except (TypeError, ValueError):
            pass
    # bool is a subclass of int and 1 == True: compare types as well as values
    if not any(value == c and type(value) is type(c) for c in choices):
        raise OptionError(f"{name}: expecting one of {choices}. Got {value!r}.")
    return value


class UnsupportedToolError(MixedModelsError, ValueError):
    """A tool that this kind of fitted model cannot support (raised by :func:`refuse`)."""


def refuse(kind: str, tool: str, instead: str, why: str = "") -> UnsupportedToolError:
    """The one error for a model × tool cell that is refused: names the model kind, the
    tool, why, and what to use instead.

    Examples
    --------
    >>> print(refuse("glmer fit", "Kenward-Roger df", "ddf='normal'"))
    Kenward-Roger df is not available for a glmer fit. Use ddf='normal' instead.
    """
    reason = f" ({why})" if why else ""
    return UnsupportedToolError(
        f"{tool} is not available for a {kind}{reason}. Use {instead} instead."
    )
