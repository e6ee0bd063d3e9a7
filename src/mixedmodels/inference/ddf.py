"""Denominator degrees of freedom for fixed-effects tests: Satterthwaite (as lmerTest)
and Kenward-Roger (as pbkrtest).

Satterthwaite (lmerTest's ``contest1D``/``contestMD``): the variance parameters are
φ = (θ, σ); A = 2 H⁻¹ with H the Hessian of the (RE)ML deviance in φ (β profiled out,
σ not), and J_k = ∂ Cov(β̂)/∂φ_k.  For a contrast l, ν = 2 (lᵀCl)² / (gᵀAg) with
g_k = lᵀJ_k l.  Both derivatives are central differences with one Richardson step.

Kenward-Roger (pbkrtest's ``vcovAdj`` and ``Lb_ddf``): the adjusted covariance
Φ_A = Φ + 2Φ U Φ of β̂ and the df from the same quantities, with the marginal covariance
V = Σ_r γ_r G_r written out densely (as pbkrtest does), which is fine for the small data
sets where the correction matters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.linalg as sla
from scipy import stats

from .._protocols import GeneralizedMixedModel
from .._threads import single_threaded_blas
from ..errors import DataError, refuse

if TYPE_CHECKING:  # pragma: no cover
    from .._protocols import MixedModel as LinearMixedModel

#: Kenward-Roger forms n x n matrices: refuse beyond this many observations.
KR_MAX_NOBS = 6_000


def _steps(x: np.ndarray) -> np.ndarray:
    return 1e-3 * np.maximum(np.abs(x), 0.1)


def _hessian(func, x: np.ndarray) -> np.ndarray:
    """Central-difference Hessian with one Richardson extrapolation (error O(h⁴))."""

    def at(h: np.ndarray) -> np.ndarray:
        n = x.size
        H = np.empty((n, n))
        f0 = func(x)
        for i in range(n):
            ei = np.zeros(n)
            ei[i] = h[i]
            H[i, i] = (func(x + ei) - 2 * f0 + func(x - ei)) / h[i] ** 2
            for j in range(i):
                ej = np.zeros(n)
                ej[j] = h[j]
                H[i, j] = H[j, i] = (
                    func(x + ei + ej) - func(x + ei - ej) - func(x - ei + ej) + func(x - ei - ej)
                ) / (4 * h[i] * h[j])
        return H

    h = _steps(x)
    with single_threaded_blas():  # many small evaluations: BLAS threads only spin
        return (4.0 * at(h / 2) - at(h)) / 3.0


def _jacobian(func, x: np.ndarray) -> list[np.ndarray]:
    """∂func/∂x_k for a matrix-valued func, central differences + one Richardson step."""
    h = _steps(x)
    with single_threaded_blas():
        return [_central(func, x, k, h[k]) for k in range(x.size)]


def _central(func, x: np.ndarray, k: int, h: float) -> np.ndarray:
    """One column of :func:`_jacobian`."""
    e = np.zeros(x.size)
    e[k] = h
    d1 = (func(x + e) - func(x - e)) / (2 * h)
    d2 = (func(x + e / 2) - func(x - e / 2)) / h
    return (4.0 * d2 - d1) / 3.0


def _linear_objective(model: LinearMixedModel, tool: str):
    """The model's objective, refusing glmer fits (their fixed effects have Wald z tests)."""
    objective = model.objective
    if isinstance(model, GeneralizedMixedModel):  # a glmer fit's objective is the Laplace one
        raise refuse(
            objective.kind,
            tool,
            "ddf='normal' (asymptotic Wald tests, as lme4 and car report for glmer)",
            "denominator degrees of freedom are defined for linear mixed models",
        )
    return objective


class Satterthwaite:
    """lmerTest's Satterthwaite machinery for one fit."""

    def __init__(self, model: LinearMixedModel):
        objective = _linear_objective(model, "Satterthwaite df")
        # φ = (θ, σ) and, with a residual structure, its parameters: the derivatives are
        # of the model's own (whitened) criterion and covariance of β̂
        self.phi = objective.variance_parameters()
        self.vcov = model.vcov.to_numpy()
        H = _hessian(objective.deviance_varpar, self.phi)
        # lmerTest: vcov(varpar) = 2 H⁻¹ (a pseudo-inverse when H is singular)
        eig = np.linalg.eigvalsh(H)
        self.A = 2.0 * (np.linalg.inv(H) if eig.min() > 1e-8 * eig.max() else np.linalg.pinv(H))
        self.jacobian = _jacobian(objective.vcov_beta, self.phi)

    def df(self, L: np.ndarray) -> float:
        """Satterthwaite df of the 1-df contrast ``L @ beta``."""
        var = float(L @ self.vcov @ L)
        grad = np.array([float(L @ J @ L) for J in self.jacobian])
        return 2.0 * var**2 / float(grad @ self.A @ grad)

    def f_test(self, L: np.ndarray, beta: np.ndarray) -> tuple[float, int, float]:
        """lmerTest's ``contestMD``: F value, numerator df, denominator df."""
        L = np.atleast_2d(L)
        if L.shape[0] == 1:
            t = float(L[0] @ beta) / np.sqrt(float(L[0] @ self.vcov @ L[0]))
            return t * t, 1, self.df(L[0])
        VL = L @ self.vcov @ L.T
        d, P = np.linalg.eigh(VL)
        d, P = d[::-1], P[:, ::-1]
        pos = d > max(np.sqrt(np.finfo(float).eps) * d[0], 0.0)
        q = int(pos.sum())
        PtL = (P.T @ L)[:q]
        t2 = (PtL @ beta) ** 2 / d[:q]
        F = float(np.sum(t2) / q)
        nu = np.array([2.0 * d[m] ** 2 / self._quad(PtL[m]) for m in range(q)])
        if q == 1:
            ddf = float(nu[0])
        elif np.all(np.abs(np.diff(nu)) < 1e-8):
            ddf = float(nu.mean())
        elif np.any(nu <= 2):
            ddf = 2.0
        else:
            E = float(np.sum(nu / (nu - 2)))
            ddf = 2 * E / (E - q)
        return F, q, ddf

    def _quad(self, l: np.ndarray) -> float:
        grad = np.array([float(l @ J @ l) for J in self.jacobian])
        return float(grad @ self.A @ grad)


class KenwardRoger:
    """pbkrtest's ``vcovAdj`` (adjusted covariance of β̂) and ``Lb_ddf`` for one REML fit."""

    def __init__(self, model: LinearMixedModel):
        objective = _linear_objective(model, "Kenward-Roger df")
        if objective.residual is not None:
            raise refuse(
                objective.kind,
                "Kenward-Roger df",
                "ddf='satterthwaite'",
                "pbkrtest's adjustment needs a marginal covariance linear in its parameters; "
                "a variance function or correlation structure is not",
            )
        if not model.reml:
            raise DataError(
                "Kenward-Roger needs a REML fit (pbkrtest refits ML fits by REML); "
                "refit with reml=True."
            )
        nonlinear = sorted({t.structure for t in model.crossprods.terms} - {"us", "diag"})
        if nonlinear:
            raise refuse(
                objective.kind,
                "Kenward-Roger df",
                "ddf='satterthwaite'",
                f"the {'/'.join(nonlinear)} covariance is not linear in its parameters, "
                "which pbkrtest's adjustment needs",
            )
        n = model.nobs
        if n > KR_MAX_NOBS:
            raise DataError(
                f"Kenward-Roger forms dense {n} x {n} matrices; this model has {n} "
                f"observations (limit {KR_MAX_NOBS}). Use ddf='satterthwaite' instead."
            )
        design = model.design
        cp = model.crossprods
        X = design.X
        if design.weights is not None:
            raise refuse(
                "lmer fit with prior weights",
                "Kenward-Roger df",
                "ddf='satterthwaite'",
                "pbkrtest ignores prior weights",
            )
        sigma2 = model.sigma**2
        G: list[np.ndarray] = []
        gamma: list[float] = []
        for term, T in zip(cp.terms, cp.factors(model.theta), strict=True):
            cov = sigma2 * (T @ T.T)
            k = term.n_columns
            for a in range(k):
                # a diag() term has no covariances: only its variances are parameters
                for b in range(a, k) if term.structure == "us" else (a,):
                    # Z E_ab Zᵀ with E symmetric: rows sharing a level, x_a x_b' + x_b x_a'
                    same = term.codes[:, None] == term.codes[None, :]
                    outer = np.outer(term.matrix[:, a], term.matrix[:, b])
                    if a != b:
                        outer = outer + outer.T
                    G.append(np.where(same, outer, 0.0))
                    gamma.append(cov[a, b])
        G.append(np.eye(n))
        gamma.append(sigma2)
        Sigma = sum(g * Gr for g, Gr in zip(gamma, G, strict=True))
        chol = sla.cho_factor(Sigma, lower=True)
        SigmaInv = sla.cho_solve(chol, np.eye(n))
        Phi = model.vcov.to_numpy()
        TT = SigmaInv @ X
        HH = [Gr @ SigmaInv for Gr in G]
        OO = [H @ X for H in HH]
        m = len(G)
        P = [-(O.T @ TT) for O in OO]
        P = [(Pi + Pi.T) / 2 for Pi in P]
        Q = {}
        for r in range(m):
            left = OO[r].T @ SigmaInv
            for s in range(r, m):
                Q[r, s] = left @ OO[s]
        K = np.empty((m, m))
        for r in range(m):
            for s in range(r, m):
                K[r, s] = K[s, r] = float(np.sum(HH[r].T * HH[s]))
        IE2 = np.empty((m, m))
        for i in range(m):
            PhiPi = Phi @ P[i]
            for j in range(i, m):
                IE2[i, j] = IE2[j, i] = (
                    K[i, j] - 2 * float(np.sum(Phi * Q[i, j])) + float(np.sum(PhiPi * (P[j] @ Phi)))
                )
        condition = float(np.min(np.abs(np.linalg.eigvalsh(IE2))))
        W = 2 * (np.linalg.inv(IE2) if condition > 1e-10 else np.linalg.pinv(IE2))
        W = (W + W.T) / 2
        U = np.zeros_like(Phi)
        for i in range(m - 1):
            for j in range(i + 1, m):
                U += W[i, j] * (Q[i, j] - P[i] @ Phi @ P[j])
        U = U + U.T
        for i in range(m):
            U += W[i, i] * (Q[i, i] - P[i] @ Phi @ P[i])
        self.vcov = Phi
        self.vcov_adjusted = Phi + 2 * Phi @ U @ Phi
        self.P = P
        self.W = W

    def _moments(self, L: np.ndarray) -> tuple[float, float]:
        """Kenward and Roger's A₁ and A₂ for the hypothesis ``L β = 0``."""
        V0 = self.vcov
        Theta = L.T @ np.linalg.solve(L @ V0 @ L.T, L)
        ThetaV0 = Theta @ V0
        A1 = A2 = 0.0
        m = len(self.P)
        u = [ThetaV0 @ Pi @ V0 for Pi in self.P]
        for i in range(m):
            for j in range(i, m):
                e = 1.0 if i == j else 2.0
                A1 += e * self.W[i, j] * np.trace(u[i]) * np.trace(u[j])
                A2 += e * self.W[i, j] * float(np.sum(u[i] * u[j].T))
        return A1, A2

    def df(self, L: np.ndarray) -> float:
        """pbkrtest's ``Lb_ddf`` for the hypothesis ``L β = 0``."""
        return self._df_and_scale(np.atleast_2d(L))[0]

    def _df_and_scale(self, L: np.ndarray) -> tuple[float, float]:
        """Denominator df and the F scaling λ of Kenward and Roger (1997), as pbkrtest."""
        A1, A2 = self._moments(L)
        q = L.shape[0]
        B = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        c1 = g / (3 * q + 2 * (1 - g))
        c2 = (q - g) / (3 * q + 2 * (1 - g))
        c3 = (q + 2 - g) / (3 * q + 2 * (1 - g))
        v0 = 1 + c1 * B
        v1 = 1 - c2 * B
        v2 = 1 - c3 * B
        v0 = 0.0 if abs(v0) < 1e-10 else v0
        x = 1 - A2 / q
        ratio = 1.0 if abs(x) < 1e-14 and abs(v1) < 1e-14 else x / v1
        rho = ratio**2 * v0 / v2 / q
        df = float(4 + (q + 2) / (q * rho - 1))
        # E(F*) = 1/(1 - A2/q) matched to the F(q, df) mean df/(df - 2); pbkrtest skips
        # the scaling when df is within 0.01 of 2, where that mean is unbounded
        scale = 1.0 if abs(df - 2) < 0.01 else df * x / (df - 2)
        return df, scale

    def f_test(self, L: np.ndarray, beta: np.ndarray) -> tuple[float, int, float]:
        """pbkrtest's scaled F test of ``L β = 0`` (F, numerator df, denominator df).

        The Wald statistic uses the adjusted covariance and is multiplied by Kenward
        and Roger's scaling λ, as ``KRmodcomp`` (and so lmerTest's ``anova``) reports it.
        """
        L = np.atleast_2d(L)
        q = L.shape[0]
        Lb = L @ beta
        wald = float(Lb @ np.linalg.solve(L @ self.vcov_adjusted @ L.T, Lb)) / q
        df, scale = self._df_and_scale(L)
        return scale * wald, q, df


def fixed_effects_table(model: LinearMixedModel, ddf: str, level: float = 0.95) -> pd.DataFrame:
    """term, value, se, t, df, p_value and t-based intervals (lmerTest's ``summary``)."""
    names = list(model.design.fixed_names)
    beta = model.fixef.to_numpy()
    p = beta.size
    if ddf == "satterthwaite":
        method = Satterthwaite(model)
        se = np.sqrt(np.diag(method.vcov))
    else:
        method = KenwardRoger(model)
        se = np.sqrt(np.diag(method.vcov_adjusted))
    df = np.array([method.df(np.eye(p)[j]) for j in range(p)])
    t = beta / se
    q = stats.t.ppf(0.5 + level / 2, df)
    alpha = (1 - level) / 2
    return pd.DataFrame(
        {
            "term": names,
            "value": beta,
            "se": se,
            "t": t,
            "df": df,
            "p_value": 2.0 * stats.t.sf(np.abs(t), df),
            f"lower_{100 * alpha:g}": beta - q * se,
            f"upper_{100 * (1 - alpha):g}": beta + q * se,
        }
    )
