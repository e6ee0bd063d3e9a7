"""Each group's own fit of a mixed model's fixed part (least squares, or a GLM by IRLS for
a GLMM): what the shrinkage plot compares the mixed model's group coefficients with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..glmm.families import working_response
from ._plot_inputs import _effect_label, _family

if TYPE_CHECKING:  # pragma: no cover
    from .._protocols import MixedModel as LinearMixedModel


def _glm_fit(
    family: Any, X: np.ndarray, y: np.ndarray, wt: np.ndarray, offset: np.ndarray
) -> np.ndarray | None:
    """A GLM by IRLS (R's ``glm.fit`` without its step halving); None when it diverges."""
    mu = family.starting_mu(y, wt)
    eta = family.link.link(mu)
    beta = None
    with np.errstate(all="ignore"):
        for _ in range(50):
            d = family.link.mu_eta(eta)
            w = wt * d**2 / family.variance(mu)
            z = working_response(family.link, y, eta, mu, offset, d)
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(z))):
                return None
            root = np.sqrt(w)
            new = np.linalg.lstsq(root[:, None] * X, root * z, rcond=None)[0]
            eta = offset + X @ new
            mu = family.link.inverse(eta)
            if beta is not None and np.max(np.abs(new - beta)) < 1e-8 * (1 + np.max(np.abs(new))):
                # separation drives η off to ±∞ slowly: call a binomial fit with |η| > 15
                # diverged
                separated = family.proportion_response and np.max(np.abs(eta - offset)) >= 15
                return None if separated else new
            beta = new
    return None


def per_group_fits(model: LinearMixedModel, term: Any) -> pd.DataFrame:
    """Each group's own fit of the model's fixed part (least squares, or a GLM on the link
    scale for a GLMM), one row per level of ``term``'s factor, one column per effect of the
    term (the columns of its matrix, which need not be fixed effects: ``0 + occas``).

    The term's own columns are estimated in every group that can (NaN otherwise).  For a
    linear mixed model the other fixed columns are estimated too where the group identifies
    them with a residual degree of freedom left, else held at the mixed model's estimates
    through the offset.  For a GLMM the other columns are always held there: per-group GLMs
    of every column are mostly separated on binary data (413 of the 498 raters of the
    chapter's speed-dating model), while the term's own columns diverge only in groups
    whose outcomes are all equal; those groups are NaN.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> from mixedmodels.toolbox.group_fits import per_group_fits
    >>> m = mm.lmer("gpa ~ occasion + (1 + occasion | student)", mm.datasets.gpa(seed=1))
    >>> fits = per_group_fits(m, m.crossprods.terms[0])
    >>> fits.columns.tolist()
    ['Intercept', 'occasion']
    """
    design = model.design
    X, y = design.X, design.y
    beta = model.fixef.to_numpy()
    names = [_effect_label(c) for c in design.fixed_names]
    family = _family(model)
    if family is not None:
        wt, offset = model.problem.prior_weights, model.problem.offset
    else:
        wt = design.weights if design.weights is not None else np.ones(y.size)
        offset = design.offset if design.offset is not None else np.zeros(y.size)
    effects = [_effect_label(c) for c in term.columns]
    # the term's own columns come from its matrix; fixed columns of the same effects
    # (intercept, slopes) are those columns and are not estimated twice
    others = [j for j, name in enumerate(names) if name not in effects]
    k = len(effects)
    out = np.full((term.n_levels, k), np.nan)
    order = np.argsort(term.codes, kind="stable")
    bounds = np.searchsorted(term.codes[order], np.arange(term.n_levels + 1))
    for code in range(term.n_levels):
        rows = order[bounds[code] : bounds[code + 1]]
        Xg, Zg = X[rows], term.matrix[rows]
        if np.linalg.matrix_rank(Zg) < k:
            continue
        columns: list[int] = []
        for j in others if family is None else ():
            if (
                rows.size > k + len(columns) + 1
                and np.linalg.matrix_rank(np.column_stack([Zg, Xg[:, columns + [j]]]))
                == k + len(columns) + 1
            ):
                columns.append(j)
        held = [j for j in others if j not in columns]
        off = offset[rows] + Xg[:, held] @ beta[held]
        design_g = np.column_stack([Zg, Xg[:, columns]])
        if family is None:
            root = np.sqrt(wt[rows])
            coef = np.linalg.lstsq(root[:, None] * design_g, root * (y[rows] - off))[0]
        else:
            fit = _glm_fit(family, design_g, y[rows], wt[rows], off)
            if fit is None:
                continue
            coef = fit
        out[code] = coef[:k]
    return pd.DataFrame(out, index=pd.Index(term.levels, name="group"), columns=effects)
