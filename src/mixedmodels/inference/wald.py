"""Wald tests and intervals of the fixed effects, on any fitted model (lm, lmer, glmer).

The free functions behind ``contrast``, ``anova`` (per-term tests), the Wald branch of
``confint`` and the statsmodels names (``bse``, ``tvalues``, ``pvalues``,
``conf_int``): lmerTest's ``contest``/``anova`` with Satterthwaite or Kenward-Roger
denominator df (:mod:`.ddf`), and car's ``linearHypothesis`` Wald χ² for glmer fits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .hypotheses import AnovaType

if TYPE_CHECKING:  # pragma: no cover
    from .._protocols import MixedModel as LinearMixedModel

_DDF_OPTIONS = ("satterthwaite", "kenward-roger", "normal")


def is_glmm(model: Any) -> bool:
    """Whether the model has a GLM family (a glmer fit)."""
    return getattr(model, "family", None) is not None


def ddf_method(model: LinearMixedModel, ddf: str | None) -> Any:
    """The denominator-df method of ``ddf`` (:class:`~.ddf.Satterthwaite` or
    :class:`~.ddf.KenwardRoger`), or None for the asymptotic ``"normal"`` tests; by
    default Satterthwaite for lmer fits and normal for glmer fits."""
    from .ddf import KenwardRoger, Satterthwaite

    if ddf is None:  # the kind's own tests: t/F for lmer, asymptotic Wald for glmer
        ddf = "normal" if is_glmm(model) else "satterthwaite"
    if ddf not in _DDF_OPTIONS:
        raise ValueError(f"ddf: expecting one of {set(_DDF_OPTIONS)}. Got {ddf!r}.")
    if ddf == "normal":
        return None
    return Satterthwaite(model) if ddf == "satterthwaite" else KenwardRoger(model)


def wald_chisq(model: Any, L: np.ndarray) -> tuple[float, int]:
    """Wald χ² of ``L β = 0`` with Cov(β̂) = the model's ``vcov`` (car's
    ``linearHypothesis``), and its df (the rank of ``L Cov(β̂) Lᵀ``)."""
    beta = model.fixef.to_numpy()
    V = model.vcov.to_numpy()
    Lb = L @ beta
    LVL = L @ V @ L.T
    d, P = np.linalg.eigh(LVL)
    keep = d > max(np.sqrt(np.finfo(float).eps) * d.max(), 0.0)
    z = (P[:, keep].T @ Lb) / np.sqrt(d[keep])
    return float(z @ z), int(keep.sum())


def contrast_matrix(L: Any, names: list[str]) -> np.ndarray:
    """``L`` as a 2-d array over the fixed effects ``names`` (a dict names the coefficients,
    the others 0), for ``contrast`` on every model kind.

    Examples
    --------
    >>> contrast_matrix({"x": 1.0}, ["Intercept", "x"])
    array([[0., 1.]])
    """
    if isinstance(L, dict):
        unknown = [k for k in L if k not in names]
        if unknown:
            raise DataError(f"L names unknown fixed effects {unknown}. Expecting any of {names}.")
        L = [[L.get(n, 0.0) for n in names]]
    try:
        L = np.atleast_2d(np.asarray(L, dtype=float))
    except (TypeError, ValueError):
        raise DataError(
            f"L must be numbers, a row or a matrix with one column per fixed effect "
            f"({names}), or a dict of coefficient names to weights."
        ) from None
    if L.ndim != 2 or L.shape[1] != len(names):
        raise DataError(
            f"L must have {len(names)} columns (one per fixed effect: {names}). "
            f"Got shape {L.shape}."
        )
    return L


def contrast(model: LinearMixedModel, L: Any, ddf: str | None = None) -> pd.DataFrame:
    """Test the linear hypothesis ``L β = 0``; see
    :meth:`mixedmodels.inference.InferenceMixin.contrast`."""
    from scipy import stats

    L = contrast_matrix(L, list(model.design.fixed_names))
    method = ddf_method(model, ddf)
    beta = model.fixef.to_numpy()
    if method is None:
        if L.shape[0] == 1:
            estimate = float(L[0] @ beta)
            se = float(np.sqrt(L[0] @ model.vcov.to_numpy() @ L[0]))
            z = estimate / se
            return pd.DataFrame(
                {
                    "estimate": [estimate],
                    "se": [se],
                    "z": [z],
                    "p_value": [2.0 * stats.norm.sf(abs(z))],
                }
            )
        chisq, q = wald_chisq(model, L)
        return pd.DataFrame({"Chisq": [chisq], "Df": [q], "p_value": [stats.chi2.sf(chisq, q)]})
    if L.shape[0] == 1:
        vcov = getattr(method, "vcov_adjusted", method.vcov)
        estimate = float(L[0] @ beta)
        se = float(np.sqrt(L[0] @ vcov @ L[0]))
        df = method.df(L[0])
        t = estimate / se
        return pd.DataFrame(
            {
                "estimate": [estimate],
                "se": [se],
                "t": [t],
                "df": [df],
                "p_value": [2.0 * stats.t.sf(abs(t), df)],
            }
        )
    F, q, df = method.f_test(L, beta)
    return pd.DataFrame(
        {"F": [F], "num_df": [q], "den_df": [df], "p_value": [stats.f.sf(F, q, df)]}
    )


def term_tests(
    model: LinearMixedModel, type: AnovaType = 3, ddf: str | None = None
) -> pd.DataFrame:
    """F (or Wald χ²) tests per fixed-effect term; see
    :meth:`mixedmodels.inference.InferenceMixin.anova`."""
    from scipy import stats

    from .hypotheses import term_hypotheses

    hypotheses = term_hypotheses(model, type)
    method = ddf_method(model, ddf)
    beta = model.fixef.to_numpy()
    rows = []
    if method is None:
        for term, L in hypotheses.items():
            chisq, q = wald_chisq(model, L)
            rows.append((term, q, chisq, stats.chi2.sf(chisq, q)))
        table = pd.DataFrame(rows, columns=["term", "Df", "Chisq", "p_value"])
        table.attrs["test"] = "Wald chi-square (asymptotic)"
        return table.set_index("term")
    for term, L in hypotheses.items():
        F, q, df = method.f_test(L, beta)
        rows.append((term, q, df, F, stats.f.sf(F, q, df)))
    table = pd.DataFrame(rows, columns=["term", "num_df", "den_df", "F", "p_value"])
    kind = "Kenward-Roger" if ddf == "kenward-roger" else "Satterthwaite"
    table.attrs["test"] = f"F ({kind})"
    return table.set_index("term")


# -- the statsmodels names ---------------------------------------------------------------
def reference_df(model: Any) -> float:
    """The df of the Wald t tests: the residual df for lm, ∞ (normal) for mixed models."""
    return float(getattr(model, "df_residual", np.inf))


def standard_errors(model: Any) -> pd.Series:
    """Standard errors of the fixed effects (statsmodels' ``bse``)."""
    vcov = model.vcov
    return pd.Series(np.sqrt(np.diag(vcov.to_numpy())), index=vcov.index, name="bse")


def wald_statistics(model: Any) -> pd.Series:
    """Wald statistics β̂ / SE of the fixed effects (statsmodels' ``tvalues``)."""
    return (model.params / model.bse).rename("tvalues")


def wald_pvalues(model: Any) -> pd.Series:
    """Two-sided p-values of :func:`wald_statistics` on :func:`reference_df` (statsmodels'
    ``pvalues``)."""
    from scipy import stats

    t = model.tvalues.to_numpy()
    p = 2.0 * stats.t.sf(np.abs(t), reference_df(model))
    return pd.Series(p, index=model.params.index, name="pvalues")


def wald_conf_int(model: Any, alpha: float = 0.05) -> pd.DataFrame:
    """Wald intervals of the fixed effects, columns 0 and 1 (statsmodels' ``conf_int``)."""
    from scipy import stats

    if not 0.0 < float(alpha) < 1.0:
        from ..errors import DataError

        raise DataError(f"alpha: expecting a number between 0 and 1. Got {alpha!r}.")
    q = stats.t.ppf(1.0 - alpha / 2.0, reference_df(model))
    return pd.DataFrame({0: model.params - q * model.bse, 1: model.params + q * model.bse})
