"""Progress bars for the long loops (profiles, bootstraps, simulation draws).

``progress=None`` (the default of every long-running method) shows a bar only where someone
watches: standard error is a terminal, or the code runs in a Jupyter kernel. Tests, CI logs
and pipes stay clean. ``True`` forces the bar (on standard error), ``False`` hides it.
tqdm's own ``disable=None`` cannot be used for this: a Jupyter kernel's stderr is not a TTY,
so it would hide the bar exactly where tqdm.auto draws its notebook widget.
"""

from __future__ import annotations

import sys
from typing import Any

from .errors import MixedModelsError


def in_notebook() -> bool:
    """True inside a Jupyter (IPython kernel) session."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ipython = shell.get_ipython()
    except AttributeError:  # pragma: no cover - a stub module named IPython
        return False
    return ipython is not None and "IPKernelApp" in getattr(ipython, "config", {})


def wants_progress(progress: bool | None) -> bool:
    """Resolve a ``progress`` argument: None → on in a terminal or a notebook."""
    if progress is None:
        stream = sys.stderr
        isatty = getattr(stream, "isatty", None)
        return in_notebook() or bool(isatty is not None and isatty())
    if not isinstance(progress, bool):
        raise ProgressArgumentError(
            f"progress: expecting True, False or None (automatic). Got {progress!r}."
        )
    return progress


class ProgressArgumentError(MixedModelsError, ValueError):
    """``progress=`` is neither a bool nor None."""


def progress_bar(progress: bool | None, **options: Any) -> Any:
    """A ``tqdm.auto`` bar (``total=``, ``desc=``, ``unit=`` ...), disabled unless
    :func:`wants_progress` says so; it goes away when done (``leave=False``)."""
    from tqdm.auto import tqdm

    options.setdefault("leave", False)
    return tqdm(disable=not wants_progress(progress), **options)
