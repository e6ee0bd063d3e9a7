"""Model comparison tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def aic_table(models: Mapping[str, Any]) -> pd.DataFrame:
    """The seed's "model | AIC | ΔAIC" table, sorted by AIC.

    For REML fits the AIC is computed from the REML criterion, exactly as lme4's
    ``AIC()`` reports it; such values are only comparable between models with the
    same fixed effects (refit with ``reml=False`` otherwise).

    Parameters
    ----------
    models : mapping of name -> fitted model
        Anything with ``aic`` (and optionally ``npar``, ``reml``) attributes.

    Returns
    -------
    DataFrame with columns ``model, npar, AIC, delta_AIC``.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> data = mm.datasets.gpa(seed=1)
    >>> table = mm.aic_table({"slopes": mm.lmer("gpa ~ occasion + (occasion | student)", data),
    ...                       "intercepts": mm.lmer("gpa ~ occasion + (1 | student)", data)})
    >>> float(table["delta_AIC"].iloc[0])
    0.0
    """
    if not models:
        raise ValueError("aic_table needs at least one model.")
    rows = []
    for name, model in models.items():
        if not hasattr(model, "aic"):
            raise TypeError(f"Model {name!r} has no AIC (got {type(model).__name__}).")
        rows.append((name, getattr(model, "npar", None), float(model.aic)))
    table = pd.DataFrame(rows, columns=["model", "npar", "AIC"]).sort_values("AIC", kind="stable")
    table["delta_AIC"] = table["AIC"] - table["AIC"].min()
    return table.reset_index(drop=True)
