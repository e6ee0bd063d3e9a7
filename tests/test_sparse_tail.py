"""The sparse tail factorization (mixedmodels.lmm.sparse_tail) against dense linear algebra,
and the 100,000 students x 25,000 schools design against lme4 (issue 15)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import mixedmodels as mm
from mixedmodels.datasets.movers import school_movers
from mixedmodels.errors import DataError
from mixedmodels.frontend.lmer_design import lmer_design
from mixedmodels.glmm.gradient import beta_gradient, theta_gradient
from mixedmodels.lmm import deviance as lmm
from mixedmodels.lmm import sparse_tail

FIXTURE = Path(__file__).parent / "fixtures" / "lme4_movers.json"
FORMULA = "y ~ x + (1 | student) + (1 | school)"


def _random_tail(seed: int, q2: int = 60, q1: int = 200, k1: int = 1, density: float = 0.02):
    rng = np.random.default_rng(seed)
    A21 = sp.random(q2, q1 * k1, density=density, random_state=rng, format="csr")
    A21.data = rng.uniform(0.5, 1.5, size=A21.nnz)
    A21.sort_indices()
    A22 = (A21 @ A21.T + sp.diags(rng.uniform(1.0, 2.0, size=q2))).tocsr()
    A22.sort_indices()
    return A21, A22


@pytest.mark.parametrize("k1", [1, 2])
def test_factor_matches_dense_schur_complement(k1):
    A21, A22 = _random_tail(3, k1=k1)
    tail = sparse_tail.analyse(A21, A22, k1=k1)
    rng = np.random.default_rng(4)
    q1 = A21.shape[1] // k1
    G = rng.normal(size=(q1, k1, k1))
    W = 0.1 * G @ np.swapaxes(G, 1, 2)  # symmetric positive semi-definite blocks
    lam2 = rng.uniform(0.3, 1.5, size=A21.shape[0])
    factor = tail.factor(A21.data, A22.data, W, lam2)
    Wd = sp.block_diag(list(W)).toarray()
    S = A22.toarray() - A21.toarray() @ Wd @ A21.toarray().T
    S = lam2[:, None] * S * lam2[None, :] + np.eye(len(lam2))
    assert factor.logdet == pytest.approx(np.linalg.slogdet(S)[1], rel=1e-12)
    B = rng.normal(size=(len(lam2), 3))
    np.testing.assert_allclose(factor.solve(B), np.linalg.solve(S, B), rtol=1e-9, atol=1e-12)
    # the selected inverse on the pattern, and the factor counted before any numeric work
    inverse = np.linalg.inv(S)
    rows, cols = tail.rows, tail.cols
    np.testing.assert_allclose(factor.inverse_entries(rows, cols), inverse[rows, cols], rtol=1e-9)
    P = tail.permutation
    dense_factor = np.linalg.cholesky(S[np.ix_(P, P)])
    assert tail.factor_entries >= np.count_nonzero(np.abs(dense_factor) > 1e-14)
    # a later factorization does not disturb an earlier one (refactored on use)
    other = tail.factor(A21.data, A22.data, 0.5 * W, lam2)
    np.testing.assert_allclose(factor.solve(B), np.linalg.solve(S, B), rtol=1e-9, atol=1e-12)
    assert other.logdet != pytest.approx(factor.logdet)


def test_column_counts_are_exact_on_a_simplicial_factor():
    A21, A22 = _random_tail(5, q2=80, q1=300, density=0.01)
    tail = sparse_tail.analyse(A21, A22, k1=1)
    factor = tail.factor(A21.data, A22.data, np.full((300, 1, 1), 0.2), np.ones(80))
    _, indptr, _, _ = tail._selected_inverse(factor)  # CHOLMOD's own factor pattern
    if tail._supernodal:  # supernodes store some zeros
        assert indptr[-1] >= tail.factor_entries
    else:
        assert indptr[-1] == tail.factor_entries


def test_not_positive_definite_is_a_linalg_error():
    A21, A22 = _random_tail(6)
    tail = sparse_tail.analyse(A21, A22, k1=1)
    W = np.full((A21.shape[1], 1, 1), 50.0)  # A₂₂ − A₂₁WA₂₁ᵀ far from positive
    with pytest.raises(np.linalg.LinAlgError):
        tail.factor(A21.data, A22.data, W, np.full(A21.shape[0], 3.0))


def test_a_factor_over_the_memory_limit_is_refused_with_its_figure():
    A21, A22 = _random_tail(7, q2=100, q1=400, density=0.05)
    with pytest.raises(DataError, match="GB"):
        sparse_tail.analyse(A21, A22, k1=1, max_bytes=12 * 150)


@pytest.fixture
def force_sparse(monkeypatch):
    monkeypatch.setattr(sparse_tail, "MIN_SPARSE_EFFECTS", 0)
    monkeypatch.setattr(sparse_tail, "dense_cost_ns", lambda q2, q1: float("inf"))


def _crossprods(frame, sparse: bool, request):
    if sparse:
        request.getfixturevalue("force_sparse")
    design = lmer_design(FORMULA, frame)
    return lmm.CrossProducts.build(design.y, design.X, design.terms)


def test_sparse_and_dense_tails_give_the_same_fit_pieces(request):
    frame = school_movers(n_students=600, n_schools=150, movers=0.2, seed=11)
    dense = _crossprods(frame, False, request)
    assert dense.sparse_tail is None  # a small tail stays dense
    sparse = _crossprods(frame, True, request)
    assert sparse.sparse_tail is not None and sp.issparse(sparse.A22)
    theta = np.array([1.1, 0.6])
    for reml in (True, False):
        assert lmm.deviance(sparse, theta, reml) == pytest.approx(
            lmm.deviance(dense, theta, reml), rel=1e-12
        )
    a, b = lmm.solve(dense, theta, True), lmm.solve(sparse, theta, True)
    np.testing.assert_allclose(b.beta, a.beta, rtol=1e-10)
    for x, y in zip(a.b + a.b_cov, b.b + b.b_cov, strict=True):
        np.testing.assert_allclose(y, x, rtol=1e-8, atol=1e-12)
    assert b.u_norm2 == pytest.approx(a.u_norm2, rel=1e-10)


def test_sparse_and_dense_tails_give_the_same_glmer_fit(request):
    frame = school_movers(n_students=600, n_schools=150, movers=0.2, seed=12)
    formula = "passed ~ x + (1 | student) + (1 | school)"
    dense = mm.glmer(formula, frame, family="binomial")
    request.getfixturevalue("force_sparse")
    sparse = mm.glmer(formula, frame, family="binomial")
    assert sparse.loglik == pytest.approx(dense.loglik, abs=1e-6)
    np.testing.assert_allclose(sparse.fixef, dense.fixef, rtol=1e-5, atol=1e-6)


def _glmer_both_tails(formula, frame, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dense = mm.glmer(formula, frame, family="binomial")
        monkeypatch.setattr(sparse_tail, "MIN_SPARSE_EFFECTS", 0)
        monkeypatch.setattr(sparse_tail, "dense_cost_ns", lambda q2, q1: float("inf"))
        sparse = mm.glmer(formula, frame, family="binomial")
    assert dense.problem.template.sparse_tail is None
    assert sparse.problem.template.sparse_tail is not None
    return dense, sparse


@pytest.mark.parametrize(
    "tail",
    [
        "(1 | school)",
        "(1 | school) + (1 | region)",  # two tail terms: pairs within a row (A₂₂)
        "(1 | school) + (0 + x | school)",  # a slope with zeros: entries off the pattern
    ],
)
def test_sparse_tail_laplace_gradients_equal_the_dense_ones(tail, monkeypatch):
    frame = school_movers(n_students=600, n_schools=150, movers=0.2, seed=12)
    frame["region"] = (frame["school"].cat.codes % 7).astype(str)
    frame.loc[frame.index[::5], "x"] = 0.0
    formula = f"passed ~ x + (1 | student) + {tail}"
    dense, sparse = _glmer_both_tails(formula, frame, monkeypatch)
    # the sparse tail takes the exact-gradient path too, and reaches the same optimum
    assert "exact" in sparse.full_opt_summary.optimizer
    assert sparse.loglik == pytest.approx(dense.loglik, abs=1e-8)
    theta = dense.theta * 1.2 + 0.05  # away from the optimum: gradients that are not ~0
    beta = dense.fixef.to_numpy() + 0.1
    gradients = []
    for model in (dense, sparse):
        problem = model.problem
        state = problem.pirls(theta, beta, keep_factor=True)
        g_beta, information = beta_gradient(problem, theta, state)
        state = problem.pirls(theta, beta, keep_factor=True)
        gradients.append((g_beta, information, theta_gradient(problem, theta, state)))
    for a, b in zip(*gradients, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9)
    assert np.all(np.abs(gradients[0][2]) > 1e-3)  # the comparison is not of zeros


def test_vector_terms_after_the_largest_are_still_refused_beyond_the_dense_limit():
    rng = np.random.default_rng(2)
    n = 120_000
    frame = {
        "g": rng.integers(30_000, size=n).astype(str),
        "h": rng.integers(10_600, size=n).astype(str),
        "x": rng.normal(size=n),
        "y": rng.normal(size=n),
    }
    import pandas as pd

    with pytest.raises(DataError, match="intercept-only"):
        mm.lmer("y ~ x + (1 | g) + (x | h)", pd.DataFrame(frame))


@pytest.fixture(scope="module")
def movers():
    reference = json.loads(FIXTURE.read_text())
    frame = school_movers()
    data = reference["data"]
    assert len(frame) == data["n"]
    assert frame["x"].sum() == pytest.approx(data["sum_x"], rel=1e-12)
    assert frame["y"].sum() == pytest.approx(data["sum_y"], rel=1e-12)
    assert int(frame["passed"].sum()) == data["sum_passed"]
    return frame, reference["models"]


def _assert_matches(fit, ref, loglik_abs, rel):
    assert fit.loglik == pytest.approx(ref["loglik"], abs=loglik_abs)
    # lme4 names the intercept "(Intercept)", we "Intercept": compare in order
    np.testing.assert_allclose(np.asarray(fit.fixef), list(ref["fixef"].values()), rtol=rel)
    se = np.sqrt(np.diag(np.asarray(fit.vcov)))
    np.testing.assert_allclose(se, list(ref["se"].values()), rtol=10 * rel)
    np.testing.assert_allclose(fit.theta, ref["theta"], rtol=10 * rel)


@pytest.mark.slow
def test_lmer_on_100000_students_in_25000_schools_matches_lme4(movers):
    frame, ref = movers
    fit = mm.lmer(FORMULA, frame)
    assert fit.crossprods.sparse_tail is not None
    _assert_matches(fit, ref["lmer"], loglik_abs=1e-5, rel=1e-5)
    assert fit.sigma == pytest.approx(ref["lmer"]["sigma"], rel=1e-6)


@pytest.mark.slow
def test_glmer_on_100000_students_in_25000_schools_matches_lme4(movers):
    frame, ref = movers
    fit = mm.glmer("passed ~ x + (1 | student) + (1 | school)", frame, family="binomial")
    _assert_matches(fit, ref["glmer"], loglik_abs=1e-3, rel=1e-4)
