"""Warnings that point at the user's line: the stack level is found, not counted by hand.

``warnings.warn(..., stacklevel=n)`` needs ``n`` to be the number of package frames between
the warning and the user's call, which changes whenever a function moves or a call chain
grows.  :func:`warn` walks the stack instead and attributes the warning to the first frame
outside :mod:`mixedmodels` (a doctest's frame counts as outside: it is the user's line).
"""

from __future__ import annotations

import sys
import warnings

_PACKAGE = __name__.split(".")[0]


def _inside_package(frame) -> bool:
    name = frame.f_globals.get("__name__", "")
    if frame.f_code.co_filename.startswith("<doctest"):
        return False
    return name == _PACKAGE or name.startswith(_PACKAGE + ".")


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn(message, category)``, attributed to the first frame outside the
    package (the user's call of ``lmer``, ``confint``, ...) however deep it is raised.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("a warning with its figures", UserWarning)
    >>> caught[0].filename.startswith("<doctest")  # this line, not this module's
    True
    """
    frame = sys._getframe(1)
    level = 2
    while frame is not None and _inside_package(frame):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
