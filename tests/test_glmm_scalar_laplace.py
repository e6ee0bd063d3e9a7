"""The compiled Laplace iterations of scalar-term GLMMs against the numpy path they
replace (:mod:`mixedmodels.glmm.scalar_laplace`)."""

from __future__ import annotations

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.frontend.design_types import ReTerm
from mixedmodels.glmm import optimize, scalar_laplace
from mixedmodels.glmm.families import get_family
from mixedmodels.glmm.gradient import beta_gradient, theta_gradient
from mixedmodels.glmm.pirls import GlmmProblem
from mixedmodels.glmm.scalar_laplace import ScalarLaplace


def _term(name: str, codes: np.ndarray, matrix: np.ndarray | None = None) -> ReTerm:
    n = codes.size
    matrix = np.ones((n, 1)) if matrix is None else matrix
    names = ("(Intercept)",) if matrix.shape[1] == 1 else ("(Intercept)", "x")
    return ReTerm(
        name, codes, np.arange(codes.max() + 1).astype(str), matrix, names, "us", "1", (name,)
    )


def _problem(family: str, crossed: bool, link: str | None = None, seed: int = 5) -> GlmmProblem:
    rng = np.random.default_rng(seed)
    n = 900
    g, h = rng.integers(0, 60, n), rng.integers(0, 9, n)
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    eta = X @ np.array([0.2, 0.5, -0.4]) + 0.8 * rng.normal(size=60)[g]
    if crossed:
        eta += 0.5 * rng.normal(size=9)[h]
    if family == "binomial":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    terms = (_term("g", g), _term("h", h)) if crossed else (_term("g", g),)
    return GlmmProblem(
        y, X, terms, np.ones(n), rng.normal(scale=0.1, size=n), get_family(family, link)
    )


CASES = [("binomial", True), ("binomial", False), ("poisson", True), ("poisson", False)]


@pytest.mark.parametrize(("family", "crossed"), CASES)
def test_joint_state_equals_laplace_pirls(family, crossed):
    problem = _problem(family, crossed)
    kernel = ScalarLaplace.of(problem)
    assert kernel is not None
    beta = np.array([0.1, 0.4, -0.3])
    for theta in (np.array([0.9, 0.4])[: problem.n_theta], np.array([0.3, 1.2])[: problem.n_theta]):
        problem.reset()
        problem.pirls(theta, beta)
        state = kernel.joint(theta, beta)
        problem.reset()
        problem.pirls(theta, beta)
        reference = problem.laplace_pirls(theta, beta)
        assert reference is not None
        assert state.deviance == pytest.approx(reference.deviance, abs=1e-9)
        np.testing.assert_allclose(state.beta, reference.beta, atol=1e-9)
        np.testing.assert_allclose(
            state.theta_gradient, theta_gradient(problem, theta, reference), atol=1e-8
        )


@pytest.mark.parametrize(("family", "crossed"), CASES)
def test_fixed_state_equals_pirls_and_its_gradients(family, crossed):
    problem = _problem(family, crossed)
    kernel = ScalarLaplace.of(problem)
    theta, beta = np.array([0.7, 0.5])[: problem.n_theta], np.array([0.3, 0.2, -0.1])
    problem.reset()
    state = kernel.fixed(theta, beta)
    problem.reset()
    reference = problem.pirls(theta, beta, keep_factor=True)
    gradient, information = beta_gradient(problem, theta, reference)
    assert state.deviance == pytest.approx(reference.deviance, abs=1e-9)
    np.testing.assert_allclose(state.beta_gradient, gradient, atol=1e-8)
    np.testing.assert_allclose(state.information, information, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(
        state.theta_gradient, theta_gradient(problem, theta, reference), atol=1e-8
    )


def test_a_term_on_its_bound_keeps_the_numpy_gradient():
    problem = _problem("binomial", True)
    kernel = ScalarLaplace.of(problem)
    theta, beta = np.array([0.0, 0.6]), np.array([0.3, 0.2, -0.1])
    state = kernel.fixed(theta, beta)
    problem.reset()
    reference = problem.pirls(theta, beta, keep_factor=True)
    assert state.deviance == pytest.approx(reference.deviance, abs=1e-9)
    np.testing.assert_allclose(
        state.theta_gradient, theta_gradient(problem, theta, reference), atol=1e-8
    )


def test_kernel_refuses_what_it_does_not_compute():
    assert ScalarLaplace.of(_problem("binomial", True, link="probit")) is None
    problem = _problem("binomial", False)
    vector = GlmmProblem(
        problem.y,
        problem.X,
        (_term("g", problem.terms[0].codes, np.column_stack([np.ones(900), problem.X[:, 1]])),),
        problem.prior_weights,
        problem.offset,
        problem.family,
    )
    assert ScalarLaplace.of(vector) is None
    quadrature = GlmmProblem(
        problem.y,
        problem.X,
        problem.terms,
        problem.prior_weights,
        problem.offset,
        problem.family,
        nagq=5,
    )
    assert ScalarLaplace.of(quadrature) is None


def test_glmer_fit_is_the_same_with_and_without_the_kernel(monkeypatch):
    rng = np.random.default_rng(11)
    n = 1200
    import pandas as pd

    data = pd.DataFrame(
        {
            "g": pd.Categorical(rng.integers(0, 80, n).astype(str)),
            "h": pd.Categorical(rng.integers(0, 12, n).astype(str)),
            "x": rng.normal(size=n),
        }
    )
    eta = (
        0.3
        + 0.6 * data.x
        + rng.normal(size=80)[data.g.cat.codes]
        + 0.5 * rng.normal(size=12)[data.h.cat.codes]
    )
    data["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    compiled = mm.glmer("y ~ x + (1 | g) + (1 | h)", data, family="binomial")
    monkeypatch.setattr(scalar_laplace.ScalarLaplace, "of", classmethod(lambda cls, p: None))
    monkeypatch.setattr(optimize.ScalarLaplace, "of", classmethod(lambda cls, p: None))
    plain = mm.glmer("y ~ x + (1 | g) + (1 | h)", data, family="binomial")
    assert compiled.loglik == pytest.approx(plain.loglik, abs=1e-7)
    np.testing.assert_allclose(compiled.fixef, plain.fixef, atol=1e-5)
    np.testing.assert_allclose(
        np.sqrt(np.diag(compiled.vcov)), np.sqrt(np.diag(plain.vcov)), rtol=1e-5
    )


@pytest.mark.parametrize(("family", "crossed"), CASES)
def test_a_warm_joint_state_is_the_laplace_optimum(family, crossed):
    """A joint state warm-started from the state at a nearby θ is converged: its deviance
    is that of PIRLS at its β, and its β that of Newton's method on the profiled
    deviance (with a tolerance of 1e-6 on the last step the state from a warm start was
    1e-5 off in the deviance and 6e-4 in the θ derivative, which made a θ search wander)."""
    problem = _problem(family, crossed)
    kernel = ScalarLaplace.of(problem)
    theta = np.array([0.9, 0.4])[: problem.n_theta]
    problem.pirls(theta, np.array([0.1, 0.4, -0.3]))
    first = kernel.joint(theta, np.array([0.1, 0.4, -0.3]))
    nearby = theta * (1 + 3e-7)
    state = kernel.joint(nearby, first.beta)
    at_beta = kernel.fixed(nearby, state.beta)
    assert abs(state.deviance - at_beta.deviance) < 1e-9
    reference = optimize.optimize_beta(problem, nearby, state.beta)
    np.testing.assert_allclose(state.beta, reference.beta, atol=1e-7)
    assert abs(state.deviance - reference.state.deviance) < 1e-9


def test_tolerances_reach_the_kernel_as_arguments():
    """The kernel reads its tolerance per call (numba's cache would keep a global of
    another module as it was at compile time): a loose one stops the steps early."""
    problem = _problem("binomial", False)
    kernel = ScalarLaplace.of(problem)
    theta, beta = np.array([0.9]), np.array([0.1, 0.4, -0.3])
    problem.pirls(theta, beta)
    tight = kernel.joint(theta, beta)
    problem.reset()
    problem.pirls(theta, beta)
    loose = kernel.joint(theta, beta, tolerance=1e-2)
    assert abs(loose.deviance - tight.deviance) > 1e-9
    assert tight.deviance == pytest.approx(kernel.fixed(theta, tight.beta).deviance, abs=1e-9)


def test_rough_states_only_while_the_derivative_is_steep():
    """The search's states stop at the rough tolerance only after a steep derivative;
    the one it ends on, and the optimum's, are at the full tolerance."""
    problem = _problem("binomial", True)
    profiled = optimize.ProfiledLaplace(problem, np.array([0.1, 0.4, -0.3]))
    first = profiled._compiled_state(np.array([1.0, 1.0]))
    assert profiled._last[2]  # the first state: exact
    assert np.max(np.abs(first.theta_gradient)) > optimize.STEEP_DERIVATIVE
    profiled._compiled_state(np.array([0.8, 0.5]))
    assert not profiled._last[2]
    exact = profiled._compiled_state(np.array([0.8, 0.5]), exact=True)
    assert profiled._last[2]
    reference = optimize.optimize_beta(problem, np.array([0.8, 0.5]), exact.beta)
    assert abs(exact.deviance - reference.state.deviance) < 1e-9


def _one_term_fit(y_scale: float, seed: int):
    rng = np.random.default_rng(seed)
    n, groups = 2000, 80
    g = rng.integers(0, groups, n)
    x = rng.normal(size=n)
    eta = 0.3 + 0.6 * x + y_scale * rng.normal(size=groups)[g]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return mm.glmer("y ~ x + (1 | g)", {"y": y, "x": x, "g": g.astype(str)}, family="binomial")


@pytest.mark.parametrize(("y_scale", "seed"), [(1.5, 3), (0.4, 4), (0.0, 5)])
def test_secant_search_reaches_the_quasi_newton_optimum(y_scale, seed):
    """One scalar term: the secant search on the exact θ derivative ends where L-BFGS-B
    on the same derivative does (to 1e-6 in θ, 1e-8 in the deviance), in fewer
    evaluations; in the last case its second step lands on θ = 0, which is checked by
    a point inside (the minimum is at 0.1), where L-BFGS-B needs the restarts."""
    model = _one_term_fit(y_scale, seed)
    problem = model.problem
    theta_hat = model.opt_summary.final[:1]
    assert model.opt_summary.optimizer.startswith("secant")
    problem.reset()
    profiled = optimize.ProfiledLaplace(problem, problem._starting_beta())
    lower = problem.template.lower_bounds()
    control = optimize.Control()
    reference = optimize._quasi_newton(profiled, problem.template.initial_theta(), lower, control)
    reference = optimize.escape_boundary(profiled, reference, control)
    np.testing.assert_allclose(theta_hat, reference.final, atol=1e-6)
    assert -2 * model.loglik <= reference.objective + 1e-8
    assert model.opt_summary.evaluations < reference.evaluations


def test_secant_search_bisects_after_a_step_onto_the_bound():
    """A first step that lands on θ = 0 finds a higher deviance there (whose derivative
    is 0 by symmetry, not by optimality): the search bisects back inside."""
    problem = _problem("binomial", False)
    profiled = optimize.ProfiledLaplace(problem, np.array([0.1, 0.4, -0.3]))
    lower = problem.template.lower_bounds()
    calls = []
    original = profiled.with_gradient

    def recording(theta, exact=False):
        calls.append(float(theta[0]))
        return original(theta, exact)

    profiled.with_gradient = recording
    summary = optimize._secant_search(profiled, np.array([2.0]), lower, optimize.Control())
    assert summary is not None and summary.final[0] > 0.1
    value, gradient = original(summary.final)
    assert abs(gradient[0]) < 1e-3
    assert calls[1] == 1.0  # halfway to the bound, not onto it
