"""The blocked PLS deviance against a brute-force dense GLS likelihood, and invariances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mixedmodels as mm
from mixedmodels.lmm.crossprods import CrossProducts
from mixedmodels.lmm.deviance import deviance, solve


def dense_z(cp: CrossProducts) -> np.ndarray:
    blocks = []
    for term in cp.terms:
        n, k = term.matrix.shape
        Z = np.zeros((n, term.n_levels * k))
        for j in range(k):
            Z[np.arange(n), term.codes * k + j] = term.matrix[:, j]
        blocks.append(Z)
    return np.hstack(blocks)


def dense_lambda(cp: CrossProducts, theta: np.ndarray) -> np.ndarray:
    from scipy.linalg import block_diag

    return block_diag(
        *[np.kron(np.eye(t.n_levels), T) for t, T in zip(cp.terms, cp.factors(theta), strict=True)]
    )


def brute_force_deviance(y, X, Z, Lam, reml):
    n, p = X.shape
    V = Z @ Lam @ Lam.T @ Z.T + np.eye(n)
    Vinv = np.linalg.inv(V)
    XtVX = X.T @ Vinv @ X
    beta = np.linalg.solve(XtVX, X.T @ Vinv @ y)
    r = y - X @ beta
    r2 = r @ Vinv @ r
    logdet = np.linalg.slogdet(V)[1]
    if reml:
        return (
            logdet + np.linalg.slogdet(XtVX)[1] + (n - p) * (1 + np.log(2 * np.pi * r2 / (n - p)))
        )
    return logdet + n * (1 + np.log(2 * np.pi * r2 / n))


FORMULAS = [
    "y ~ x + (1 | a)",
    "y ~ x + (x | a)",
    "y ~ x + (1 | a) + (1 | b)",
    "y ~ x + (x | a) + (1 | b)",
    "y ~ x + (1 | a) + (x | b)",
    "y ~ x + (1 | a/c)",
    "y ~ x + (x || a) + (1 | b)",
    "y ~ x + (1 + x + z | a)",
    "y ~ x + (x | b) + (1 | a) + (0 + z | c)",
]


def simulated(seed: int, n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "a": rng.integers(0, 11, size=n).astype(str),
            "b": rng.integers(0, 5, size=n).astype(str),
            "c": rng.integers(0, 3, size=n).astype(str),
        }
    )


@settings(max_examples=40, deadline=None)
@given(
    formula=st.sampled_from(FORMULAS),
    seed=st.integers(0, 10_000),
    reml=st.booleans(),
    scale=st.floats(0.05, 3.0),
)
def test_deviance_equals_dense_gls_likelihood(formula, seed, reml, scale):
    design = mm.lmer_design(formula, simulated(seed))
    cp = CrossProducts.build(design.y, design.X, design.terms)
    rng = np.random.default_rng(seed)
    theta = cp.initial_theta() * scale + rng.normal(scale=0.3, size=cp.n_theta) * (
        ~np.isfinite(cp.lower_bounds())
    )
    expected = brute_force_deviance(design.y, design.X, dense_z(cp), dense_lambda(cp, theta), reml)
    assert deviance(cp, theta, reml) == pytest.approx(expected, rel=1e-9, abs=1e-8)


@pytest.mark.parametrize("formula", FORMULAS)
def test_conditional_modes_and_variances_equal_dense_solution(formula):
    design = mm.lmer_design(formula, simulated(7))
    cp = CrossProducts.build(design.y, design.X, design.terms)
    theta = cp.initial_theta() * 0.8 + 0.1 * (~np.isfinite(cp.lower_bounds()))
    sol = solve(cp, theta, reml=True)
    Z, Lam = dense_z(cp), dense_lambda(cp, theta)
    ZL = Z @ Lam
    M = ZL.T @ ZL + np.eye(ZL.shape[1])
    u = np.linalg.solve(M, ZL.T @ (design.y - design.X @ sol.beta))
    b = Lam @ u
    cov = sol.sigma**2 * Lam @ np.linalg.inv(M) @ Lam.T
    start = 0
    for term, b_term, cov_term in zip(cp.terms, sol.b, sol.b_cov, strict=True):
        size = term.n_effects
        np.testing.assert_allclose(b_term.ravel(), b[start : start + size], atol=1e-10)
        k = term.n_columns
        block = cov[start : start + size, start : start + size]
        for level in range(term.n_levels):
            np.testing.assert_allclose(
                cov_term[level],
                block[level * k : (level + 1) * k, level * k : (level + 1) * k],
                atol=1e-10,
            )
        start += size
    # β̂ is the GLS estimate
    V = ZL @ ZL.T + np.eye(len(design.y))
    Vinv = np.linalg.inv(V)
    beta = np.linalg.solve(design.X.T @ Vinv @ design.X, design.X.T @ Vinv @ design.y)
    np.testing.assert_allclose(sol.beta, beta, atol=1e-10)


def test_weighted_deviance_matches_dense():
    data = simulated(3)
    w = np.random.default_rng(3).uniform(0.5, 2.0, size=len(data))
    design = mm.lmer_design("y ~ x + (x | a)", data, weights=w)
    cp = CrossProducts.build(design.y, design.X, design.terms, weights=design.weights)
    theta = np.array([0.7, 0.2, 0.4])
    sw = np.sqrt(w)
    Z = dense_z(cp) * sw[:, None]
    expected = brute_force_deviance(
        design.y * sw, design.X * sw[:, None], Z, dense_lambda(cp, theta), reml=False
    ) - np.sum(np.log(w))
    assert deviance(cp, theta, reml=False) == pytest.approx(expected, rel=1e-10)


def test_finite_difference_gradient_is_zero_at_optimum():
    data = mm.datasets.gpa(seed=4)
    m = mm.lmer("gpa ~ occasion + (1 + occasion | student)", data)
    assert m.converged
    # the Newton step H⁻¹g is the distance to the true optimum in θ (the raw gradient
    # scales with the curvature, ~3000 here)
    step = np.linalg.solve(m.opt_summary.hessian, m.opt_summary.gradient)
    assert np.max(np.abs(step)) < 1e-5


@pytest.fixture(scope="module")
def crossed_data() -> pd.DataFrame:
    return mm.datasets.pupils(seed=2)


def test_invariant_to_row_order(crossed_data):
    formula = "achievement ~ sex + ses + (1 | primary_school_id) + (1 | secondary_school_id)"
    m = mm.lmer(formula, crossed_data)
    shuffled = crossed_data.sample(frac=1.0, random_state=5)
    m2 = mm.lmer(formula, shuffled)
    assert m2.loglik == pytest.approx(m.loglik, abs=1e-7)
    np.testing.assert_allclose(m2.fixef, m.fixef, rtol=1e-5, atol=1e-7)
    re1 = m.random_effects().sort_values(["group_var", "group"]).reset_index(drop=True)
    re2 = m2.random_effects().sort_values(["group_var", "group"]).reset_index(drop=True)
    np.testing.assert_allclose(re1["value"], re2["value"], atol=1e-5)


def test_invariant_to_relabelling_levels(crossed_data):
    formula = "achievement ~ sex + (1 | primary_school_id) + (1 | secondary_school_id)"
    m = mm.lmer(formula, crossed_data)
    relabelled = crossed_data.assign(
        primary_school_id="p" + (1000 - crossed_data["primary_school_id"]).astype(str),
        secondary_school_id=crossed_data["secondary_school_id"] * 7 + 3,
    )
    m2 = mm.lmer(formula, relabelled)
    assert m2.loglik == pytest.approx(m.loglik, abs=1e-7)
    np.testing.assert_allclose(m2.varcorr()["sdcor"], m.varcorr()["sdcor"], rtol=1e-5)


@pytest.mark.parametrize("formula", ["y ~ x + (1 | a) + (1 | b)", "y ~ x + (1 | a) + (1 | b/c)"])
def test_three_schur_complement_paths_agree(formula):
    """The level-pair map, the dense BLAS syrk and the sparse product give one deviance."""
    from mixedmodels.lmm.crossprods import _PairMap

    design = mm.lmer_design(formula, simulated(11, n=300))
    cp = CrossProducts.build(design.y, design.X, design.terms)
    theta = np.linspace(0.4, 1.3, cp.n_theta)
    cp.pair_map, cp.dense_A21 = _PairMap.build(cp.A21.tocsc(), cp.q2), None
    via_map = deviance(cp, theta, reml=True)
    cp.pair_map, cp.dense_A21 = None, np.asfortranarray(cp.A21.toarray())
    via_dense = deviance(cp, theta, reml=True)
    cp.pair_map, cp.dense_A21 = None, None
    via_sparse = deviance(cp, theta, reml=True)
    expected = brute_force_deviance(
        design.y, design.X, dense_z(cp), dense_lambda(cp, theta), reml=True
    )
    assert via_map == pytest.approx(expected, rel=1e-10)
    assert via_dense == pytest.approx(expected, rel=1e-10)
    assert via_sparse == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("formula", FORMULAS)
def test_lean_conditional_modes_equal_full_solution(formula):
    from mixedmodels.lmm.deviance import conditional_modes, factorize

    design = mm.lmer_design(formula, simulated(13))
    w = np.random.default_rng(13).uniform(0.3, 3.0, size=design.nobs)
    cp = CrossProducts.build(design.y, design.X, design.terms, weights=w)
    theta = cp.initial_theta() * 0.7 + 0.2 * (~np.isfinite(cp.lower_bounds()))
    full = solve(cp, theta, reml=False, conditional_variances=False)
    beta, modes = conditional_modes(cp, factorize(cp, theta))
    np.testing.assert_allclose(beta, full.beta, atol=1e-10)
    for lean, reference in zip(modes, full.u, strict=True):
        np.testing.assert_allclose(lean, reference, atol=1e-10)
