"""Fits beyond one machine's memory: :func:`mixedmodels.lmer` and :func:`mixedmodels.glmer`
on a ``dask.dataframe.DataFrame`` or a parquet path or glob, run on ``dask.distributed``.

An LMM's cross-product blocks are sums over rows, hence over partitions: a first pass
fixes every level (global codes in R's order) and the NA counts, a second forms the blocks
per partition and adds them in a tree; the optimizer then runs on the blocks in the client
exactly as in memory.  A GLMM makes one such pass per PIRLS step, on persisted partitions.

Needs the optional extra ``mixedmodels[dask]`` (dask, distributed, pyarrow); this module
imports none of them, so ``import mixedmodels`` works without.

May import: the engines and :mod:`mixedmodels.models` (its model is a
:class:`~mixedmodels.LinearMixedModel`); :mod:`mixedmodels.fitting` dispatches here.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from ..errors import MixedModelsError


def is_scale_input(data: Any) -> bool:
    """Whether ``data`` is a Dask DataFrame or a parquet path or glob (the scale-out path)."""
    if isinstance(data, str | os.PathLike):
        return True
    paths = isinstance(data, list | tuple) and data
    if paths and all(isinstance(d, str | os.PathLike) for d in data):
        return True
    return type(data).__module__.split(".")[0] in ("dask", "dask_expr")


def require_dask() -> None:
    """Raise a clear error when the optional extra is missing."""
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise MixedModelsError(
            f"Fitting on Dask data or parquet needs the optional extra ({exc.name} is missing):"
            " pip install 'mixedmodels[dask]'. Or pass a pandas DataFrame."
        ) from None


def parquet_paths_exist(source: Any) -> bool:
    paths = source if isinstance(source, list | tuple) else [source]
    return all(os.path.exists(p) or glob.glob(str(p)) for p in paths)
