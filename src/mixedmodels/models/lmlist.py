"""``lmlist``: one least-squares fit per group, as lme4's ``lmList`` (the seed's "separate" fits).

The model matrix is built once for all rows; the per-group normal equations are formed with
one scatter-add and solved as a stack of small systems, so 200 groups cost about as much as
one fit. Only groups whose design is rank deficient (too few rows, a constant column) take a
per-group pivoted QR, which sets the aliased coefficients to NaN as R's ``lm`` sets them NA.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg as sla

from ..errors import DataError, FormulaError
from ..frontend.design import build_design
from ..frontend.design_types import NaAction
from ..frontend.formula import parse_formula


def _check_group(group: Any, formula: str) -> str:
    if not isinstance(group, str) or not group.strip():
        raise DataError(
            f"group: expecting the name of the grouping column as a string. Got {group!r}."
        )
    if "|" in formula:
        raise FormulaError(
            "lmlist() takes a formula without random-effects terms and the grouping column "
            f"as group=...; got {formula!r}. Write e.g. lmlist('y ~ x', data, group='g')."
        )
    return group.strip()


def lmlist(formula: str, data: Any, group: str, na_action: NaAction = "omit") -> pd.DataFrame:
    """Fit ``formula`` by ordinary least squares separately within every level of ``group``.

    Parameters
    ----------
    formula : str
        A fixed-effects formula such as ``"gpa ~ occasion"``.
    data : DataFrame, polars DataFrame or dict of arrays
    group : str
        The grouping column (an interaction ``"a:b"`` works too).
    na_action : {"omit", "fail"}

    Returns
    -------
    DataFrame
        One row per group and term, with columns ``group_var, group, term, value, se, t,
        df, p_value, lower_2.5, upper_97.5``. Standard errors use each group's own residual
        variance (as ``lm`` within the group); groups with no residual degrees of freedom
        have NaN standard errors; aliased coefficients are NaN.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> fits = mm.lmlist("gpa ~ occasion", mm.datasets.gpa(seed=1), group="student")
    >>> fits["group"].nunique()
    200
    >>> fits.columns.tolist()[:5]
    ['group_var', 'group', 'term', 'value', 'se']
    """
    from scipy import stats

    group = _check_group(group, formula)
    spec = parse_formula(f"{formula} + (1 | {group})")
    design = build_design(spec, data, na_action=na_action)
    term = design.terms[0]
    X, y, codes = design.X, design.y, term.codes
    n_groups, p = term.n_levels, X.shape[1]

    # Normal equations per group by one scatter-add over rows.
    XtX = np.zeros((n_groups, p, p))
    np.add.at(XtX, codes, X[:, :, None] * X[:, None, :])
    Xty = np.zeros((n_groups, p))
    np.add.at(Xty, codes, X * y[:, None])
    counts = np.bincount(codes, minlength=n_groups)

    beta = np.full((n_groups, p), np.nan)
    XtX_inv = np.full((n_groups, p, p), np.nan)
    rank = np.zeros(n_groups, dtype=np.int64)
    # Full-rank groups: a batched Cholesky; reciprocal condition guards against near-aliasing.
    scale = np.sqrt(np.clip(np.diagonal(XtX, axis1=1, axis2=2), 1e-300, None))
    scaled = XtX / (scale[:, :, None] * scale[:, None, :])
    eigen_min = np.linalg.eigvalsh(scaled)[:, 0] if p else np.ones(n_groups)
    full = (counts >= p) & (eigen_min > 1e-10)
    if full.any():
        chol = np.linalg.cholesky(XtX[full])
        identity = np.broadcast_to(np.eye(p), chol.shape)
        inv_chol = np.linalg.solve(chol, identity)
        XtX_inv[full] = np.swapaxes(inv_chol, 1, 2) @ inv_chol
        beta[full] = (XtX_inv[full] @ Xty[full][:, :, None])[:, :, 0]
        rank[full] = p
    _fit_rank_deficient(X, y, codes, counts, full, beta, XtX_inv, rank)

    fitted = np.einsum("np,np->n", X, np.nan_to_num(beta[codes]))
    rss = np.bincount(codes, weights=(y - fitted) ** 2, minlength=n_groups)
    df = counts - rank
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = np.where(df > 0, rss / np.where(df > 0, df, 1), np.nan)
        se = np.sqrt(np.diagonal(XtX_inv, axis1=1, axis2=2) * sigma2[:, None])
        t = beta / se
    df_rows = np.repeat(df, p).astype(float)
    df_rows[df_rows <= 0] = np.nan
    quantile = stats.t.ppf(0.975, df_rows)
    table = pd.DataFrame(
        {
            "group_var": group,
            "group": np.repeat(term.levels, p),
            "term": np.tile(list(design.fixed_names), n_groups),
            "value": beta.ravel(),
            "se": se.ravel(),
            "t": t.ravel(),
            "df": df_rows,
            "p_value": 2.0 * stats.t.sf(np.abs(t.ravel()), df_rows),
        }
    )
    table["lower_2.5"] = table["value"] - quantile * table["se"]
    table["upper_97.5"] = table["value"] + quantile * table["se"]
    return table


def _fit_rank_deficient(
    X: np.ndarray,
    y: np.ndarray,
    codes: np.ndarray,
    counts: np.ndarray,
    full: np.ndarray,
    beta: np.ndarray,
    XtX_inv: np.ndarray,
    rank: np.ndarray,
) -> None:
    """Fill ``beta``, ``XtX_inv`` and ``rank`` of the groups that are not ``full`` rank by
    pivoted QR, aliased columns NaN (R's NA)."""
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    for g in np.flatnonzero(~full):
        rows = order[starts[g] : starts[g + 1]]
        if rows.size == 0:
            continue
        Q, R, piv = sla.qr(X[rows], mode="economic", pivoting=True)
        diag = np.abs(np.diag(R))
        r = int(np.sum(diag > 1e-7 * max(diag.max(initial=0.0), 1e-300)))
        rank[g] = r
        if r == 0:
            continue
        kept = piv[:r]
        R_inv = sla.solve_triangular(R[:r, :r], np.eye(r))
        beta[g, kept] = R_inv @ (Q[:, :r].T @ y[rows])
        XtX_inv[g][np.ix_(kept, kept)] = R_inv @ R_inv.T
