"""Covariance structures θ -> T (lme4's unstructured and glmmTMB's diag, cs, ar1, toep)."""

from __future__ import annotations

import numpy as np
import pytest

from mixedmodels.lmm.covariance import (
    AR1,
    CompoundSymmetry,
    Diagonal,
    Toeplitz,
    Unstructured,
    ar1_cholesky,
    bounded_correlation,
    structure_for,
    toeplitz_correlations,
)


def test_unstructured_and_diagonal_keep_lme4s_layout():
    assert Unstructured(3).n_theta == 6
    np.testing.assert_array_equal(Unstructured(2).lower_bounds(), [0.0, -np.inf, 0.0])
    np.testing.assert_array_equal(Diagonal(3).initial(), np.ones(3))


@pytest.mark.parametrize(
    ("name", "k", "n_theta"),
    [("cs", 4, 5), ("ar1", 6, 2), ("toep", 4, 7), ("ar1", 1, 1), ("cs", 1, 1)],
)
def test_parameter_counts_and_bounds(name, k, n_theta):
    structure = structure_for(name, k)
    assert structure.n_theta == n_theta
    lower = structure.lower_bounds()
    n_sd = 1 if name == "ar1" else k
    assert np.all(lower[:n_sd] == 0.0) and np.all(np.isinf(lower[n_sd:]))
    T = structure.factor(structure.initial())
    np.testing.assert_allclose(T @ T.T, np.eye(k), atol=1e-12)  # start: identity


def test_ar1_matches_its_definition():
    rho = 0.7
    x = rho / np.sqrt(1 - rho**2)  # inverse of x / sqrt(1 + x²)
    T = AR1(5).factor(np.array([1.5, x]))
    lags = np.abs(np.subtract.outer(np.arange(5), np.arange(5)))
    np.testing.assert_allclose(T @ T.T, 1.5**2 * rho**lags, rtol=1e-12)
    L = ar1_cholesky(1.0, 3)  # |ρ| = 1: singular, but no failure
    np.testing.assert_allclose(L @ L.T, np.ones((3, 3)))


def test_compound_symmetry_correlation_range():
    cs = CompoundSymmetry(4)
    for value in (-50.0, -1.0, 0.0, 3.0, 50.0):
        rho = cs.rho(value)
        assert -1 / 3 < rho < 1
        C = cs.correlation(np.concatenate([np.ones(4), [value]]))
        assert np.all(np.linalg.eigvalsh(C) > 0)
    sd = np.array([1.0, 2.0, 0.5, 1.0])
    T = cs.factor(np.concatenate([sd, [0.0]]))
    V = T @ T.T
    np.testing.assert_allclose(np.sqrt(np.diag(V)), sd)
    corr = V / np.outer(sd, sd)
    assert np.allclose(corr[np.triu_indices(4, 1)], corr[0, 1])


def test_toeplitz_from_partial_autocorrelations():
    rng = np.random.default_rng(3)
    for _ in range(20):
        partial = bounded_correlation(rng.normal(scale=3, size=5))
        rho = toeplitz_correlations(partial)
        lags = np.abs(np.subtract.outer(np.arange(6), np.arange(6)))
        C = np.concatenate([[1.0], rho])[lags]
        assert np.linalg.eigvalsh(C).min() > 0
    # an AR(1) has partial autocorrelations (ρ, 0, 0, ...)
    np.testing.assert_allclose(toeplitz_correlations(np.array([0.6, 0, 0])), [0.6, 0.36, 0.216])
    theta = np.concatenate([np.full(4, 2.0), np.zeros(3)])
    T = Toeplitz(4).factor(theta)
    np.testing.assert_allclose(T @ T.T, 4.0 * np.eye(4), atol=1e-12)


def test_unknown_structure_is_refused():
    with pytest.raises(ValueError, match="Unknown covariance structure 'ou'"):
        structure_for("ou", 2)


@pytest.mark.parametrize(
    "formula",
    [
        "gpa ~ occasion + ar1(0 + occas | student) + (1 | student)",
        "gpa ~ occasion + (1 | student) + diag(0 + occas | student)",
        "gpa ~ occasion + cs(0 + occas | student) + (1 | student)",
    ],
)
def test_merged_terms_give_the_same_deviance(gpa, formula):
    """Terms of one grouping factor merged into a block-diagonal term (the optimizer's
    fast path) have the separate terms' deviance at every θ."""
    import mixedmodels as mm
    from mixedmodels.lmm.deviance import deviance
    from mixedmodels.lmm.structured import merged_crossprods

    design = mm.lmer_design(formula, gpa)
    _, cp = mm.deviance_function(design, reml=False)
    merged = merged_crossprods(cp, design.y, design.X, None, None)
    assert merged is not None and len(merged.terms) == 1 and merged.n_theta == cp.n_theta
    rng = np.random.default_rng(5)
    for _ in range(5):
        theta = cp.initial_theta() + rng.uniform(-0.5, 0.5, cp.n_theta)
        theta = np.maximum(theta, cp.lower_bounds())
        for reml in (False, True):
            assert deviance(merged, theta, reml) == pytest.approx(
                deviance(cp, theta, reml), rel=1e-10
            )


@pytest.mark.parametrize("held", [None, 0, 4, 5, 6])
def test_toeplitz_refit_coordinates_are_a_box(held):
    """A profile's refit of a toep term optimizes a box: any coordinates in [−1, 1] give a
    positive semi-definite Toeplitz matrix with the held parameter at its value, and the
    map inverts on such points (lags 2 and 3 held are the solved cases)."""
    toep = Toeplitz(4)
    rng = np.random.default_rng(held or 0)
    value = 0.3 if held is None or held >= 4 else 1.7
    lags = np.abs(np.subtract.outer(np.arange(4), np.arange(4)))
    for _ in range(200):
        coords = np.concatenate([rng.uniform(0.5, 2.0, 4), rng.uniform(-1.0, 1.0, 3)])
        values = toep.from_refit_coordinates(coords, held, value)
        if np.any(np.isnan(values)):  # lag 3 held: ρ₃ unreachable after these φ₁
            assert held == 6
            continue
        if held is not None:
            assert values[held] == pytest.approx(value, abs=1e-12)
        C = np.concatenate([[1.0], values[4:]])[lags]
        assert np.linalg.eigvalsh(C).min() > -1e-10
        back = toep.refit_coordinates(values, held, value)
        free = [i for i in range(7) if i != held]
        np.testing.assert_allclose(back[free], coords[free], atol=1e-8)


def test_toeplitz_factor_on_the_edge_is_semidefinite():
    """|φ| = 1 (a fit or a refit on the edge of the positive-definite set) factors."""
    T = Toeplitz(3).factor(np.array([1.0, 1.0, 1.0, 3.0, -np.inf]))
    C = T @ T.T
    assert np.linalg.eigvalsh(C).min() == pytest.approx(0.0, abs=1e-10)
    np.testing.assert_allclose(np.diag(C), 1.0)
