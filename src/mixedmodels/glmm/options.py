"""The checks glmer makes of its family and ``nagq`` against the formula, before any row
is read: the same for the in-memory fit and the fit on Dask data."""

from __future__ import annotations

import numpy as np

from ..errors import DataError, OptionError
from ..frontend.formula import ModelSpec
from .families import Family, Gaussian


def check_glmer_options(family: Family, nagq: object, spec: ModelSpec) -> None:
    """Refuse what no glmer fit takes, naming the fix.

    Examples
    --------
    >>> from mixedmodels.frontend.formula import parse_formula
    >>> from mixedmodels.glmm.families import get_family
    >>> check_glmer_options(get_family("binomial"), 1, parse_formula("y ~ x + (1 | g)"))
    >>> check_glmer_options(get_family("poisson"), -1, parse_formula("y ~ x + (1 | g)"))
    Traceback (most recent call last):
    ...
    mixedmodels.errors.OptionError: nagq must be a non-negative integer. Got -1.
    """
    if isinstance(family, Gaussian):
        raise OptionError(
            "glmer does not fit the gaussian family; use lmer() for a linear mixed model."
        )
    if not isinstance(nagq, int | np.integer) or nagq < 0:
        raise OptionError(f"nagq must be a non-negative integer. Got {nagq!r}.")
    if not family.scale_free and nagq > 1:
        raise OptionError(
            f"nagq = {nagq}: adaptive Gauss-Hermite quadrature is not implemented for the "
            f"{family.r_name} family, whose dispersion is estimated; use nagq=1 (Laplace)."
        )
    if not spec.random:
        raise DataError("The formula has no random-effects term such as (1 | group).")
    if nagq > 1 and (
        len(spec.random) != 1 or spec.random[0].expr.replace(" ", "") not in ("1", "0+1")
    ):
        raise OptionError(
            f"nagq = {nagq} (adaptive Gauss-Hermite) needs exactly one scalar random-effects "
            "term such as (1 | group); use nagq=1 (Laplace) for this model."
        )
