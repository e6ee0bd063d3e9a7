"""The seed chapter's LMM tables against the R values in ../shared/seed/reference.json.

Tolerances (issue 2): fixed effects within 1e-3 of an SE, SEs and SDs within 0.2%,
logLik within 1e-3.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from tests.conftest import SEED_LMM_KEYS

LMM_KEYS = list(SEED_LMM_KEYS)


def _r_term(term: str) -> str:
    return "Intercept" if term == "(Intercept)" else term


@pytest.mark.parametrize("key", LMM_KEYS)
def test_fixed_effects_match_lme4(seed_models, reference, key):
    ref = reference[key]
    table = seed_models[key].fixed_effects().set_index("term")
    expected = pd.DataFrame(ref["fixed"]).assign(term=lambda d: d["term"].map(_r_term))
    expected = expected.set_index("term")
    assert list(table.index) == list(expected.index)
    se = expected["se"].to_numpy()
    np.testing.assert_array_less(
        np.abs(table["value"].to_numpy() - expected["estimate"].to_numpy()), 1e-3 * se
    )
    np.testing.assert_allclose(table["se"].to_numpy(), se, rtol=2e-3)
    np.testing.assert_allclose(table["t"].to_numpy(), expected["stat"].to_numpy(), rtol=2e-3)


@pytest.mark.parametrize("key", LMM_KEYS)
def test_variance_components_and_loglik_match_lme4(seed_models, reference, key):
    ref = reference[key]
    model = seed_models[key]
    vc = model.varcorr()
    expected = pd.DataFrame(ref["varcorr"])
    assert list(vc["group"]) == list(expected["grp"])
    np.testing.assert_allclose(vc["sdcor"].to_numpy(), expected["sdcor"].to_numpy(), rtol=2e-3)
    assert abs(model.loglik - ref["loglik"]) < 1e-3
    assert abs(model.aic - ref["aic"]) < 2e-3
    assert abs(model.bic - ref["bic"]) < 2e-3
    assert model.sigma == pytest.approx(ref["sigma"], rel=2e-3)
    assert model.nobs == ref["nobs"]
    assert model.reml is True


def test_gpa_lm_table(gpa, reference):
    ref = reference["gpa_lm"]
    fit = mm.lm(ref["formula"], gpa)
    table = fit.coefficients()
    expected = pd.DataFrame(ref["fixed"])
    np.testing.assert_allclose(table["estimate"], expected["estimate"], rtol=1e-9)
    np.testing.assert_allclose(table["se"], expected["se"], rtol=1e-9)
    np.testing.assert_allclose(table["t"], expected["stat"], rtol=1e-9)
    np.testing.assert_allclose(table["p_value"], expected["p"], rtol=1e-6, atol=1e-300)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-9)
    assert fit.r2 == pytest.approx(ref["r2"], rel=1e-9)
    assert fit.adj_r2 == pytest.approx(ref["adj_r2"], rel=1e-9)
    assert fit.nobs == ref["nobs"]


def test_gpa_mixed_random_effects_and_coef(seed_models, reference):
    ref = reference["gpa_mixed"]
    model = seed_models["gpa_mixed"]
    re = model.random_effects()
    expected = pd.DataFrame(ref["ranef"])
    assert list(re["group"]) == list(expected["group"])
    assert set(re["group_var"]) == {"student"} and set(re["effect"]) == {"Intercept"}
    np.testing.assert_allclose(re["value"], expected["value"], atol=1e-3 * expected["se"].min())
    np.testing.assert_allclose(re["se"], expected["se"], rtol=2e-3)
    np.testing.assert_allclose(re["lower_2.5"], re["value"] - 1.959964 * re["se"], rtol=1e-6)
    coef = model.coef()
    fixed = model.fixed_effects().set_index("term")
    np.testing.assert_allclose(coef["value"], re["value"] + fixed.at["Intercept", "value"])
    # the seed's mixedup table: student 1 -> 2.528; mixedup's SE combines the fixed SE and
    # the conditional SD (it rounds both to 3 digits first, hence the seed's 0.095)
    assert coef["value"].iloc[0] == pytest.approx(2.528, abs=5e-4)
    fixed_se = ref["fixed"][0]["se"]
    np.testing.assert_allclose(coef["se"], np.hypot(expected["se"], fixed_se), rtol=2e-3)
    lme4_coef = pd.DataFrame(ref["coef"])  # lme4's coef(): fixed + random per student
    np.testing.assert_allclose(coef["value"], lme4_coef["intercept"], atol=2e-5)


def test_gpa_mixed_predictions(seed_models, reference, gpa):
    ref = reference["gpa_mixed"]
    model = seed_models["gpa_mixed"]
    with_re = model.predict()
    without_re = model.predict(re_form="~0")
    fixed = model.fixef
    np.testing.assert_allclose(without_re, fixed["Intercept"] + fixed["occasion"] * gpa["occasion"])
    re = model.random_effects()["value"].to_numpy()
    codes = gpa["student"].cat.codes.to_numpy()
    np.testing.assert_allclose(with_re, without_re + re[codes])
    n = len(ref["predict_re"])
    np.testing.assert_allclose(with_re[:n], ref["predict_re"], rtol=1e-6)
    np.testing.assert_allclose(without_re[:n], ref["predict_no_re"], rtol=1e-6)
    # newdata path equals the in-sample path, and unseen students get the population line
    np.testing.assert_allclose(model.predict(newdata=gpa), with_re)
    new = gpa.head(3).copy()
    new["student"] = pd.Categorical(["new-1", "new-2", "new-3"])
    np.testing.assert_allclose(model.predict(newdata=new, allow_new_levels=True), without_re[:3])


def test_gpa_mixed2_random_coefficients(seed_models, reference):
    ref = reference["gpa_mixed2"]
    coef = seed_models["gpa_mixed2"].coef()
    wide = coef.pivot(index="group", columns="effect", values="value")
    expected = pd.DataFrame(ref["random_coefs"]).set_index("group")
    wide = wide.loc[expected.index]
    np.testing.assert_allclose(wide["Intercept"], expected["intercept"], atol=2e-5)
    np.testing.assert_allclose(wide["occasion"], expected["occasion"], atol=2e-5)


def test_variance_components_table(seed_models):
    vc = seed_models["gpa_mixed"].variance_components()
    assert list(vc.columns) == ["group", "effect", "variance", "sd", "var_prop"]
    assert list(vc["group"]) == ["student", "Residual"]
    np.testing.assert_allclose(vc["var_prop"], [0.523, 0.477], atol=5e-4)
    assert seed_models["gpa_mixed"].icc()["student"] == pytest.approx(0.5231, abs=1e-4)
    vc2 = seed_models["gpa_mixed2"].variance_components()
    np.testing.assert_allclose(vc2["var_prop"], [0.491, 0.049, 0.460], atol=5e-4)
    nested = seed_models["nurses_hierach"].variance_components()
    assert list(nested["group"]) == ["hospital:ward", "hospital", "Residual"]


def test_aic_comparison(gpa, reference):
    rows = reference["aic_comparison"]
    models = {row["model"]: mm.lmer(row["formula"], gpa) for row in rows}
    table = mm.aic_table(models)
    expected = pd.DataFrame(rows).sort_values("aic")
    assert list(table["model"]) == list(expected["model"])
    np.testing.assert_allclose(table["AIC"], expected["aic"], atol=2e-3)
    assert table["delta_AIC"].iloc[1] == pytest.approx(3.171217, abs=2e-3)


def test_nested_codings_agree(seed_models):
    a = seed_models["nurses_hierach"]
    b = seed_models["nurses_hierach2"]
    c = seed_models["nurses_nested"]
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8)
    assert a.loglik == pytest.approx(c.loglik, abs=1e-8)
    slash = mm.lmer(
        "stress ~ age + sex + experience + treatment + wardtype + hospsize + (1 | hospital/ward)",
        a.design.frame.assign(stress=a.design.y),
    )
    assert slash.loglik == pytest.approx(a.loglik, abs=1e-8)


def test_factor_valued_random_slopes(nurses):
    """(0 + f | g): one random effect per level of f, correlated, as lme4."""
    model = mm.lmer("stress ~ sex + (0 + sex | hospital)", nurses)
    vc = model.varcorr()
    assert list(vc["var1"].iloc[:3]) == ["sexMale", "sexFemale", "sexMale"]
    assert vc["var2"].iloc[2] == "sexFemale"
    assert len(model.theta) == 3
    re = model.random_effects()
    assert set(re["effect"]) == {"sexMale", "sexFemale"} and len(re) == 2 * 25
    # equivalent to the intercept + contrast parameterisation: same likelihood
    other = mm.lmer("stress ~ sex + (1 + sex | hospital)", nurses)
    assert model.loglik == pytest.approx(other.loglik, abs=1e-5)
