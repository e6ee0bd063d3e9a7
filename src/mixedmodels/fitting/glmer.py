"""``glmer``: generalized linear mixed models with lme4's formula, estimates and stages.

Stage 1 optimizes θ with β estimated inside PIRLS (lme4's ``nAGQ = 0`` fit); stage 2
optimizes θ and β together on the Laplace (or adaptive Gauss-Hermite) deviance,
starting from stage 1, as lme4's default two-stage ``glmer``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._threads import blas_threads_for
from .._warnings import warn
from ..errors import ConvergenceWarning, DataError, SingularFitWarning
from ..frontend.checks import check_lmm_design
from ..frontend.columns import as_dataframe
from ..frontend.design import build_design
from ..frontend.design_types import NaAction
from ..frontend.formula import parse_formula
from ..frontend.response import generalized_response, row_values, success_level
from ..frontend.update import FitCall
from ..glmm.families import Family, get_family
from ..glmm.gradient import has_beta_gradient
from ..glmm.optimize import fit_profiled, laplace_derivatives, stage2_step
from ..glmm.options import check_glmer_options
from ..glmm.pirls import GlmmProblem, dispersion_pwrss
from ..glmm.separation import (
    FittedSpread,
    SeparationCounts,
    check_separation,
    warn_fitted_separation,
)
from ..lmm.crossprods import CrossProducts
from ..lmm.deviance import Solution, solve
from ..lmm.optimize import (
    Control,
    OptSummary,
    boundary_mask,
    check_convergence,
    minimize,
    warn_if_singular,
)
from ..models.generalized_mixed import GeneralizedLinearMixedModel


def glmer(
    formula: str,
    data: Any,
    family: str | Family = "binomial",
    link: str | None = None,
    nagq: int = 1,
    weights: Any = None,
    offset: Any = None,
    na_action: NaAction = "omit",
    control: dict | Control | None = None,
) -> GeneralizedLinearMixedModel:
    """Fit a generalized linear mixed model by maximum likelihood, as lme4's ``glmer``.

    Parameters
    ----------
    formula : str
        lme4 syntax; binomial responses may be 0/1, booleans, a two-level factor (its
        second level is the success), proportions with ``weights=`` trials, or
        ``cbind(successes, failures)``; ``offset(...)`` terms are allowed.
    data : DataFrame, polars DataFrame or dict of arrays
    family : str or Family
        ``"binomial"``, ``"poisson"``, ``"Gamma"`` or ``"inverse_gaussian"`` (R's
        ``inverse.gaussian`` too); ``glmer_nb`` for the negative binomial.  Gamma and
        inverse Gaussian fits estimate a dispersion as lme4 does: the Laplace deviance
        takes it from the conditional deviance (R's ``family$aic``), and ``sigma`` is
        lme4's ``sqrt(pwrss / n)``; see Notes.
    link : str, optional
        ``"logit"``, ``"probit"``, ``"cloglog"``, ``"log"``, ``"identity"``, ``"inverse"``,
        ``"sqrt"``, ``"1/mu^2"``; the family's canonical link by default (R's: inverse
        for Gamma, 1/mu^2 for inverse Gaussian; log is the usual choice for both).
    nagq : int, default 1
        1: Laplace; > 1: adaptive Gauss-Hermite with that many nodes (one scalar
        random-effects term only; binomial and poisson); 0: stop after the first stage
        (β inside PIRLS).
    weights : str or array-like, optional
        Prior weights (binomial: numbers of trials for proportions).
    offset : str or array-like, optional
    na_action : {"omit", "fail"}
    control : dict or Control, optional

    Returns
    -------
    GeneralizedLinearMixedModel

    Notes
    -----
    The estimates are the optimum of lme4's Laplace (or AGQ) deviance in (θ, β).  For
    binomial-logit and poisson-log fits with ``nagq=1`` it is found with the exact
    gradient: β profiled out by joint Laplace steps, θ by L-BFGS-B when every term is
    scalar (BOBYQA otherwise, or with ``control={"optimizer": "nelder_mead"}``
    Nelder-Mead), and the Hessian for the standard errors from differences of the
    gradient.  Other families, links and ``nagq`` take lme4's two derivative-free stages.

    For Gamma and inverse Gaussian families the estimates are lme4's (``glmer(...,
    family = Gamma(link = "log"))``), including its conventions: the objective is
    ``log|L|² + ‖û‖² + family$aic(y, n, μ̂, wt, dev)`` with the dispersion taken as
    ``dev / Σwt`` and the +2 ``aic`` adds; PIRLS ignores the dispersion; ``sigma`` is
    ``sqrt((Pearson χ² + ‖û‖²) / n)``; the random-effect SDs of :meth:`varcorr` are
    the relative ones (θ) times ``sigma``, while the conditional modes are ``Λû``
    unscaled; and σ counts as a parameter in the AIC although the objective already
    holds the +2.  Standard errors come from the Hessian of that objective, not scaled
    by σ².  These are lme4's choices, kept for parity (lme4's own issue #557 discusses
    how well the random-effect SD is recovered).  lme4's reported optimum is that of a
    criterion evaluated after PIRLS stopped at a relative change of 1e-7 in the
    penalized deviance; this criterion, unlike the binomial and Poisson ones, moves
    with û to first order, so lme4's estimates move with that tolerance (its criterion
    is off by −1.8e-3 to +5.9e-3 on the test fixtures, θ by up to 0.25%).  Ours are
    those of the converged criterion: lme4's with ``glmerControl(tolPwrss = 1e-13)``.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> data = mm.datasets.speed_dating(seed=2, n_raters=60, dates_per_rater=10)
    >>> g = mm.glmer("decision ~ attractive_sc + (1 | iid)", data, family="binomial")
    >>> bool(g.fixef["attractive_sc"] > 0)
    True

    A Gamma GLMM with a log link:

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(30), 10)
    >>> mu = np.exp(1.0 + rng.normal(0, 0.4, 30)[g])
    >>> d = pd.DataFrame({"y": rng.gamma(4.0, mu / 4.0), "g": g})
    >>> m = mm.glmer("y ~ 1 + (1 | g)", d, family="Gamma", link="log")
    >>> list(m.varcorr()["group"])
    ['g', 'Residual']
    >>> bool(0.35 < m.sigma < 0.65)  # shape 4: dispersion 1/4
    True
    """
    call = FitCall.capture(glmer, locals())
    model = _glmer(formula, data, family, link, nagq, weights, offset, na_action, control)
    return call.attach(model)


def _glmer(
    formula: str,
    data: Any,
    family: str | Family,
    link: str | None,
    nagq: int,
    weights: Any,
    offset: Any,
    na_action: NaAction,
    control: dict | Control | None,
) -> GeneralizedLinearMixedModel:
    """:func:`glmer`'s work: the options checked, the design built, the fit (by
    :func:`_fit`) and its separation check."""
    from ..scale import is_scale_input

    control = Control.from_any(control)
    if is_scale_input(data):  # Dask data or parquet: one distributed pass per PIRLS step
        from ..scale.glmer import glmer_dask

        return glmer_dask(
            formula,
            data,
            family=family,
            link=link,
            nagq=nagq,
            weights=weights,
            offset=offset,
            na_action=na_action,
            control=control,
        )
    fam = get_family(family, link)
    spec = parse_formula(formula)
    check_glmer_options(fam, nagq, spec)
    frame = as_dataframe(data)
    y, trials = generalized_response(spec, frame, fam.proportion_response)
    prior = None if weights is None else row_values(frame, weights, "weights")
    if trials is not None:
        prior = trials if prior is None else prior * trials
    design = build_design(
        spec, frame, weights=prior, offset=offset, na_action=na_action, response=y
    )
    check_lmm_design(design, generalized=True)
    wt = design.weights if design.weights is not None else np.ones(design.nobs)
    fam.check_response(design.y, wt)
    if fam.proportion_response:
        check_separation(SeparationCounts.of_rows(design.y, design.X, wt), design.fixed_names)
    problem = GlmmProblem(
        y=design.y,
        X=design.X,
        terms=design.terms,
        prior_weights=wt,
        offset=design.offset if design.offset is not None else np.zeros(design.nobs),
        family=fam,
        nagq=1,
    )
    with blas_threads_for(problem.template), np.errstate(over="ignore", under="ignore"):
        try:
            model = _fit(design, problem, nagq, control)
        except (FloatingPointError, np.linalg.LinAlgError) as exc:
            raise DataError(
                f"The fit broke down numerically ({exc}). The usual causes: a covariate or "
                "factor level that separates the outcomes, or covariates on very different "
                "scales; check the data, rescale with scale(x), or simplify the model."
            ) from None
    if fam.proportion_response:
        beta = model.fixef.to_numpy()
        spread = FittedSpread.of_rows(model.design.X, beta)
        warn_fitted_separation(spread, beta, model.design.fixed_names)
    model.success_level = success_level(spec.response, frame, fam.proportion_response)
    return model


def _fit(
    design,
    problem: GlmmProblem,
    nagq: int,
    control: Control,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> GeneralizedLinearMixedModel:
    """Fit ``problem``; ``start`` = (θ, β) in internal order warm-starts the derivative-free
    path at stage 2 (refits of a nearby model, as glmer_nb's over the shape)."""
    n_theta = problem.n_theta
    lower_theta = problem.template.lower_bounds()
    # lme4's glmer always computes the Hessian (calc.derivs = TRUE): its vcov is the β block of
    # that Hessian's inverse, so skipping it on large data would change every SE
    derivs = control.wants_derivatives("glmer", design.nobs)
    if nagq == 1 and has_beta_gradient(problem):
        full, theta, beta = _fit_with_gradient(problem, lower_theta, control)
        derivatives = laplace_derivatives(problem, theta, beta, lower_theta) if derivs else None
    else:
        full, theta, beta = _fit_derivative_free(problem, nagq, lower_theta, control, start)
        derivatives = None
    state = problem.pirls(theta, beta)
    converged = True
    vcov_source = "pirls"
    vcov = None
    if nagq >= 1 and derivs:
        converged = check_convergence(problem.deviance_theta_beta, full, derivatives=derivatives)
        vcov = _hessian_vcov(full, n_theta)
        if vcov is not None:
            vcov_source = "hessian"
        if derivatives is None:  # the differences of the check moved the warm start
            state = problem.pirls(theta, beta)
    if problem.pirls_failures:
        warn(
            f"PIRLS did not converge in {problem.pirls_failures} evaluation(s); the estimates "
            "may be inaccurate (complete separation or extreme fitted values?).",
            ConvergenceWarning,
        )
    solution = _solution(problem, theta, beta, state, vcov)
    theta_summary = OptSummary(
        initial=full.initial[:n_theta],
        lower=lower_theta,
        final=theta,
        objective=state.deviance,
        evaluations=problem.evaluations,
        optimizer=full.optimizer,
        return_code=full.return_code,
        ftol_rel=full.ftol_rel,
        xtol_abs=full.xtol_abs,
        messages=full.messages,
    )
    model = GeneralizedLinearMixedModel(
        design, problem, theta_summary, full, solution, converged, vcov_source
    )
    warn_if_singular(theta, lower_theta)
    return model


def _fit_with_gradient(
    problem: GlmmProblem, lower_theta: np.ndarray, control: Control
) -> tuple[OptSummary, np.ndarray, np.ndarray]:
    """Laplace fit with the exact gradient: θ searched from the identity (L-BFGS-B or
    BOBYQA), β profiled out from the GLM fit (no separate nAGQ = 0 stage is needed)."""
    theta0 = problem.template.initial_theta()
    full, beta = fit_profiled(problem, theta0, problem._starting_beta(), lower_theta, control)
    theta = full.final[: problem.n_theta]
    if boundary_mask(theta, lower_theta).any():
        # a singular fit can sit in another basin than lme4's (a random slope's SD at 0
        # where lme4 finds a ±1 correlation, deviance 1.3 lower): lme4's own two stages
        # are run too, and the lower deviance kept
        problem.reset()
        alternative = _fit_derivative_free(problem, 1, lower_theta, control)
        if alternative[0].objective < full.objective - 1e-10:
            alternative[0].evaluations += full.evaluations
            return alternative
        problem.pirls(theta, beta)  # restore the warm start at our optimum
    return full, theta, beta


def _fit_derivative_free(
    problem: GlmmProblem,
    nagq: int,
    lower_theta: np.ndarray,
    control: Control,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[OptSummary, np.ndarray, np.ndarray]:
    """lme4's two stages: θ with β inside PIRLS (nAGQ = 0), then (θ, β) by BOBYQA; with a
    ``start`` (θ, β) near the optimum the first stage is skipped."""
    if start is not None and nagq >= 1:
        theta, beta = (np.asarray(v, dtype=float) for v in start)
        state = problem.pirls(theta, beta)
    else:
        stage1 = minimize(
            problem.deviance_theta, problem.template.initial_theta(), lower_theta, control
        )
        state = problem.pirls(stage1.final, None)
        theta, beta = stage1.final, state.beta
        if nagq == 0:
            return stage1, theta, beta
    problem.nagq = nagq
    x0 = np.concatenate([theta, beta])
    lower = np.concatenate([lower_theta, np.full(beta.size, -np.inf)])
    # steps on each coordinate's own scale: β by its stage-1 standard error, so that
    # coefficients of badly scaled covariates (age² in years) are not overshot
    stage1_se = np.sqrt(np.diag(_solution(problem, theta, beta, state, None).vcov_unscaled))
    step = stage2_step(theta, stage1_se)
    full = minimize(problem.deviance_theta_beta, x0, lower, control, initial_step=step)
    n_theta = problem.n_theta
    return full, full.final[:n_theta], full.final[n_theta:]


def _hessian_vcov(full: OptSummary, n_theta: int) -> np.ndarray | None:
    """lme4's ``vcov`` for glmer: the β block of (Hessian/2)⁻¹ of the deviance in (θ, β)."""
    hessian = full.hessian
    if hessian is None or not np.all(np.isfinite(hessian)):
        return None
    try:
        np.linalg.cholesky(hessian / 2.0)
        inverse = np.linalg.inv(hessian / 2.0)
    except np.linalg.LinAlgError:
        return None
    block = inverse[n_theta:, n_theta:]
    return 0.5 * (block + block.T)


def _solution(
    problem: GlmmProblem, theta: np.ndarray, beta: np.ndarray, state, vcov: np.ndarray | None
) -> Solution:
    """Conditional modes and their conditional covariances at the optimum; vcov of β from
    the Hessian when available, else from the weighted PLS system (lme4's RX).

    For Gamma and inverse Gaussian fits ``pwrss`` is :func:`dispersion_pwrss` and the
    conditional covariances are scaled by σ² = pwrss / n, as lme4's ``condVar``."""
    working = problem.working_response(state.eta, state.mu)
    cp = CrossProducts.build(working, problem.X, problem.terms, weights=state.weights)
    sol = solve(cp, theta, reml=False)
    scale2 = sol.sigma**2  # solve() scales by the PLS residual variance: undo it
    b_cov = [c / scale2 for c in sol.b_cov] if scale2 > 0 else sol.b_cov
    if vcov is None:
        vcov = sol.vcov_unscaled
    pwrss = sol.pwrss
    if not problem.family.scale_free:
        pwrss = dispersion_pwrss(problem, state.mu, state.u)
        b_cov = [c * (pwrss / len(problem.y)) for c in b_cov]
    b = [u @ T.T for u, T in zip(state.u, problem.template.factors(theta), strict=True)]
    return Solution(
        beta=beta,
        sigma=1.0,
        vcov_unscaled=vcov,
        b=b,
        b_cov=b_cov,
        pwrss=pwrss,
        u_norm2=float(sum(np.sum(u**2) for u in state.u)),
        u=state.u,
        logdet_z=state.logdet,
    )


def glmer_nb(
    formula: str,
    data: Any,
    link: str = "log",
    weights: Any = None,
    offset: Any = None,
    na_action: NaAction = "omit",
    control: dict | Control | None = None,
) -> GeneralizedLinearMixedModel:
    """Negative binomial GLMM with its shape estimated, as lme4's ``glmer.nb``.

    The shape (R's ``theta``) maximises the Laplace log-likelihood of the GLMM fitted at
    that shape: a one-dimensional search on log(shape), each fit on the design of the
    starting Poisson GLMM and warm-started at the fit of the nearest shape tried.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import mixedmodels as mm
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 10)
    >>> mu = np.exp(1 + rng.normal(0, 0.5, 20)[g])
    >>> y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
    >>> m = mm.glmer_nb("y ~ 1 + (1 | g)", pd.DataFrame({"y": y, "g": g}))
    >>> bool(0.5 < m.family.shape < 10)
    True
    """
    call = FitCall.capture(glmer_nb, locals())
    from scipy.optimize import minimize_scalar

    from ..glmm.families import get_family

    base = get_family("negative_binomial", link)
    control = Control.from_any(control)
    fits: dict[float, GeneralizedLinearMixedModel] = {}

    # start from a Poisson GLMM's moment estimate of the shape, as glmer.nb does
    poisson = glmer(
        formula,
        data,
        family="poisson",
        link=link,
        weights=weights,
        offset=offset,
        na_action=na_action,
        control=control,
    )
    template = poisson.problem

    def fit(log_shape: float) -> GeneralizedLinearMixedModel:
        """The GLMM at one shape, on the Poisson fit's design, warm-started at the fit of
        the nearest shape already tried (the Poisson fit for the first)."""
        key = round(float(log_shape), 10)
        if key not in fits:
            nearest = min(fits, key=lambda k: abs(k - key)) if fits else None
            previous = fits[nearest] if nearest is not None else poisson
            problem = GlmmProblem(
                y=template.y,
                X=template.X,
                terms=template.terms,
                prior_weights=template.prior_weights,
                offset=template.offset,
                family=base.with_shape(float(np.exp(log_shape))),
            )
            warm = (previous.theta, previous.fixef.to_numpy())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SingularFitWarning)
                with blas_threads_for(problem.template):
                    fits[key] = _fit(poisson.design, problem, 1, control, start=warm)
        return fits[key]

    mu = poisson.fitted()
    y = poisson.design.y
    excess = np.sum((y - mu) ** 2 - mu)
    start = float(np.clip(np.sum(mu**2) / excess, 0.01, 1e4)) if excess > 0 else 10.0
    result = minimize_scalar(
        lambda s: -fit(s).loglik,
        bracket=(np.log(start) - 1.0, np.log(start) + 1.0),
        tol=1e-6,
    )
    model = fit(result.x)
    model.nb_shape_evaluations = len(fits)
    warn_if_singular(model.theta, model.opt_summary.lower)
    return call.attach(model)
