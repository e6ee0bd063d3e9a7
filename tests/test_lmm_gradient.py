"""The exact θ gradient of the profiled (RE)ML deviance (mixedmodels.lmm.gradient) and the
L-BFGS-B path of lmer that uses it."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
import mixedmodels.lmm.devfun as devfun
from mixedmodels.frontend.lmer_design import lmer_design
from mixedmodels.lmm.crossprods import CrossProducts
from mixedmodels.lmm.deviance import deviance
from mixedmodels.lmm.gradient import deviance_and_gradient, supports_gradient
from mixedmodels.lmm.gradient_search import minimize_with_gradient
from mixedmodels.lmm.optimize import Control, minimize


def _crossed(seed: int, n: int = 1500, levels_b: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b, c = rng.integers(0, 150, n), rng.integers(0, levels_b, n), rng.integers(0, 6, n)
    x = rng.normal(size=n)
    y = (
        1.0
        + 0.3 * x
        + 0.7 * rng.normal(size=150)[a]
        + 0.4 * rng.normal(size=levels_b)[b]
        + 0.5 * rng.normal(size=6)[c]
        + rng.normal(size=n)
    )
    return pd.DataFrame(
        {"y": y, "x": x, "a": a.astype(str), "b": b.astype(str), "c": c.astype(str)}
    )


def _paths(cp: CrossProducts) -> dict[str, CrossProducts]:
    """The same cross-products through each of factorize's Schur paths."""
    paths = {"sparse": dataclasses.replace(cp, pair_map=None, dense_A21=None)}
    if cp.q2:
        paths["dense"] = dataclasses.replace(
            cp, pair_map=None, dense_A21=np.asfortranarray(cp.A21.toarray())
        )
        paths["as built"] = cp  # the pair map where it is cheaper
        if cp.A11.shape[1] == 1 and cp.tail_scalar:
            from mixedmodels.lmm.crossprods import _PairMap

            pairs = _PairMap.build(cp.A21.tocsc(), cp.q2)
            paths["pair map"] = dataclasses.replace(cp, pair_map=pairs, dense_A21=None)
    return paths


def _numeric_gradient(cp, theta, reml, step=1e-6):
    out = np.empty(theta.size)
    for j in range(theta.size):
        e = np.zeros(theta.size)
        e[j] = step
        out[j] = (deviance(cp, theta + e, reml) - deviance(cp, theta - e, reml)) / (2 * step)
    return out


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    "formula",
    ["y ~ x + (1 | a)", "y ~ x + (1 | a) + (1 | b)", "y ~ x + (1 | a) + (1 | b) + (1 | c)"],
)
def test_gradient_matches_central_differences(formula, reml, weighted):
    data = _crossed(7)
    design = lmer_design(formula, data)
    weights = np.random.default_rng(2).uniform(0.5, 2.0, len(data)) if weighted else None
    cp = CrossProducts.build(design.y, design.X, design.terms, weights)
    assert supports_gradient(cp)
    rng = np.random.default_rng(11)
    for name, variant in _paths(cp).items():
        theta = rng.uniform(0.2, 1.5, cp.n_theta)
        value, grad = deviance_and_gradient(variant, theta, reml)
        assert value == pytest.approx(deviance(cp, theta, reml), rel=1e-12), name
        numeric = _numeric_gradient(cp, theta, reml)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=5e-5 * np.abs(numeric).max())


def test_gradient_at_a_zero_sd_is_zero_in_that_coordinate_and_exact_in_the_others():
    data = _crossed(8)
    design = lmer_design("y ~ x + (1 | a) + (1 | b) + (1 | c)", data)
    cp = CrossProducts.build(design.y, design.X, design.terms)
    theta = np.array([0.6, 0.0, 0.4])
    _, grad = deviance_and_gradient(cp, theta, True)
    assert grad[1] == 0.0  # the deviance is even in each relative SD
    numeric = _numeric_gradient(cp, theta, True)
    np.testing.assert_allclose(grad[[0, 2]], numeric[[0, 2]], rtol=1e-5)


def test_vector_terms_are_not_claimed():
    data = _crossed(9)
    design = lmer_design("y ~ x + (1 + x | a)", data)
    cp = CrossProducts.build(design.y, design.X, design.terms)
    assert not supports_gradient(cp)


@pytest.mark.parametrize("reml", [True, False])
def test_lmer_takes_the_gradient_path_and_reaches_the_bobyqa_optimum(reml):
    # a tail of 106 effects: beyond the compiled deviance of small tails (BOBYQA's path)
    data = _crossed(10, n=3000, levels_b=100)
    formula = "y ~ x + (1 | a) + (1 | b) + (1 | c)"
    model = mm.lmer(formula, data, reml=reml)
    assert model.opt_summary.optimizer.startswith("scipy L-BFGS-B")
    design = lmer_design(formula, data)
    cp = CrossProducts.build(design.y, design.X, design.terms)
    bobyqa = minimize(
        lambda t: deviance(cp, t, reml), cp.initial_theta(), cp.lower_bounds(), Control()
    )
    assert model.opt_summary.objective <= bobyqa.objective + 1e-9 * abs(bobyqa.objective)
    assert model.opt_summary.evaluations < bobyqa.evaluations
    # the convergence check ran on the exact gradient, and it is ~0 at the optimum
    assert np.max(np.abs(model.opt_summary.gradient)) < 1e-2


def test_a_search_stuck_at_a_zero_sd_is_restarted_off_the_bound():
    data = _crossed(12)
    design = lmer_design("y ~ x + (1 | a) + (1 | b) + (1 | c)", data)
    cp = CrossProducts.build(design.y, design.X, design.terms)

    def func_and_gradient(theta):
        return deviance_and_gradient(cp, theta, True)

    # from θ_b = 0 the gradient in θ_b is 0, so L-BFGS-B cannot leave the bound by itself
    stuck = minimize_with_gradient(
        func_and_gradient, np.array([1.0, 0.0, 1.0]), cp.lower_bounds(), Control()
    )
    assert stuck.final[1] == 0.0
    freed = devfun._probe_off_bound(func_and_gradient, stuck, Control())
    assert freed.final[1] > 0.1
    assert freed.objective < stuck.objective - 1.0
    assert freed.evaluations > stuck.evaluations


def test_a_truly_singular_scalar_fit_stays_on_the_bound():
    rng = np.random.default_rng(13)
    data = _crossed(13)
    data["y"] = 1.0 + 0.3 * data["x"] + rng.normal(size=len(data))  # no b or c effects
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mm.lmer("y ~ x + (1 | a) + (1 | b) + (1 | c)", data)
    design = lmer_design("y ~ x + (1 | a) + (1 | b) + (1 | c)", data)
    cp = CrossProducts.build(design.y, design.X, design.terms)
    bobyqa = minimize(
        lambda t: deviance(cp, t, True), cp.initial_theta(), cp.lower_bounds(), Control()
    )
    assert model.opt_summary.objective <= bobyqa.objective + 1e-8 * abs(bobyqa.objective)


def _kernel_gradient(kernel, reml):
    """The compiled exact gradient of a one-term kernel as a function of θ."""
    from mixedmodels.lmm.exact_gradients import single_term_gradient

    arrays = (kernel._A2, kernel._P, kernel._XyXy, kernel._n, reml, kernel._sum_log_weights)
    return lambda theta: single_term_gradient(np.asarray(theta, dtype=float), *arrays)[1]


def _one_term(seed: int, slope_sd: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(25), 8)
    x = rng.normal(size=g.size)
    y = (
        1.0
        + x
        + rng.normal(size=25)[g]
        + slope_sd * rng.normal(size=25)[g] * x
        + rng.normal(size=g.size)
    )
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (1 + x | g)"])
@pytest.mark.parametrize("reml", [True, False])
def test_compiled_one_term_gradient_equals_differences(formula, reml):
    from mixedmodels.lmm.deviance import _single_term_kernel

    data = _one_term(20)
    weights = np.random.default_rng(21).uniform(0.5, 2.0, len(data))
    cp = mm.lmer(formula, data, reml=reml, weights=weights).crossprods
    kernel = _single_term_kernel(cp)
    gradient, deviance_at = _kernel_gradient(kernel, reml), kernel.profiled(reml)
    for theta in (cp.initial_theta(), np.array([0.6, -0.3, 0.4])[: cp.n_theta]):
        numeric = [
            (deviance_at(theta + e) - deviance_at(theta - e)) / 2e-6
            for e in np.eye(theta.size) * 1e-6
        ]
        np.testing.assert_allclose(gradient(theta), numeric, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "formula", ["y ~ x + (1 | g)", "y ~ x + (1 + x | g)", "y ~ x + (1 | a) + (1 | b) + (1 | c)"]
)
@pytest.mark.parametrize("reml", [True, False])
def test_small_fits_take_the_compiled_search_to_bobyqas_optimum_or_lower(formula, reml):
    """One-term models and crossed scalar terms with a small tail."""
    data = _one_term(22) if "g" in formula else _crossed(30, n=800)
    model = mm.lmer(formula, data, reml=reml)
    assert model.opt_summary.optimizer == "compiled BFGS (exact gradient)"
    cp = model.crossprods
    bobyqa = minimize(
        lambda t: deviance(cp, t, reml), cp.initial_theta(), cp.lower_bounds(), Control()
    )
    assert model.opt_summary.objective <= bobyqa.objective + 1e-10 * abs(bobyqa.objective)
    np.testing.assert_allclose(model.opt_summary.final, bobyqa.final, atol=2e-4)
    assert model.opt_summary.evaluations < bobyqa.evaluations
    # the convergence check ran on gradient differences: a Hessian, positive definite
    assert np.all(np.linalg.eigvalsh(model.opt_summary.hessian) > 0)


def test_a_singular_one_term_fit_goes_back_to_bobyqa_and_its_restarts():
    """An estimate on a bound ends the compiled search as ON_BOUND: BOBYQA's path, with
    its restarts off the bound, fits it as before."""
    from mixedmodels.lmm import compiled_search
    from mixedmodels.lmm.deviance import _single_term_kernel

    data = _one_term(23, slope_sd=0.0)
    data["y"] = data["y"] - data.groupby("g")["y"].transform("mean")  # no intercept variance
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mm.lmer("y ~ x + (1 + x | g)", data)
    cp = model.crossprods
    status = _single_term_kernel(cp).search(cp.initial_theta(), cp.lower_bounds(), True)[-1]
    assert status == compiled_search.ON_BOUND
    assert model.opt_summary.optimizer.startswith("nlopt LN_BOBYQA")
    assert model.opt_summary.final[0] < 1e-4


def test_a_control_other_than_the_default_keeps_bobyqa():
    data = _one_term(24)
    model = mm.lmer("y ~ x + (1 + x | g)", data, control={"ftol_rel": 1e-10})
    assert model.opt_summary.optimizer.startswith("nlopt LN_BOBYQA")


def test_compiled_one_term_hessian_equals_gradient_differences():
    from mixedmodels.lmm.deviance import _single_term_kernel
    from mixedmodels.lmm.gradient_search import gradient_derivatives

    cp = mm.lmer("y ~ x + (1 + x | g)", _one_term(25)).crossprods
    kernel = _single_term_kernel(cp)
    lower = cp.lower_bounds()
    for theta in (np.array([0.8, 0.1, 0.4]), np.array([0.8, 0.1, 0.0])):  # inside, on a bound
        _, reference = gradient_derivatives(_kernel_gradient(kernel, True), theta, lower)
        np.testing.assert_allclose(kernel.hessian(theta, lower, True), reference, rtol=1e-12)


@pytest.mark.parametrize(
    "formula",
    ["y ~ x + (1 | a) + (1 | b)", "y ~ x + (1 | a) + (1 | b) + (1 | c)", "y ~ x + (1 | b/c)"],
)
@pytest.mark.parametrize("reml", [True, False])
def test_compiled_scalar_terms_gradient_equals_numpys(formula, reml):
    """The compiled gradient of crossed or nested scalar terms with a small tail against
    deviance_and_gradient's numpy path, with weights, inside and with a θ at zero."""
    from mixedmodels.lmm.crossed_kernel import scalar_terms_kernel
    from mixedmodels.lmm.exact_gradients import scalar_terms_gradient

    data = _crossed(28, n=600)
    weights = np.random.default_rng(29).uniform(0.5, 2.0, len(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cp = mm.lmer(formula, data, reml=reml, weights=weights).crossprods
    kernel = scalar_terms_kernel(cp)
    assert kernel is not None
    arrays, n, sum_log_weights = kernel._gradient_arrays()
    for theta in (
        cp.initial_theta(),
        np.linspace(0.3, 1.4, cp.n_theta),
        np.r_[0.6, 0.0, 0.9][: cp.n_theta],
        np.r_[0.0, 0.5, 0.4][: cp.n_theta],
    ):
        value, gradient = scalar_terms_gradient(theta, *arrays, n, reml, sum_log_weights)
        reference_value, reference = deviance_and_gradient(cp, theta, reml)
        assert value == pytest.approx(reference_value, rel=1e-12)
        np.testing.assert_allclose(gradient, reference, rtol=1e-9, atol=1e-9)
    nan = np.r_[1.0, np.nan, 1.0][: cp.n_theta]
    assert scalar_terms_gradient(nan, *arrays, n, reml, sum_log_weights)[0] == np.inf


def test_a_crossed_fit_with_a_zero_variance_goes_back_to_bobyqa():
    """A crossed term without variance takes the compiled search towards its bound (the
    deviance is flat there: it stops at θ ~ 1e-9): BOBYQA's path and its restarts fit
    it, to θ = 0 for that term, as singular fits are."""
    from mixedmodels.lmm.crossed_kernel import scalar_terms_kernel

    data = _crossed(31, n=800)
    data["y"] = data["y"] - data.groupby("c")["y"].transform("mean")  # no variance in c
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mm.lmer("y ~ x + (1 | a) + (1 | c)", data)
    cp = model.crossprods
    kernel = scalar_terms_kernel(cp)
    assert kernel.search(cp.initial_theta(), cp.lower_bounds(), True)[0][1] < 1e-4
    assert model.opt_summary.optimizer.startswith("nlopt LN_BOBYQA")
    assert model.opt_summary.final[1] == 0.0


@pytest.mark.parametrize(
    "levels_b, optimizer",
    [(30, "compiled BFGS (exact gradient)"), (100, "nlopt LN_BOBYQA")],  # small tail; not
)
def test_bobyqa_and_the_compiled_search_keep_lme4s_start(levels_b, optimizer):
    """The separate-term start is the L-BFGS-B path's: from it BOBYQA's small first trust
    region stopped short (1.5e-5 above the optimum on 1M crossed rows) or took more
    evaluations (45 against 34 here, with the slope's restarts)."""
    data = _crossed(27, n=2000, levels_b=levels_b)
    model = mm.lmer("y ~ x + (1 | a) + (1 | b)", data)
    assert model.opt_summary.optimizer.startswith(optimizer)
    np.testing.assert_array_equal(model.opt_summary.initial, [1.0, 1.0])


def _badly_scaled_quadratic() -> tuple:
    H = np.array([[4.0e4, 3.0e3], [3.0e3, 9.0e2]])
    b = np.array([2.0e3, 1.0e2])
    optimum = np.linalg.solve(H, b)

    def value(x: np.ndarray) -> float:
        return float(0.5 * x @ H @ x - b @ x + 1.0e5)

    return H, b, optimum, value, lambda x: (value(x), H @ x - b)


def test_first_step_is_the_newton_step_along_the_gradient():
    from mixedmodels.lmm.gradient_search import _first_step

    H, b, _, value, value_and_gradient = _badly_scaled_quadratic()
    x0 = np.array([0.3, 0.2])
    f0, g0 = value_and_gradient(x0)
    newton = np.linalg.norm(g0) ** 3 / (g0 @ H @ g0)
    assert _first_step(value, x0, np.zeros(2), f0, g0) == pytest.approx(newton, rel=1e-10)
    # a probe that leaves the bounds keeps L-BFGS-B's own unit step
    assert _first_step(value, x0, np.array([0.3, 0.0]), f0, g0) == 1.0


def test_a_scaled_first_step_does_not_overshoot():
    """L-BFGS-B's own first step has unit length: on this curvature it lands far above the
    start (InstEval's went 4,600 above); scaled by the probe's Newton step it descends."""
    _, _, optimum, value, value_and_gradient = _badly_scaled_quadratic()
    x0 = np.array([0.3, 0.2])
    for value_only, overshoots in ((None, True), (value, False)):
        seen: list[float] = []

        def recorded(x: np.ndarray, seen: list[float] = seen) -> tuple[float, np.ndarray]:
            seen.append(value(x))
            return value_and_gradient(x)

        opt = minimize_with_gradient(
            recorded, x0, np.full(2, -np.inf), Control(), value_only=value_only
        )
        np.testing.assert_allclose(opt.final, optimum, rtol=1e-6)
        assert (seen[1] > seen[0]) is overshoots


def test_a_search_in_the_values_rounding_stops_as_stalled(monkeypatch):
    """Values with relative noise of 1e-14 and gradients with noise above the gradient
    tolerance (InstEval's rounding): the search ends two evaluations after the best one,
    where letting the line search run on spent five more for the same point."""
    import mixedmodels.lmm.gradient_search as gradient_search

    _, _, optimum, _, value_and_gradient = _badly_scaled_quadratic()

    def search() -> object:
        rng = np.random.default_rng(0)

        def noisy(x: np.ndarray) -> tuple[float, np.ndarray]:
            f, g = value_and_gradient(x)
            return f * (1.0 + 1e-14 * rng.normal()), g + 1e-2 * rng.normal(size=2)

        return minimize_with_gradient(noisy, np.array([0.3, 0.2]), np.full(2, -np.inf), Control())

    stalled = search()
    monkeypatch.setattr(gradient_search, "_STALL_EVALUATIONS", 10**6)
    ran_on = search()
    assert stalled.return_code == ran_on.return_code == "SUCCESS"
    np.testing.assert_allclose(stalled.final, optimum, rtol=1e-4)
    np.testing.assert_array_equal(stalled.final, ran_on.final)
    assert stalled.evaluations < ran_on.evaluations
