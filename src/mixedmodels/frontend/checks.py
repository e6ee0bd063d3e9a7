"""lme4's checks of a design: rank-deficient fixed-effects columns dropped (R's ``qr``),
enough levels and observations per random-effects term, fewer coefficients than
observations, a varying response, and the warning for badly scaled covariates
(``check.scaleX``)."""

from __future__ import annotations

import numpy as np

from .._warnings import warn
from ..errors import DataError, RankDeficiencyWarning, ScaleWarning
from .design_types import Design


def _drop_rank_deficient(
    X: np.ndarray, names: list[str], rows: np.ndarray | None = None
) -> tuple[np.ndarray, list[str], list[str]]:
    """Drop linearly dependent columns, keeping the earlier ones, as R's ``qr`` does for lme4.

    Without pivoting, |R_jj| is the norm of what column j adds to the columns before
    it; a column adding less than 1e-7 of its own norm is dependent.  ``rows`` restricts
    the check to those rows (the ones with a positive weight).
    """
    if X.shape[1] == 0:
        return X, names, []
    from scipy.linalg.lapack import dgeqrf  # numpy's qr wraps it in more than its cost

    checked = X if rows is None else X[rows]
    # column-major once: LAPACK's layout (geqrf copies a row-major X itself), and each
    # column's norm a contiguous reduction (numpy's down a row-major X is strided)
    columns = np.array(checked.T, order="C")  # a copy always: geqrf overwrites it
    norms = np.sqrt(np.einsum("ij,ij->i", columns, columns))
    R, _, _, info = dgeqrf(columns.T, overwrite_a=1)
    if info != 0:
        raise DataError(f"The fixed-effects matrix could not be factored (geqrf info {info}).")
    diagonal = np.zeros(X.shape[1])
    diagonal[: min(checked.shape)] = np.abs(np.diagonal(R))  # columns beyond n add nothing
    dependent = diagonal <= 1e-7 * np.where(norms > 0, norms, 1.0)
    if not dependent.any():
        return X, names, []
    keep = np.flatnonzero(~dependent)
    dropped = [names[i] for i in np.flatnonzero(dependent)]
    warn(
        f"Fixed-effects model matrix is rank deficient: dropping {len(dropped)} column"
        f"{'s' if len(dropped) > 1 else ''} ({', '.join(dropped)}). They are linear "
        "combinations of the other columns; remove them from the formula to silence this.",
        RankDeficiencyWarning,
    )
    return X[:, keep], [names[i] for i in keep], dropped


def check_lmm_design(design: Design, generalized: bool = False) -> None:
    """lme4's checks of a mixed model's design: enough levels, enough observations, fewer
    fixed effects than observations, a response that varies (linear models), and a
    warning for badly scaled covariates.

    ``generalized`` applies glmer's versions (``allow.n = TRUE``): as many levels or
    random effects as observations are allowed there (observation-level random effects),
    more are refused.
    """
    n = design.nobs
    for term in design.terms:
        if term.n_levels < 2:
            raise DataError(
                f"Grouping factor '{term.group}' has only {term.n_levels} level: a variance "
                "cannot be estimated from one group. Use it as a fixed effect instead."
            )
        if term.n_levels > n or (term.n_levels == n and not generalized):
            raise DataError(
                f"Grouping factor '{term.group}' has {term.n_levels} levels for {n} observations:"
                " each group needs more than one observation for the random effect to be "
                "distinguishable from the residual. Remove the term or use a coarser grouping."
            )
    total = sum(t.n_effects for t in design.terms)
    # glmmTMB (structured terms such as diag(0 + f | g)) does not refuse this, and its
    # residual-like models need it: gpa ~ (1|student) + diag(0 + occas|student)
    structured = any(t.structure != "us" for t in design.terms)
    if (total > n or (total == n and not generalized)) and not structured:
        raise DataError(
            f"The model has {total} random effects for {n} observations: more random effects "
            "than observations. Simplify the random-effects terms."
        )
    p = design.X.shape[1]
    if p >= n:
        raise DataError(
            f"The model has {p} fixed-effects columns for {n} observations: at least as many "
            "coefficients as observations leave nothing to estimate the variances from. "
            "Simplify the fixed effects."
        )
    # a Dask fit's design holds no rows (they stay in the partitions): nothing to check here
    if not generalized and design.y.size and _constant(design.y):
        raise DataError(
            f"The response is constant (every value is {design.y[0]:g}): there is no "
            "variation for a mixed model to describe."
        )
    warn_if_badly_scaled(design.X, design.fixed_names)


def _constant(y: np.ndarray) -> bool:
    """Whether every value of y is the same to 1e-12 of its size (two reductions)."""
    low, high = float(y.min()), float(y.max())
    return high - low <= 1e-12 * max(1.0, abs(low), abs(high))


def warn_if_badly_scaled(X: np.ndarray, names: tuple[str, ...] | list[str]) -> None:
    """lme4's ``check.scaleX``: warn when a continuous column's SD, or the ratio of two
    columns' SDs, is beyond 1000 (or below 1/1000); the optimizer then works badly."""
    if X.shape[1] == 0:
        return
    # 0/1 columns (the intercept, dummies) are not scaled.  The columns are read as rows
    # of Xᵀ: numpy's reductions down the columns of a row-major X are strided, 2-3x slower
    columns = np.ascontiguousarray(X.T)
    continuous = np.flatnonzero(((columns != 0.0) & (columns != 1.0)).any(axis=1))
    if not continuous.size:
        return
    if X.shape[0] > 1:
        centered = columns[continuous]
        centered -= centered.mean(axis=1)[:, None]
        sds = np.sqrt(np.einsum("ij,ij->i", centered, centered) / (X.shape[0] - 1))
    else:
        sds = np.ones(continuous.size)
    sds = np.where(sds > 0, sds, 1.0)
    logs = np.log(sds)
    worst = max(np.abs(logs).max(), logs.max() - logs.min())
    if worst > np.log(1e3):
        listed = ", ".join(
            f"{names[j]} (SD {sd:.3g})" for j, sd in zip(continuous, sds, strict=True)
        )
        warn(
            f"Some predictor variables are on very different scales: {listed}. Consider "
            "rescaling them, e.g. scale(x) in the formula (lme4's check.scaleX).",
            ScaleWarning,
        )
