"""``glmer`` on Dask data: the rows encoded once and persisted on the workers, then each
PIRLS / Laplace step one distributed pass with the current (θ, β, u) broadcast.

For one scalar random-effects term ``(1 | g)`` and a canonical link (binomial logit,
poisson log) the Laplace deviance and its exact gradient in (θ, β) are sums over rows
of per-level and per-column pieces (η, μ, the working weights w = prior·V(μ), the score
s = prior·(y − μ) and w′ = dw/dη, then ``Σ w z²``, ``Σ z s``, ``ZᵀWX``, ``XᵀWX``, ``Xᵀs``,
``Σ w′z²X`` and ``Σ w′z³`` per level): each partition forms its sums, a tree reduction
adds them (:func:`~mixedmodels.scale.cluster.tree_sum`), and the client takes the
in-memory engine's steps on them — the per-level Fisher scoring of
:meth:`GlmmProblem._scalar_step <mixedmodels.glmm.pirls.GlmmProblem>`, the β Newton steps
of :func:`~mixedmodels.glmm.optimize.optimize_beta` on the marginal information
``XᵀWX̃`` with the gradient of :func:`~mixedmodels.glmm.gradient.beta_gradient`, the θ
gradient of :func:`~mixedmodels.glmm.gradient.theta_gradient`, L-BFGS-B on θ as
:func:`~mixedmodels.glmm.optimize.fit_profiled`, and lme4's Hessian-based ``vcov`` from
differences of the exact gradients.  The conditional covariances come from the weighted
blocks of ``[Z X z]`` at the mode (one more pass), solved by the LMM engine.  The
estimates are the in-memory fit's (the same criterion, minimized to the same tolerances).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla

from .._warnings import warn
from ..errors import ConvergenceWarning, DataError, OptionError
from ..frontend.checks import check_lmm_design
from ..frontend.formula import parse_formula
from ..glmm.families import Family, get_family
from ..glmm.optimize import GRADIENT_TOLERANCE, LAST_STEP_DECREMENT, NEWTON_DECREMENT
from ..glmm.options import check_glmer_options
from ..glmm.pirls import LAPLACE_TOLERANCE, MAX_HALVINGS, PIRLS_MAX_ITERATIONS
from ..glmm.separation import (
    FittedSpread,
    SeparationCounts,
    check_separation,
    warn_fitted_separation,
)
from ..lmm.crossprods import BlockSums, CrossProducts
from ..lmm.deviance import Solution, solve
from ..lmm.optimize import Control, OptSummary, warn_if_singular
from .cluster import PassLog, fit_client, tree_sum
from .encoding import PartitionEncoder, drop_rank_deficient, partition_block_sums
from .lmer import first_pass, open_source
from .memory import available_bytes, check_fits

#: largest mode step that ends PIRLS (Newton's, canonical link: the error left is ~its square)
_MODE_TOLERANCE = 1e-6


@dataclass
class GlmmRows:
    """One partition's encoded rows, persisted on its worker for the whole fit."""

    y: np.ndarray
    X: np.ndarray
    codes: np.ndarray
    z: np.ndarray
    prior: np.ndarray
    offset: np.ndarray
    #: Σ −2 log p(y | μ) minus the family's kernel (a constant of y), or None: the passes
    #: then sum the kernel only (no log-factorials), as PIRLS in memory
    constant: float | None = None


def encode_rows(part: Any, encoder: PartitionEncoder, family: Family, kept: list[int]) -> GlmmRows:
    """The numeric rows of one partition for the GLMM passes (response checked)."""
    rows = encoder.rows(part)
    [term] = rows.terms
    n = len(rows.y)
    prior = rows.weights if rows.weights is not None else np.ones(n)
    if n:
        family.check_response(rows.y, prior)
    offset = rows.offset if rows.offset is not None else np.zeros(n)
    mu0 = family.starting_mu(rows.y, prior)
    kernel = family.loglik_kernel(rows.y, mu0, prior)
    constant = None
    if kernel is not None:
        constant = float(np.sum(family.minus_two_loglik(rows.y, mu0, prior))) - kernel
    return GlmmRows(
        rows.y,
        np.ascontiguousarray(rows.X[:, kept]),
        np.asarray(term.codes, dtype=np.int64),
        np.asarray(term.matrix[:, 0], dtype=float),
        prior,
        offset,
        constant,
    )


def separation_counts(rows: GlmmRows) -> SeparationCounts:
    """One partition's counts for the binomial separation check."""
    return SeparationCounts.of_rows(rows.y, rows.X, rows.prior)


def fitted_spread(rows: GlmmRows, beta: np.ndarray) -> FittedSpread:
    """One partition's largest |Xβ| and column moments (the fitted separation check)."""
    return FittedSpread.of_rows(rows.X, beta)


@dataclass
class LaplaceSums:
    """The row sums of one pass at (λ, β, u); sums over disjoint rows add."""

    deviance: float  # Σ −2 log p(y | μ)
    A: np.ndarray  # Σ w z² per level
    Sz: np.ndarray  # Σ z s per level
    XtWX: np.ndarray
    Xts: np.ndarray
    ZtWX: np.ndarray  # (ℓ, p)
    B: np.ndarray  # Σ w′ z² X per level, (ℓ, p)
    C: np.ndarray  # Σ w′ z³ per level

    def __add__(self, other: LaplaceSums) -> LaplaceSums:
        return LaplaceSums(
            *(getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self))
        )


def laplace_sums(
    rows: GlmmRows, family: Family, ell: int, lam: float, beta: np.ndarray, u: np.ndarray
) -> LaplaceSums:
    """One partition's sums at (λ, β, u) (canonical link: dμ/dη = V(μ))."""
    y, X, codes, z, prior = rows.y, rows.X, rows.codes, rows.z, rows.prior
    with np.errstate(over="ignore", under="ignore"):
        eta = rows.offset + X @ beta + lam * z * u[codes]
        mu = family.link.inverse(eta)
        w = prior * family.variance(mu)
        s = prior * (y - mu)
        wp = w * family.variance_derivative(mu)
        kernel = None if rows.constant is None else family.loglik_kernel(y, mu, prior)
        if kernel is not None:
            deviance = kernel + rows.constant
        else:
            deviance = float(np.sum(family.minus_two_loglik(y, mu, prior)))
    wz = w * z
    wpz2 = wp * z * z

    def per_level(values: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=values, minlength=ell)

    p = X.shape[1]
    return LaplaceSums(
        deviance,
        per_level(wz * z),
        per_level(z * s),
        X.T @ (X * w[:, None]),
        X.T @ s,
        np.stack([per_level(wz * X[:, j]) for j in range(p)], axis=1).reshape(ell, p),
        np.stack([per_level(wpz2 * X[:, j]) for j in range(p)], axis=1).reshape(ell, p),
        per_level(wpz2 * z),
    )


def _sum_over(parts: list[GlmmRows], leaf, *args) -> Any:
    """``leaf``'s sums over a worker's partitions."""
    total = None
    for part in parts:
        value = leaf(part, *args)
        total = value if total is None else total + value
    return total


def weighted_blocks(
    rows: GlmmRows, family: Family, term: Any, lam: float, beta: np.ndarray, u: np.ndarray
) -> BlockSums:
    """The blocks of ``[Z X z]`` at the working weights and response of (λ, β, u), as the
    in-memory PIRLS builds them (working response with the offset taken out)."""
    from ..glmm.families import working_response

    eta = rows.offset + rows.X @ beta + lam * rows.z * u[rows.codes]
    mu = family.link.inverse(eta)
    weights = rows.prior * family.variance(mu)
    working = working_response(family.link, rows.y, eta, mu, rows.offset, family.variance(mu))
    with_codes = dataclasses.replace(term, codes=rows.codes, matrix=rows.z[:, None])
    return BlockSums.of_rows(working, rows.X, [with_codes], weights)


@dataclass
class ModeState:
    """PIRLS converged at (λ, β): the modes and the sums there."""

    lam: float
    beta: np.ndarray
    u: np.ndarray
    sums: LaplaceSums

    @property
    def diag(self) -> np.ndarray:
        return 1.0 + self.lam**2 * self.sums.A

    @property
    def deviance(self) -> float:
        """The Laplace deviance −2 log p(y | û) + ‖û‖² + log|P|."""
        return float(self.sums.deviance + self.u @ self.u + np.sum(np.log(self.diag)))

    def beta_gradient(self) -> tuple[np.ndarray, np.ndarray]:
        """∂D/∂β and the marginal information XᵀWX̃ (``glmm.gradient.beta_gradient``'s
        scalar-term pieces, from the per-level sums)."""
        s, lam, diag = self.sums, self.lam, self.diag
        modes = lam * s.ZtWX / diag[:, None]
        information = s.XtWX - lam * s.ZtWX.T @ modes
        information = 0.5 * (information + information.T)
        log_det = ((lam * lam / diag)[:, None] * (s.B - lam * modes * s.C[:, None])).sum(axis=0)
        return -2.0 * s.Xts + log_det, information

    def theta_gradient(self) -> float:
        """∂D/∂λ at fixed β (``glmm.gradient.theta_gradient`` for one scalar term)."""
        s, lam, diag, u = self.sums, self.lam, self.diag, self.u
        r = (s.Sz - lam * s.A * u) / diag
        through_weights = float(np.sum(lam * lam / diag * (u + lam * r) * s.C))
        direct = 2.0 / lam * (len(u) - float(np.sum(1.0 / diag))) if lam > 0 else 0.0
        return -2.0 * float(u @ s.Sz) + direct + through_weights


class DaskLaplace:
    """The Laplace deviance of a one-scalar-term GLMM whose rows are persisted futures."""

    def __init__(self, client: Any, leaves: list[Any], family: Family, ell: int, log: PassLog):
        self.client, self.leaves, self.family, self.ell, self.log = client, leaves, family, ell, log
        self.passes = 0
        self.evaluations = 0
        self.pirls_failures = 0
        self.u = np.zeros(ell)
        self.beta: np.ndarray | None = None
        self._groups: list[list[Any]] | None = None

    def groups(self) -> list[list[Any]]:
        """The persisted partitions grouped by the worker holding them: one task per
        worker a pass (its partitions are local), the workers' sums added in a tree."""
        if self._groups is None:
            holders = self.client.who_has(self.leaves)
            grouped: dict[str, list[Any]] = {}
            for future in self.leaves:
                where = holders.get(future.key) or ("",)
                grouped.setdefault(sorted(where)[0], []).append(future)
            self._groups = list(grouped.values())
        return self._groups

    def sums(self, lam: float, beta: np.ndarray, u: np.ndarray) -> LaplaceSums:
        self.passes += 1
        return tree_sum(
            self.client,
            self.groups(),
            _sum_over,
            (laplace_sums, self.family, self.ell, float(lam), beta, u),
            "laplace",
        )

    def starting_beta(self, p: int) -> np.ndarray:
        """β of the GLM without random effects by IRLS (the in-memory start), one pass a step."""
        beta = np.zeros(p)
        for _ in range(50):
            s = self.sums(0.0, beta, np.zeros(self.ell))
            new_beta = beta + np.linalg.solve(s.XtWX, s.Xts)  # Fisher scoring = IRLS
            done = np.max(np.abs(new_beta - beta)) < 1e-10 * (np.max(np.abs(new_beta)) + 1e-3)
            beta = new_beta
            if done:
                break
        return beta

    def mode(self, lam: float, beta: np.ndarray) -> ModeState:
        """PIRLS for the modes at fixed (λ, β): per-level Fisher scoring with step halving
        on the penalized deviance (``GlmmProblem.pirls``'s scalar path), warm-started."""
        u = self.u.copy() if lam > 0 else np.zeros(self.ell)
        sums = self.sums(lam, beta, u)
        pdev = sums.deviance + u @ u
        converged = False
        moved = np.inf
        for _ in range(PIRLS_MAX_ITERATIONS):
            new_u = lam * (lam * sums.A * u + sums.Sz) / (1.0 + lam * lam * sums.A)
            step = 1.0
            for _ in range(MAX_HALVINGS):
                trial_u = u + step * (new_u - u)
                trial = self.sums(lam, beta, trial_u)
                trial_pdev = trial.deviance + trial_u @ trial_u
                if np.isfinite(trial_pdev) and trial_pdev <= pdev + 1e-10 * abs(pdev):
                    break
                step /= 2.0
            else:
                converged = True  # no decrease possible: at the mode up to rounding
                break
            moved = float(np.max(np.abs(trial_u - u))) if u.size else 0.0
            u, sums, pdev = trial_u, trial, trial_pdev
            if moved < _MODE_TOLERANCE:
                converged = True
                break
        if not converged and moved > 1e-6:
            self.pirls_failures += 1
        self.u = u
        return ModeState(float(lam), np.array(beta, dtype=float), u, sums)

    def optimize_beta(self, lam: float, beta: np.ndarray, confirm: bool = True) -> ModeState:
        """Newton steps on β at fixed λ on the marginal information, step-halved on the
        deviance (:func:`mixedmodels.glmm.optimize.optimize_beta`)."""
        state = self.mode(lam, beta)
        for _ in range(50):
            gradient, information = state.beta_gradient()
            try:
                step = -0.5 * sla.cho_solve(sla.cho_factor(information, lower=True), gradient)
            except (np.linalg.LinAlgError, sla.LinAlgError):
                step = -0.5 * np.linalg.lstsq(information, gradient, rcond=None)[0]
            decrement = -float(gradient @ step)
            if not np.isfinite(decrement) or decrement < NEWTON_DECREMENT:
                break
            t = 1.0
            while True:
                trial = self.mode(lam, state.beta + t * step)
                if trial.deviance <= state.deviance + 1e-12 * abs(state.deviance) or t < 1e-4:
                    break
                t *= 0.5
            if trial.deviance > state.deviance:
                self.u = state.u
                break
            state = trial
            if not confirm and t == 1.0 and decrement < LAST_STEP_DECREMENT:
                break
        self.beta = state.beta
        return state

    def joint(self, lam: float, beta: np.ndarray, max_iterations: int = 25) -> ModeState | None:
        """β and u together for the Laplace deviance at λ, one pass a step
        (:meth:`GlmmProblem.laplace_pirls <mixedmodels.glmm.pirls.GlmmProblem>`): the
        joint PLS solve with β moved by −½(XᵀWX̃)⁻¹∂log|P|/∂β and û along with it.  None
        when the steps do not shrink (the caller falls back to :meth:`optimize_beta`)."""
        u = self.u.copy() if lam > 0 else np.zeros(self.ell)
        previous = np.inf
        settled = False
        for iterations in range(1, max_iterations + 1):
            sums = self.sums(lam, beta, u)
            state = ModeState(float(lam), np.array(beta, dtype=float), u, sums)
            if not np.isfinite(sums.deviance):
                return None
            if settled:  # the step that led here was predicted to be the last
                break
            diag = state.diag
            ztwz = lam * sums.A * u + sums.ZtWX @ beta + sums.Sz  # ZᵀW(working response)
            xtwz = sums.XtWX @ beta + lam * sums.ZtWX.T @ u + sums.Xts
            gradient, information = state.beta_gradient()
            log_det = gradient + 2.0 * sums.Xts
            rhs = xtwz - lam * lam * sums.ZtWX.T @ (ztwz / diag)
            try:
                factor = sla.cho_factor(information, lower=True)
            except (np.linalg.LinAlgError, sla.LinAlgError):
                return None
            new_beta = sla.cho_solve(factor, rhs - 0.5 * log_det)
            new_u = lam * (ztwz - sums.ZtWX @ new_beta) / diag
            moved = max(
                float(np.max(np.abs(new_beta - beta))) if beta.size else 0.0,
                float(np.max(np.abs(new_u - u))) if u.size else 0.0,
            )
            if not np.isfinite(moved) or (iterations > 2 and moved > previous):
                return None
            settled = iterations > 1 and moved * moved / previous < LAPLACE_TOLERANCE
            previous = moved
            if moved < LAPLACE_TOLERANCE:
                break
            beta, u = new_beta, new_u
        else:
            return None
        self.u, self.beta = state.u, state.beta
        return state

    def profiled(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The deviance with β optimized at λ, and its λ gradient (the total one)."""
        self.evaluations += 1
        lam = float(theta[0])
        state = self.joint(lam, self.beta)
        if state is None or not np.isfinite(state.deviance):
            state = self.optimize_beta(lam, self.beta, confirm=False)
        if not np.isfinite(state.deviance):
            return float("inf"), np.zeros(1)
        return state.deviance, np.array([state.theta_gradient()])

    def gradient_at(self, lam: float, beta: np.ndarray) -> tuple[ModeState, np.ndarray]:
        state = self.mode(lam, beta)
        return state, np.concatenate([[state.theta_gradient()], state.beta_gradient()[0]])

    def hessian(self, lam: float, beta: np.ndarray, delta: float = 1e-4) -> np.ndarray:
        """The (θ, β) Hessian from differences of the exact gradient, as
        ``glmm.optimize._derivatives_from_gradient``: central in θ (one-sided at 0),
        forward with a 1e-5 step in β."""
        _, g0 = self.gradient_at(lam, beta)
        n = g0.size
        hess = np.zeros((n, n))
        gp = self.gradient_at(lam + delta, beta)[1]
        if lam - delta < 0:
            hess[:, 0] = (gp - g0) / delta
        else:
            hess[:, 0] = (gp - self.gradient_at(lam - delta, beta)[1]) / (2 * delta)
        step = 0.1 * delta
        for j in range(beta.size):
            e = np.zeros(beta.size)
            e[j] = step
            hess[1:, 1 + j] = (self.gradient_at(lam, beta + e)[1] - g0)[1:] / step
        hess[:1, :] = hess[:, :1].T
        block = hess[1:, 1:]
        hess[1:, 1:] = 0.5 * (block + block.T)
        return hess


def _check_model(formula: str, family: Family, nagq: int) -> Any:
    spec = parse_formula(formula)
    check_glmer_options(family, nagq, spec)
    if not (family.scale_free and family.observed_information_weights):
        raise DataError(
            f"glmer on Dask data fits canonical links of families without a dispersion "
            f"(binomial logit, poisson log); the {family.r_name} family with this link is "
            "fitted in memory only: read the data into a pandas DataFrame."
        )
    if nagq != 1:
        raise OptionError(
            f"nagq = {nagq}: glmer on Dask data fits the Laplace deviance (nagq=1) only; "
            "use nagq=1, or fit in memory with a pandas DataFrame."
        )
    if not spec.response:
        raise DataError("The formula has no response: write 'y ~ ...'.")
    if len(spec.random) != 1 or spec.random[0].structure != "us":
        raise DataError(
            "glmer on Dask data fits one scalar random-effects term such as (1 | g) for now; "
            "fit this model in memory with a pandas DataFrame (e.g. data.compute())."
        )
    return spec


def _check_response_dtype(frame: Any, response: str) -> None:
    """Refuse a factor, string or boolean response column before any pass (in memory a
    two-level factor is mapped to 0/1; on Dask the response must be numeric)."""
    import pandas as pd

    name = response.strip()
    if name not in frame.columns:
        return
    dtype = frame.dtypes[name]
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return
    raise DataError(
        f"glmer on Dask data needs a numeric response (0/1, proportions with weights= "
        f"trials, or counts); column '{name}' has dtype {dtype}. Convert it first, e.g. "
        f"data['{name}'] = (data['{name}'] == 'yes').astype(float), or fit in memory, "
        "which maps a two-level factor to 0/1."
    )


def glmer_dask(
    formula: str,
    data: Any,
    *,
    family: str | Family,
    link: str | None,
    nagq: int,
    weights: Any,
    offset: Any,
    na_action: str,
    control: Control,
):
    """See :func:`mixedmodels.glmer`; ``data`` a dask DataFrame or parquet path or glob."""
    fam = get_family(family, link)
    spec = _check_model(formula, fam, nagq)
    if na_action not in ("omit", "fail"):
        raise ValueError(f"na_action: expecting one of {{'omit', 'fail'}}. Got {na_action!r}.")
    frame, plan = open_source(data, spec, weights, offset)
    _check_response_dtype(frame, spec.response)
    log = PassLog()
    with fit_client() as client:
        encoder = first_pass(client, frame, plan, na_action, log)
        check_lmm_design(encoder.design, generalized=True)
        order, ordered = encoder.ordered_terms()
        if ordered[0].n_columns != 1:
            raise DataError(
                f"glmer on Dask data fits a scalar term such as (1 | g); ({spec.random[0].expr}"
                f" | {spec.random[0].group}) has {ordered[0].n_columns} columns. Fit it in "
                "memory with a pandas DataFrame, or use lmer on the Dask data."
            )
        p_all = len(encoder.design.fixed_names)
        check_fits(ordered, p_all, *available_bytes(client))
        [shared] = client.scatter([encoder], broadcast=True)
        sums = tree_sum(client, frame.to_delayed(), partition_block_sums, (shared,), "blocks", log)
        _, design = drop_rank_deficient(sums, encoder.design)
        names = list(encoder.design.fixed_names)
        kept = [names.index(name) for name in design.fixed_names]
        encoder.design = design
        parts = client.compute(frame.to_delayed())
        leaves = [client.submit(encode_rows, part, shared, fam, kept, pure=False) for part in parts]
        for future in leaves:  # waits; a partition's error (a bad response) is raised here
            if future.exception() is not None:
                future.result()
        for part in parts:  # the encoded rows stay on the workers, the raw ones go
            part.release()
        log.record(f"encode: {len(leaves)} partitions encoded and persisted")
        if fam.proportion_response:  # as in memory: refused before any Laplace pass
            counts = tree_sum(client, leaves, separation_counts, (), "separation", log)
            check_separation(counts, design.fixed_names)
        term = ordered[0]
        ell = term.n_levels
        engine = DaskLaplace(client, leaves, fam, ell, log)
        with np.errstate(over="ignore", under="ignore"):
            model = _fit(engine, design, term, order, fam, control, log)
        beta, spread = model.fixef.to_numpy(), None
        if fam.proportion_response:
            spread = tree_sum(client, leaves, fitted_spread, (beta,), "separation", log)
        for future in leaves:
            future.release()
    model.attach(frame, encoder, log)
    warn_if_singular(model.theta, np.zeros(1))
    if spread is not None:
        warn_fitted_separation(spread, beta, design.fixed_names)
    return model


def _hessian_vcov_at(engine: DaskLaplace, lam: float, beta: np.ndarray):
    """lme4's vcov (the β block of the inverse of half the Hessian of the Laplace deviance
    in (θ, β); None when it is not positive definite), the Hessian, and the mode state
    back at the optimum (the warm start of the passes after)."""
    full_hessian = engine.hessian(lam, beta)
    state = engine.mode(lam, beta)
    try:
        np.linalg.cholesky(full_hessian / 2.0)
    except np.linalg.LinAlgError:
        return None, full_hessian, state
    vcov = np.linalg.inv(full_hessian / 2.0)[1:, 1:]
    return 0.5 * (vcov + vcov.T), full_hessian, state


def _fit(engine: DaskLaplace, design, term, order, fam: Family, control: Control, log: PassLog):
    from scipy.optimize import minimize as scipy_minimize

    from .model import DaskGeneralizedLinearMixedModel, RowlessGlmmProblem

    p = len(design.fixed_names)
    beta0 = engine.starting_beta(p)
    engine.beta = beta0
    theta0 = np.array([1.0])
    result = scipy_minimize(
        engine.profiled,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)],
        options={"ftol": 1e-15, "gtol": GRADIENT_TOLERANCE, "maxiter": 200},
    )
    if not np.isfinite(result.fun):
        raise DataError(
            "The Laplace deviance is not finite along the search (separation or extreme "
            "fitted values?); check the data, or fit in memory to see the diagnostics."
        )
    lam = max(float(result.x[0]), 0.0)
    state = engine.optimize_beta(lam, engine.beta)
    beta = state.beta
    vcov, full_hessian = None, None
    if control.wants_derivatives("glmer", design.nobs):
        vcov, full_hessian, state = _hessian_vcov_at(engine, lam, beta)
    if engine.pirls_failures:
        warn(
            f"PIRLS did not converge in {engine.pirls_failures} evaluation(s); the estimates "
            "may be inaccurate (complete separation or extreme fitted values?).",
            ConvergenceWarning,
        )
    blocks = tree_sum(
        engine.client,
        engine.leaves,
        weighted_blocks,
        (fam, dataclasses.replace(term, codes=np.zeros(0, np.int64)), lam, beta, state.u),
        "blocks at the mode",
        log,
    )
    cp = CrossProducts.from_sums(blocks, [term], order)
    theta = np.array([lam])
    sol = solve(cp, theta, reml=False)
    scale2 = sol.sigma**2
    b_cov = [c / scale2 for c in sol.b_cov] if scale2 > 0 else sol.b_cov
    u = [state.u[:, None]]
    solution = Solution(
        beta=beta,
        sigma=1.0,
        vcov_unscaled=vcov if vcov is not None else sol.vcov_unscaled,
        b=[lam * u[0]],
        b_cov=b_cov,
        pwrss=sol.pwrss,
        u_norm2=float(state.u @ state.u),
        u=u,
        logdet_z=float(np.sum(np.log(state.diag))),
    )
    log.record(
        f"optimizer: {engine.evaluations} profiled deviance evaluations, "
        f"{engine.passes} Laplace passes"
    )
    full = OptSummary(
        initial=np.concatenate([theta0, beta0]),
        lower=np.array([0.0, *np.full(p, -np.inf)]),
        final=np.concatenate([theta, beta]),
        objective=state.deviance,
        evaluations=engine.evaluations,
        optimizer="scipy L-BFGS-B (exact θ gradient), on Dask",
        return_code="SUCCESS" if result.success else "FAILURE",
        ftol_rel=1e-15,
        xtol_abs=control.xtol_abs,
    )
    full.hessian = full_hessian
    opt = OptSummary(
        initial=theta0,
        lower=np.zeros(1),
        final=theta,
        objective=state.deviance,
        evaluations=engine.evaluations,
        optimizer=full.optimizer,
        return_code=full.return_code,
        ftol_rel=1e-15,
        xtol_abs=control.xtol_abs,
    )
    problem = RowlessGlmmProblem(cp, fam)
    return DaskGeneralizedLinearMixedModel(
        design,
        problem,
        opt,
        full,
        solution,
        bool(result.success),
        "hessian" if vcov is not None else "pirls",
    )
