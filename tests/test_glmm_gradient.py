"""The analytic β gradient of the Laplace deviance and the Hessian built from it,
against central differences of the deviance itself, on every block layout."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.glmm.gradient import beta_gradient, theta_gradient
from mixedmodels.glmm.optimize import ProfiledLaplace, laplace_derivatives, optimize_beta
from mixedmodels.lmm.optimize import Control, finite_difference_derivatives, minimize


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 900
    g = np.repeat(np.arange(45), 20)
    h = rng.integers(0, 6, n)
    x = rng.normal(size=n)
    eta = (
        0.2
        + 0.6 * x
        + rng.normal(0, 0.8, 45)[g]
        + rng.normal(0, 0.4, 45)[g] * x
        + rng.normal(0, 0.5, 6)[h]
    )
    trials = rng.integers(1, 6, n)
    return pd.DataFrame(
        {
            "y": rng.binomial(1, 1 / (1 + np.exp(-eta))),
            "k": rng.binomial(trials, 1 / (1 + np.exp(-eta))),
            "trials": trials,
            "c": rng.poisson(np.exp(0.5 * eta)),
            "x": x,
            "g": g.astype(str),
            "h": h.astype(str),
        }
    )


CASES = [
    ("y ~ x + (1 | g)", "binomial"),  # one scalar term: the per-level path
    ("y ~ x + (1 | g) + (1 | h)", "binomial"),  # crossed scalar terms: diagonal + dense tail
    ("cbind(k, trials - k) ~ x + (1 + x | g) + (1 | h)", "binomial"),  # vector first term
    ("c ~ x + (1 | h) + (1 + x | g)", "poisson"),
    ("c ~ x + (1 + x | g)", "poisson"),
]


def _fit(formula: str, family: str, data: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmer(formula, data, family=family)


@pytest.mark.parametrize(("formula", "family"), CASES)
def test_beta_gradient_matches_differences_of_the_deviance(formula, family, data):
    model = _fit(formula, family, data)
    problem = model.problem
    theta = model.theta * 1.2 + 0.05  # away from the optimum: a gradient that is not ~0
    beta = model.fixef.to_numpy() + 0.1
    state = problem.pirls(theta, beta, keep_factor=True)
    gradient, information = beta_gradient(problem, theta, state)
    fresh, _ = beta_gradient(problem, theta, problem.pirls(theta, beta))  # own factor
    np.testing.assert_allclose(fresh, gradient, rtol=1e-9, atol=1e-9)
    h = 1e-5
    numeric = np.array(
        [
            (
                problem.pirls(theta, beta + h * e).deviance
                - problem.pirls(theta, beta - h * e).deviance
            )
            / (2 * h)
            for e in np.eye(beta.size)
        ]
    )
    assert np.max(np.abs(gradient - numeric)) < 1e-6 * max(1.0, np.max(np.abs(numeric)))
    assert np.all(np.linalg.eigvalsh(information) > 0)


@pytest.mark.parametrize(
    ("formula", "family"),
    [("c ~ x + (1 | g) + (1 | h)", "poisson"), CASES[2]],  # exact θ gradient / θ by differences
)
def test_hessian_from_the_gradient_matches_lme4s_differences(formula, family, data):
    model = _fit(formula, family, data)
    problem = model.problem
    theta, beta = model.theta, model.fixef.to_numpy()
    lower = problem.template.lower_bounds()
    assert np.all(theta - lower > 0.05)  # inside the bounds: central differences everywhere
    grad, hess = laplace_derivatives(problem, theta, beta, lower)
    x = np.concatenate([theta, beta])
    grad_fd, hess_fd = finite_difference_derivatives(
        problem.deviance_theta_beta, x, np.concatenate([lower, np.full(beta.size, -np.inf)])
    )
    np.testing.assert_allclose(hess, hess_fd, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(grad, grad_fd, atol=1e-4)
    assert np.max(np.abs(grad[theta.size :])) < 1e-4  # β at its optimum


def test_newton_on_beta_reaches_the_laplace_optimum(data):
    model = _fit("y ~ x + (1 | g) + (1 | h)", "binomial", data)
    problem = model.problem
    theta = model.theta * 0.8
    start = model.fixef.to_numpy() - 0.3
    optimum = optimize_beta(problem, theta, start)
    assert optimum.steps <= 8
    assert np.max(np.abs(optimum.gradient)) < 1e-5
    # no direction lowers the deviance
    for e in np.eye(start.size):
        for sign in (-1, 1):
            moved = problem.pirls(theta, optimum.beta + sign * 1e-3 * e).deviance
            assert moved >= optimum.state.deviance - 1e-10


@pytest.mark.parametrize(("formula", "family"), CASES)
def test_joint_laplace_steps_reach_the_newton_optimum(formula, family, data):
    model = _fit(formula, family, data)
    problem = model.problem
    theta = model.theta * 0.9 + 0.02
    start = model.fixef.to_numpy()
    state = problem.laplace_pirls(theta, start)
    assert state is not None and state.converged
    newton = optimize_beta(problem, theta, start)
    np.testing.assert_allclose(state.beta, newton.beta, atol=2e-6)
    assert state.deviance == pytest.approx(newton.state.deviance, abs=1e-8)


def test_model_without_fixed_effects_is_fitted_without_the_gradient(data):
    # no β to profile: the derivative-free stages fit θ (lme4 gives θ = 0.7427 for
    # this kind of model; here the optimum is checked directly)
    model = _fit("y ~ 0 + (1 | g)", "binomial", data)
    assert model.fixef.size == 0
    problem = model.problem
    best = problem.deviance_theta_beta(model.theta)
    for step in (-0.01, 0.01):
        assert problem.deviance_theta_beta(model.theta + step) > best


SCALAR_CASES = [
    ("y ~ x + (1 | g)", "binomial"),
    ("y ~ x + (1 | g) + (1 | h)", "binomial"),  # the search passes θ_h = 0, a ridge top
    ("c ~ x + (1 | g) + (1 | h)", "poisson"),
    ("cbind(k, trials - k) ~ x + (1 | g) + (1 | h)", "binomial"),
]


@pytest.mark.parametrize(("formula", "family"), SCALAR_CASES)
def test_theta_gradient_matches_differences_of_the_deviance(formula, family, data):
    model = _fit(formula, family, data)
    problem = model.problem
    theta = model.theta * 1.2 + 0.05
    beta = model.fixef.to_numpy() + 0.1
    gradient = theta_gradient(problem, theta, problem.pirls(theta, beta, keep_factor=True))
    h = 1e-5
    numeric = [
        (problem.pirls(theta + h * e, beta).deviance - problem.pirls(theta - h * e, beta).deviance)
        / (2 * h)
        for e in np.eye(theta.size)
    ]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("formula", "family"), SCALAR_CASES[1:])
def test_quasi_newton_on_theta_reaches_the_bobyqa_optimum(formula, family, data):
    model = _fit(formula, family, data)
    assert model.opt_summary.optimizer.startswith("scipy L-BFGS-B")
    assert np.all(model.theta > 0.05)
    problem = model.problem.with_response(model.problem.y)
    lower = problem.template.lower_bounds()
    profiled = ProfiledLaplace(problem, model.fixef.to_numpy())
    bobyqa = minimize(profiled, problem.template.initial_theta(), lower, Control())
    assert model.deviance <= bobyqa.objective + 1e-8
    assert model.deviance == pytest.approx(bobyqa.objective, abs=1e-6)


def test_reset_clears_every_warm_start(data):
    model = _fit("y ~ x + (1 | g) + (1 | h)", "binomial", data)
    problem = model.problem
    problem.pirls(model.theta, None)  # β free: leaves a β and modes to start from
    assert problem._beta is not None
    problem.reset()
    assert problem._beta is None and problem._u_theta is None
    assert all(not np.any(u) for u in problem._u)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_gradient_fits_are_never_worse_than_lme4s_derivative_free_stages(seed):
    # random designs, some with a variance near zero: the exact-gradient path must end
    # at least as low as the two derivative-free stages lme4 uses
    from mixedmodels.fitting.glmer import _fit_derivative_free

    rng = np.random.default_rng(100 + seed)
    n_g, n_h = int(rng.integers(8, 40)), int(rng.integers(3, 9))
    n = int(rng.integers(200, 600))
    g, h = rng.integers(0, n_g, n), rng.integers(0, n_h, n)
    x = rng.normal(size=n)
    sd_g, sd_h = rng.choice([0.0, 0.2, 1.0]), rng.choice([0.0, 0.3, 0.8])
    eta = -0.3 + 0.7 * x + sd_g * rng.normal(size=n_g)[g] + sd_h * rng.normal(size=n_h)[h]
    family = "binomial" if seed % 2 == 0 else "poisson"
    if family == "binomial":
        y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    else:
        y = rng.poisson(np.exp(eta))
    frame = pd.DataFrame({"y": y, "x": x, "g": g.astype(str), "h": h.astype(str)})
    model = _fit("y ~ x + (1 | g) + (1 | h)", family, frame)
    problem = model.problem.with_response(model.problem.y)
    full, _, _ = _fit_derivative_free(problem, 1, problem.template.lower_bounds(), Control())
    assert model.deviance <= full.objective + 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("seed", [518, 519, 579])  # 519, 579: stopped at an SD of 0
def test_random_slope_fits_are_never_worse_than_the_derivative_free_stages(seed):
    from mixedmodels.fitting.glmer import _fit_derivative_free

    rng = np.random.default_rng(seed)
    n_g, n = int(rng.integers(8, 30)), int(rng.integers(200, 500))
    g, x = rng.integers(0, n_g, n), rng.normal(size=n)
    eta = (
        -0.2
        + 0.5 * x
        + rng.choice([0.0, 0.5, 1.0]) * rng.normal(size=n_g)[g]
        + rng.choice([0.0, 0.3, 0.6]) * rng.normal(size=n_g)[g] * x
    )
    family = "binomial" if seed % 2 == 0 else "poisson"
    if family == "binomial":
        y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    else:
        y = rng.poisson(np.exp(eta))
    frame = pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
    model = _fit("y ~ x + (1 + x | g)", family, frame)
    problem = model.problem.with_response(model.problem.y)
    full, _, _ = _fit_derivative_free(problem, 1, problem.template.lower_bounds(), Control())
    assert model.deviance <= full.objective + 1e-6
