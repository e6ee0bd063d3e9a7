"""Variance parameters on lme4's standard-deviation/correlation scale, and small helpers.

lme4 profiles and bootstraps the random-effects parameters as SDs and correlations
(its ``Cv_to_Sv``/``Sv_to_Cv``): per term, the lower triangle of the SD/correlation
matrix in column-major order (SDs on the diagonal), followed by σ.  Names follow
``confint(oldNames = FALSE)``: ``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``,
``sigma``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import nlopt
import numpy as np

from ..covariance import Diagonal
from ..lmm import CrossProducts


@dataclass(frozen=True)
class VarianceLayout:
    """Where each term's θ and SD/correlation parameters sit, and their names."""

    names: tuple[str, ...]  # variance parameters then "sigma"
    lower: np.ndarray  # bounds on the SD/correlation scale (sigma included)
    upper: np.ndarray
    is_sd: np.ndarray  # SD (True) or correlation (False); sigma counts as an SD

    @classmethod
    def of(cls, cp: CrossProducts) -> VarianceLayout:
        names: list[str] = []
        is_sd: list[bool] = []
        for term, structure in zip(cp.terms, cp.structures, strict=True):
            cols = term.columns
            k = len(cols)
            if isinstance(structure, Diagonal):
                for c in cols:
                    names.append(f"sd_{c}|{term.group}")
                    is_sd.append(True)
                continue
            for j in range(k):  # column-major lower triangle
                for i in range(j, k):
                    if i == j:
                        names.append(f"sd_{cols[i]}|{term.group}")
                        is_sd.append(True)
                    else:
                        names.append(f"cor_{cols[i]}.{cols[j]}|{term.group}")
                        is_sd.append(False)
        names.append("sigma")
        is_sd.append(True)
        sd = np.array(is_sd)
        return cls(
            names=tuple(names),
            lower=np.where(sd, 0.0, -1.0),
            upper=np.where(sd, np.inf, 1.0),
            is_sd=sd,
        )


def theta_to_sdcor(cp: CrossProducts, theta: np.ndarray, sigma: float) -> np.ndarray:
    """θ (relative Cholesky factors) and σ → SDs/correlations and σ (lme4's ``Cv_to_Sv``)."""
    out: list[float] = []
    for structure, sl in zip(cp.structures, cp.theta_slices, strict=True):
        T = structure.factor(theta[sl])
        if isinstance(structure, Diagonal):
            out.extend(sigma * np.abs(np.diag(T)))
            continue
        cov = sigma**2 * (T @ T.T)
        sd = np.sqrt(np.diag(cov))
        k = len(sd)
        for j in range(k):
            for i in range(j, k):
                if i == j:
                    out.append(sd[i])
                else:
                    denom = sd[i] * sd[j]
                    out.append(cov[i, j] / denom if denom > 0 else 0.0)
    out.append(sigma)
    return np.array(out, dtype=float)


def _semidefinite_cholesky(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor that tolerates zero variances (zero columns instead of failing)."""
    k = S.shape[0]
    L = np.zeros_like(S)
    for j in range(k):
        d = S[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-14 * max(1.0, abs(S[j, j])):
            continue
        L[j, j] = np.sqrt(d)
        L[j + 1 :, j] = (S[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]) / L[j, j]
    return L


@functools.cache
def _column_major_lower(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the lower triangle in column-major order."""
    rows, cols = np.tril_indices(k)
    order = np.lexsort((rows, cols))
    return rows[order], cols[order]


def sdcor_to_theta(cp: CrossProducts, pars: np.ndarray) -> np.ndarray:
    """Inverse of :func:`theta_to_sdcor` (lme4's ``Sv_to_Cv``); ``pars`` ends with σ."""
    sigma = pars[-1]
    theta = np.empty(cp.n_theta)
    pos = 0
    for structure, sl in zip(cp.structures, cp.theta_slices, strict=True):
        n = sl.stop - sl.start
        values = pars[pos : pos + n]
        pos += n
        if isinstance(structure, Diagonal):
            theta[sl] = values / sigma
            continue
        k = int(round((np.sqrt(8 * n + 1) - 1) / 2))
        if k == 1:
            theta[sl] = values / sigma
            continue
        M = np.zeros((k, k))
        rows, cols = _column_major_lower(k)
        M[rows, cols] = values
        sd = np.diag(M).copy()
        C = np.tril(M, -1)
        C = C + C.T
        np.fill_diagonal(C, 1.0)
        S = C * np.outer(sd, sd) / sigma**2
        try:
            L = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            L = _semidefinite_cholesky(S)
        theta[sl] = L[rows, cols]
    return theta


def bounded_minimize(
    func,
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    tol: float = 1e-8,
    initial_step: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """nlopt BOBYQA with lower and upper bounds, as lme4's ``nloptwrap`` defaults
    (``xtol_abs = ftol_abs = 1e-8``).  A failed evaluation returns the starting value.

    ``initial_step`` (per coordinate) defaults to 10% of each start (at least 0.02)."""
    x0 = np.clip(np.asarray(x0, dtype=float), lower, upper)
    n = x0.size
    start = func(x0)
    if not np.isfinite(start):
        raise FloatingPointError("objective is not finite at the start")

    def objective(x: np.ndarray, grad: np.ndarray) -> float:
        value = func(x)
        return value if np.isfinite(value) else start

    opt = nlopt.opt(nlopt.LN_BOBYQA, n)
    opt.set_min_objective(objective)
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    opt.set_upper_bounds(np.where(np.isfinite(upper), upper, np.inf))
    opt.set_xtol_abs(tol)
    opt.set_ftol_abs(tol)
    opt.set_maxeval(100_000)
    step = np.maximum(0.1 * np.abs(x0), 0.02) if initial_step is None else initial_step
    room = np.maximum(upper - x0, x0 - lower)
    step = np.minimum(step, np.where(np.isfinite(room), 0.5 * room, step))
    opt.set_initial_step(np.where(step > 0, step, 0.02))
    try:
        x = opt.optimize(x0)
    except nlopt.RoundoffLimited:
        x = x0 if not hasattr(opt, "last_optimum_x") else opt.last_optimum_x()
    x = np.clip(np.asarray(x, dtype=float), lower, upper)
    return x, float(func(x))
