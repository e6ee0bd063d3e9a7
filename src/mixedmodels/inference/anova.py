"""Likelihood-ratio tests of nested linear mixed models, as lme4's ``anova(m1, m2, ...)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._warnings import warn
from ..errors import DataError, MixedModelsError, RefitWarning
from ..lmm.optimize import Control, check_convergence, minimize

if TYPE_CHECKING:  # pragma: no cover
    from .._protocols import MixedModel as LinearMixedModel


def refit_ml(model: LinearMixedModel) -> LinearMixedModel:
    """The ML fit of the same model, warm-started from the REML estimates (lme4's
    ``refitML``): the model's own objective made ML (:meth:`~mixedmodels.models.objective.
    LmmObjective.ml`), so a residual structure or structured covariance terms are kept.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> refit_ml(m).reml
    False
    """
    if not model.reml:
        return model
    objective = model.objective.ml()
    opt = minimize(objective, objective.start, objective.lower, Control())
    refitted = objective.refitted_model(opt)
    refitted.converged = check_convergence(objective, opt)
    return refitted


def _covariance_parameters(model: LinearMixedModel) -> set[tuple[str, str, str]]:
    """(group, column, column) for every variance and covariance the model estimates."""
    from ..lmm.covariance import Diagonal

    out = set()
    for term, structure in zip(model.crossprods.terms, model.crossprods.structures, strict=True):
        cols = term.columns
        for i, a in enumerate(cols):
            for b in cols[i:]:
                if a == b or not isinstance(structure, Diagonal):
                    out.add((term.group, *sorted((a, b))))
    return out


def _check_comparable(models: Sequence[LinearMixedModel], names: Sequence[str]) -> None:
    from .._protocols import MixedModel

    for name, model in zip(names, models, strict=True):
        if not isinstance(model, MixedModel):
            raise TypeError(
                f"anova compares fitted linear mixed models (mm.lmer); {name} is a "
                f"{type(model).__name__}."
            )
    first = models[0]
    for name, model in zip(names[1:], models[1:], strict=True):
        if model.nobs != first.nobs:
            raise DataError(
                f"Models were not all fitted to the same data: {names[0]} has {first.nobs} "
                f"observations and {name} has {model.nobs}. Fit both to the same rows "
                "(missing values in a variable used by one model only drop different rows)."
            )
        if not np.allclose(model.design.y, first.design.y, rtol=1e-12, atol=0.0):
            raise DataError(
                f"Models were not all fitted to the same data: the response of {name} "
                f"differs from that of {names[0]}. A likelihood-ratio test needs the same "
                "response and rows."
            )


def _check_nested(small: LinearMixedModel, large: LinearMixedModel, names: tuple[str, str]):
    fixed_small, fixed_large = set(small.design.fixed_names), set(large.design.fixed_names)
    missing = sorted(fixed_small - fixed_large)
    if missing:
        raise MixedModelsError(
            f"{names[0]} is not nested in {names[1]}: its fixed effects {missing} are not in "
            f"{names[1]}. A likelihood-ratio test needs nested models; compare non-nested "
            "models by AIC (mm.aic_table)."
        )
    cov_small, cov_large = _covariance_parameters(small), _covariance_parameters(large)
    extra = sorted(cov_small - cov_large)
    if extra:
        group, a, b = extra[0]
        what = f"the variance of {a}" if a == b else f"the covariance of {a} and {b}"
        raise MixedModelsError(
            f"{names[0]} is not nested in {names[1]}: it estimates {what} for {group}, which "
            f"{names[1]} does not. A likelihood-ratio test needs nested models; compare "
            "non-nested models by AIC (mm.aic_table)."
        )
    if small.npar == large.npar:
        raise MixedModelsError(
            f"{names[0]} and {names[1]} have the same number of parameters ({small.npar}): "
            "there is nothing to test."
        )


def anova(*models: LinearMixedModel, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Likelihood-ratio tests of nested linear mixed models (lme4's ``anova``).

    REML fits are refitted by maximum likelihood first, as lme4 does (REML criteria of
    models with different fixed effects are not comparable); a :class:`RefitWarning`
    says so and ``table.attrs["refitted"]`` lists them.

    Parameters
    ----------
    *models : LinearMixedModel
        Two or more fits to the same data, each nested in the next larger one.
    names : sequence of str, optional
        Row labels; ``m1, m2, ...`` in the order given by default.

    Returns
    -------
    DataFrame indexed by model (fewest parameters first) with the columns ``npar``,
    ``AIC``, ``BIC``, ``logLik``, ``deviance``, ``Chisq``, ``Df`` and ``p``.  For
    :func:`~mixedmodels.lm` fits, R's ``anova.lm`` F tests instead (exact for nested
    linear models): ``npar, AIC, BIC, logLik, Res.Df, RSS, Df, Sum of Sq, F, p``
    (:func:`mixedmodels.inference.linear.anova_lm`).

    Examples
    --------
    >>> import warnings
    >>> import mixedmodels as mm
    >>> data = mm.datasets.gpa(seed=1)
    >>> m1 = mm.lmer("gpa ~ occasion + (1 | student)", data, reml=False)
    >>> m2 = mm.lmer("gpa ~ occasion + (1 + occasion | student)", data, reml=False)
    >>> table = mm.anova(m1, m2)
    >>> list(table.columns)
    ['npar', 'AIC', 'BIC', 'logLik', 'deviance', 'Chisq', 'Df', 'p']
    >>> int(table["Df"].iloc[1])
    2
    """
    from scipy import stats

    if len(models) < 2:
        raise ValueError(
            "anova needs at least two models to compare (a per-term F table of one model "
            f"is m.anova()). Got {len(models)}."
        )
    labels = list(names) if names is not None else [f"m{i + 1}" for i in range(len(models))]
    if len(labels) != len(models) or len(set(labels)) != len(labels):
        raise ValueError(
            f"names must be {len(models)} distinct labels, one per model. Got {labels!r}."
        )
    from .._protocols import MixedModel

    if any(not isinstance(m, MixedModel) and hasattr(m, "df_residual") for m in models):
        # lm fits: anova.lm's F tests
        from .linear import anova_lm

        return anova_lm(models, labels)
    _check_comparable(models, labels)
    order = sorted(range(len(models)), key=lambda i: models[i].npar)
    ordered = [models[i] for i in order]
    labels = [labels[i] for i in order]
    for k in range(len(ordered) - 1):
        _check_nested(ordered[k], ordered[k + 1], (labels[k], labels[k + 1]))
    refitted = [label for label, m in zip(labels, ordered, strict=True) if m.reml]
    if refitted:
        warn(
            f"refitting model(s) {', '.join(refitted)} with ML (instead of REML) for the "
            "likelihood-ratio test, as lme4 does.",
            RefitWarning,
        )
    fits = [refit_ml(m) for m in ordered]
    npar = np.array([m.npar for m in fits])
    loglik = np.array([m.loglik for m in fits])
    chisq = np.concatenate([[np.nan], np.maximum(0.0, 2.0 * np.diff(loglik))])
    df = np.concatenate([[np.nan], np.diff(npar)]).astype(float)
    table = pd.DataFrame(
        {
            "npar": npar,
            "AIC": [m.aic for m in fits],
            "BIC": [m.bic for m in fits],
            "logLik": loglik,
            "deviance": -2.0 * loglik,
            "Chisq": chisq,
            "Df": df,
            "p": stats.chi2.sf(chisq, df),
        },
        index=pd.Index(labels, name="model"),
    )
    table.attrs["refitted"] = refitted
    return table
