"""Confidence intervals of a fitted mixed model's parameters, as lme4's ``confint``:
likelihood profile (:mod:`.profile`), Wald (fixed effects) or parametric bootstrap
(:mod:`.bootstrap`).  The free function behind
:meth:`mixedmodels.inference.InferenceMixin.confint`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .._threads import blas_threads_for
from .wald import is_glmm

if TYPE_CHECKING:  # pragma: no cover
    from .._protocols import MixedModel as LinearMixedModel

ConfintMethod = Literal["profile", "wald", "boot"]
BootType = Literal["percentile", "basic", "normal"]
_METHODS = ("profile", "wald", "boot")
_BOOT_TYPES = ("percentile", "basic", "normal")


def check_level(level: float) -> float:
    """``level`` as a float strictly between 0 and 1 (ValueError otherwise)."""
    if not (isinstance(level, float | int) and 0.0 < float(level) < 1.0):
        raise ValueError(f"level must be a number strictly between 0 and 1. Got {level!r}.")
    return float(level)


def parameter_names(model: LinearMixedModel) -> list[str]:
    """lme4's ``oldNames = FALSE`` names: variance parameters, sigma, fixed effects."""
    from ._params import VarianceLayout

    names = list(VarianceLayout.of(model.crossprods).names)
    if is_glmm(model) and model.family.scale_free:  # binomial/poisson: no scale
        names.remove("sigma")
    return names + list(model.design.fixed_names)


def confint(
    model: LinearMixedModel,
    method: ConfintMethod = "profile",
    level: float = 0.95,
    parm: Any = None,
    *,
    type: BootType = "percentile",
    nsim: int = 500,
    seed: int | None = None,
    n_jobs: int | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Confidence intervals for the variance parameters, σ and the fixed effects; see
    :meth:`mixedmodels.inference.InferenceMixin.confint`."""
    from scipy import stats

    from .profile import profile_confint, select_parameters
    from .profilers import make_profiler

    if method not in _METHODS:
        raise ValueError(f"method: expecting one of {set(_METHODS)}. Got {method!r}.")
    level = check_level(level)
    if method == "profile":
        with blas_threads_for(model.crossprods):  # as profile(): BLAS threads spin there
            profiler = make_profiler(model)
            return profile_confint(profiler, parm=parm, level=level, progress=progress)
    names = parameter_names(model)
    nvp = len(names) - len(model.design.fixed_names)
    which = select_parameters(names, nvp, parm)
    alpha = (1.0 - level) / 2.0
    if method == "wald":
        z = stats.norm.ppf(1.0 - alpha)
        lower = np.full(len(names), np.nan)
        upper = np.full(len(names), np.nan)
        beta = model.fixef.to_numpy()
        se = np.sqrt(np.diag(model.vcov.to_numpy()))
        lower[nvp:] = beta - z * se
        upper[nvp:] = beta + z * se
        table = pd.DataFrame({"lower": lower, "upper": upper}, index=names)
        return table.iloc[which]
    if type not in _BOOT_TYPES:
        raise ValueError(f"type: expecting one of {set(_BOOT_TYPES)}. Got {type!r}.")
    boot = model.bootstrap(nsim, seed=seed, n_jobs=n_jobs, progress=progress)
    return boot.confint(level=level, type=type).iloc[which]
