"""Front-end models against R: lme4 with stateful transforms and ordered factors, nlme's
variance functions of the fitted values, varConstPower and varComb, and R's lm with zero
weights.  Fixtures made by tools/make_front_end_fixtures.R on the seed's gpa data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from tests.conftest import load_fixture


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("front_end.json")


@pytest.fixture(scope="module")
def data(gpa):
    occ = pd.Categorical(gpa["occasion"].astype(str), categories=list("012345"), ordered=True)
    return gpa.assign(occ=occ)


LMER = {
    "poly_scale": "gpa ~ poly(occasion, 2) + scale(highgpa) + (1 | student)",
    "ordered": "gpa ~ occ + sex + (1 | student)",
    "ordered_slope": "gpa ~ poly(occasion, 2) + (scale(occasion) | student)",
}


@pytest.mark.parametrize("name", sorted(LMER))
def test_transformed_and_ordered_models_match_lme4(fixture, data, name):
    record = fixture["lmer"][name]
    m = mm.lmer(LMER[name], data)
    expected_names = ["Intercept" if n == "(Intercept)" else n for n in record["fixef_names"]]
    assert list(m.fixef.index) == expected_names
    np.testing.assert_allclose(m.fixef.to_numpy(), record["fixef"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.sqrt(np.diag(m.vcov)), record["se"], rtol=1e-4)
    np.testing.assert_allclose(m.theta, record["theta"], rtol=1e-4, atol=1e-6)
    assert m.sigma == pytest.approx(record["sigma"], rel=1e-5)
    assert m.loglik == pytest.approx(record["loglik"], abs=1e-6)
    np.testing.assert_allclose(m.predict()[:12], record["predict_head"], rtol=1e-6)
    # R's predict(newdata) on rows 10, 3, 11 (1-based): the fit's means, scales, bases
    new = data.iloc[[9, 2, 10]]
    np.testing.assert_allclose(m.predict(new).to_numpy(), record["predict_newdata"], rtol=1e-6)


def test_lm_with_zero_weights_matches_r(fixture, gpa):
    record = fixture["lm_zero_weights"]
    w = np.resize([0.0, 1.0, 2.0], len(gpa))
    fit = mm.lm("gpa ~ occasion + sex", gpa, weights=w)
    np.testing.assert_allclose(fit.fixef.to_numpy(), record["coef"], rtol=1e-10)
    np.testing.assert_allclose(fit.coefficients()["se"], record["se"], rtol=1e-10)
    assert fit.sigma == pytest.approx(record["sigma"], rel=1e-10)
    assert fit.df_residual == record["df_residual"]
    assert fit.nobs == record["nobs"]
    assert fit.loglik == pytest.approx(record["loglik"], rel=1e-10)
    assert fit.aic == pytest.approx(record["aic"], rel=1e-10)
    assert fit.bic == pytest.approx(record["bic"], rel=1e-10)
    assert fit.r2 == pytest.approx(record["r2"], rel=1e-10)
    assert fit.adj_r2 == pytest.approx(record["adj_r2"], rel=1e-10)


def _nlme_fit(gpa, variance, method):
    return mm.lmer("gpa ~ occasion + (1 | student)", gpa, reml=method == "REML", variance=variance)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize(
    "name, variance, parameter",
    [
        ("power_fitted", mm.VarPower(), "power"),
        ("exp_fitted", mm.VarExp("fitted"), "expon"),
    ],
)
def test_variance_of_the_fitted_values_matches_nlme(
    fixture, gpa, name, variance, parameter, method
):
    # nlme's default varPower()/varExp(): form = ~ fitted(.), updated in lme's outer loop
    record = fixture["nlme"][f"{name}_{method}"]
    m = _nlme_fit(gpa, variance, method)
    assert m.residual_parameters()[parameter] == pytest.approx(
        record["variance_coef"][parameter], rel=1e-4
    )
    assert m.sigma == pytest.approx(record["sigma"], rel=1e-4)
    np.testing.assert_allclose(m.fixef.to_numpy(), record["fixef"], rtol=1e-5)
    # the fixed point nlme stops near (its tolerance 1e-6 on the parameters)
    assert m.loglik == pytest.approx(record["loglik"], abs=1e-4)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_var_const_power_matches_nlme(fixture, gpa, method):
    record = fixture["nlme"][f"constpower_highgpa_{method}"]
    m = _nlme_fit(gpa, mm.VarConstPower("highgpa"), method)
    assert m.loglik == pytest.approx(record["loglik"], abs=1e-4)
    # the likelihood is flat in const near 0 (nlme: 2e-5): compare the power and β
    params = m.residual_parameters()
    assert params["power"] == pytest.approx(record["variance_coef"]["power"], rel=2e-3)
    assert params["const"] < 0.01
    np.testing.assert_allclose(m.fixef.to_numpy(), record["fixef"], rtol=1e-6)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_var_comb_matches_nlme(fixture, gpa, method):
    record = fixture["nlme"][f"comb_ident_power_{method}"]
    # nlme's varIdent takes the first level in row order (female) as the reference
    variance = mm.VarComb(mm.VarIdent("sex", reference="female"), mm.VarPower("highgpa"))
    m = _nlme_fit(gpa, variance, method)
    params = m.residual_parameters()
    assert list(params.index) == ["A.male", "B.power"]
    assert params["A.male"] == pytest.approx(record["variance_coef"]["A.male"], rel=1e-5)
    assert params["B.power"] == pytest.approx(record["variance_coef"]["B.power"], rel=1e-5)
    assert m.sigma == pytest.approx(record["sigma"], rel=1e-5)
    assert m.loglik == pytest.approx(record["loglik"], abs=1e-6)
    np.testing.assert_allclose(m.fixef.to_numpy(), record["fixef"], rtol=1e-6)
