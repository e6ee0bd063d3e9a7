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
