"""Inference against R: lme4 profile intervals, lmerTest Satterthwaite, pbkrtest
Kenward-Roger, lme4 anova (fixtures made by tools/make_inference_fixtures.R) and the
seed's profile-interval table.

Tolerances (issue 5): intervals within 1e-3 relative, df within 1%.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from tests.conftest import fixture_frame, load_fixture

FIXTURE = "lme4_inference.json"
LMM_FIXTURE = "lme4_lmm.json"


def _r_name(name: str) -> str:
    return "Intercept" if name == "(Intercept)" else name


@pytest.fixture(scope="module")
def inference_fixture() -> dict:
    return load_fixture(FIXTURE)


@pytest.fixture(scope="module")
def r_models(inference_fixture) -> dict[str, mm.LinearMixedModel]:
    data = load_fixture(LMM_FIXTURE)
    models = {}
    for name, spec in inference_fixture["models"].items():
        frame = fixture_frame(data, spec["dataset"])
        with warnings.catch_warnings():
            warnings.simplefilter("error", mm.ConvergenceWarning)
            models[name] = mm.lmer(spec["formula"], frame, reml=spec["reml"])
    return models


def _expected_ci(table: dict) -> pd.DataFrame:
    frame = pd.DataFrame(table).set_index("param")
    frame.index = [_r_name(i) for i in frame.index]
    return frame.astype(float)


def test_seed_profile_table(seed_models, reference):
    """The seed's confint(gpa_mixed) (section 20.2.3), computed on the ML refit as lme4."""
    ci = seed_models["gpa_mixed"].confint(method="profile")
    expected = pd.DataFrame(reference["gpa_mixed"]["profile_ci"]).set_index("param")
    expected.index = [_r_name(i) for i in expected.index]
    assert list(ci.index) == list(expected.index)
    np.testing.assert_allclose(ci["lower"], expected["lower"], rtol=1e-3)
    np.testing.assert_allclose(ci["upper"], expected["upper"], rtol=1e-3)


@pytest.mark.parametrize("name", ["sleepstudy", "dyestuff"])
def test_profile_ci_matches_lme4(name, inference_fixture, r_models):
    expected = _expected_ci(inference_fixture["models"][name]["profile_ci"])
    ci = r_models[name].confint(method="profile")
    assert list(ci.index) == list(expected.index)
    np.testing.assert_allclose(ci["lower"], expected["lower"], rtol=1e-3)
    np.testing.assert_allclose(ci["upper"], expected["upper"], rtol=1e-3)


@pytest.mark.parametrize("name", ["sleepstudy", "dyestuff"])
def test_wald_ci_matches_lme4(name, inference_fixture, r_models):
    expected = _expected_ci(inference_fixture["models"][name]["wald_ci"])
    ci = r_models[name].confint(method="wald")
    assert list(ci.index) == list(expected.index)
    np.testing.assert_allclose(ci["lower"], expected["lower"], rtol=1e-6)
    np.testing.assert_allclose(ci["upper"], expected["upper"], rtol=1e-6)


def test_profile_subset_and_traces(r_models):
    model = r_models["sleepstudy"]
    ci = model.confint(parm=["sigma", "Days"])
    assert list(ci.index) == ["sigma", "Days"]
    prof = model.profile(parm="theta_")
    assert list(prof["parameter"].unique()) == [
        "sd_(Intercept)|Subject",
        "cor_Days.(Intercept)|Subject",
        "sd_Days|Subject",
        "sigma",
    ]
    for _, trace in prof.groupby("parameter"):
        assert trace["zeta"].is_monotonic_increasing
        assert (trace["zeta"].abs() < 1e-8).sum() == 1  # the estimate itself


def test_profile_walk_refits_a_point_that_stopped_short():
    """A refit stuck above the profile (|ζ| larger than at the next point) is redone from
    the next point's parameters, so the trace stays monotone."""
    from mixedmodels.inference.profile import _fill

    def zeta_at(value: float, prev: np.ndarray, last: np.ndarray) -> np.ndarray:
        # the profile is ζ = value; the refit at 1.1 stops short when started below it
        stuck = np.isclose(value, 1.1) and last[1] < value
        return np.array([2.0 if stuck else value, value])

    rows = _fill(np.zeros(2), np.array([0.1, 0.1]), 1, -np.inf, np.inf, zeta_at, 0.5, 3.0, 50)
    zeta = np.array([r[0] for r in rows])
    values = np.array([r[1] for r in rows])
    assert np.isclose(values, 1.1).any()
    np.testing.assert_allclose(zeta, values)  # the stuck point was refitted
    assert np.all(np.diff(zeta) > 0)


def test_profile_singular_fit_reports_the_bound():
    data = fixture_frame(load_fixture(LMM_FIXTURE), "Dyestuff2")
    with pytest.warns(mm.SingularFitWarning):
        model = mm.lmer("Yield ~ 1 + (1 | Batch)", data)
    ci = model.confint(parm="sd_(Intercept)|Batch")
    assert ci.loc["sd_(Intercept)|Batch", "lower"] == 0.0
    assert ci.loc["sd_(Intercept)|Batch", "upper"] > 0.0


def test_confint_bad_input(r_models):
    model = r_models["dyestuff"]
    with pytest.raises(ValueError, match="method: expecting one of"):
        model.confint(method="likelihood")
    with pytest.raises(ValueError, match="level must be a number strictly between 0 and 1"):
        model.confint(method="wald", level=95)
    with pytest.raises(ValueError, match="parm: unknown parameter 'slope'"):
        model.confint(method="wald", parm="slope")
    with pytest.raises(ValueError, match="parm: position 7 is out of range"):
        model.confint(method="wald", parm=7)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("name", ["sleepstudy", "penicillin", "scotssec", "oats"])
def test_satterthwaite_matches_lmertest(name, inference_fixture, r_models):
    expected = inference_fixture["models"][name]["satterthwaite"]
    fe = r_models[name].fixed_effects(ddf="satterthwaite")
    assert list(fe["term"]) == [_r_name(t) for t in _as_list(expected["term"])]
    np.testing.assert_allclose(fe["df"], _as_list(expected["df"]), rtol=1e-2)
    np.testing.assert_allclose(fe["se"], _as_list(expected["se"]), rtol=2e-3)
    np.testing.assert_allclose(fe["t"], _as_list(expected["t"]), rtol=2e-3)
    # t-based 95% interval from the df
    from scipy import stats

    q = stats.t.ppf(0.975, np.array(_as_list(expected["df"])))
    lower = np.array(_as_list(expected["estimate"])) - q * np.array(_as_list(expected["se"]))
    np.testing.assert_allclose(fe["lower_2.5"], lower, rtol=1e-3)


@pytest.mark.parametrize("name", ["sleepstudy", "penicillin", "oats"])
def test_kenward_roger_matches_pbkrtest(name, inference_fixture, r_models):
    expected = inference_fixture["models"][name]["kenward_roger"]
    fe = r_models[name].fixed_effects(ddf="kenward-roger")
    np.testing.assert_allclose(fe["df"], _as_list(expected["df"]), rtol=1e-2)
    np.testing.assert_allclose(fe["se"], _as_list(expected["se_adjusted"]), rtol=1e-3)


@pytest.mark.parametrize("name", ["sleepstudy", "oats"])
def test_anova_type3_matches_lmertest(name, inference_fixture, r_models):
    expected = inference_fixture["models"][name]["anova_satterthwaite"]
    table = r_models[name].anova(type=3, ddf="satterthwaite")
    assert list(table.index) == _as_list(expected["term"])
    np.testing.assert_allclose(table["num_df"], _as_list(expected["numdf"]))
    np.testing.assert_allclose(table["den_df"], _as_list(expected["dendf"]), rtol=1e-2)
    np.testing.assert_allclose(table["F"], _as_list(expected["F"]), rtol=1e-3)


def test_contrast_one_row_equals_the_coefficient_test(r_models):
    model = r_models["oats"]
    row = model.contrast({"nitro": 1.0})
    fe = model.fixed_effects(ddf="satterthwaite").set_index("term")
    assert row["df"].iloc[0] == pytest.approx(fe.loc["nitro", "df"], rel=1e-10)
    assert row["t"].iloc[0] == pytest.approx(fe.loc["nitro", "t"], rel=1e-10)


def test_ddf_bad_input(r_models, monkeypatch):
    model = r_models["scotssec"]
    with pytest.raises(ValueError, match="ddf: expecting one of"):
        model.fixed_effects(ddf="kr")
    with pytest.raises(ValueError, match="L must have 4 columns"):
        model.contrast([1.0, 0.0])
    with pytest.raises(ValueError, match="L names unknown fixed effects"):
        model.contrast({"sexM": 1.0})
    with pytest.raises(mm.MixedModelsError, match="contained in another"):
        model.anova()
    monkeypatch.setattr("mixedmodels.inference.ddf.KR_MAX_NOBS", 1000)
    with pytest.raises(mm.DataError, match="Kenward-Roger forms dense 3435 x 3435"):
        model.fixed_effects(ddf="kenward-roger")


def test_anova_lrt_matches_lme4_on_gpa(gpa, inference_fixture):
    expected = inference_fixture["anova_gpa"]
    m1 = mm.lmer(expected["formulas"][0], gpa)
    m2 = mm.lmer(expected["formulas"][1], gpa)
    with pytest.warns(mm.inference.anova.RefitWarning, match="with ML \\(instead of REML\\)"):
        table = mm.anova(m2, m1, names=["slopes", "intercepts"])
    assert list(table.index) == ["intercepts", "slopes"]
    assert table.attrs["refitted"] == ["intercepts", "slopes"]
    np.testing.assert_array_equal(table["npar"], expected["npar"])
    for column in ("AIC", "BIC", "logLik", "deviance"):
        np.testing.assert_allclose(table[column], expected[column], atol=1e-3)
    assert table["Chisq"].iloc[1] == pytest.approx(expected["Chisq"][1], abs=1e-3)
    assert table["Df"].iloc[1] == expected["Df"][1]
    assert table["p"].iloc[1] == pytest.approx(expected["p"][1], rel=1e-2)


def test_anova_refuses_what_it_cannot_test(r_models):
    data = fixture_frame(load_fixture(LMM_FIXTURE), "sleepstudy")
    slope = r_models["sleepstudy"]
    uncorrelated = mm.lmer("Reaction ~ Days + (Days || Subject)", data)
    intercept_only = mm.lmer("Reaction ~ 1 + (Days | Subject)", data)
    with pytest.raises(ValueError, match="anova needs at least two models"):
        mm.anova(slope)
    with pytest.raises(mm.DataError, match="not all fitted to the same data: m1 has 180"):
        mm.anova(slope, r_models["dyestuff"])
    with pytest.raises(mm.MixedModelsError, match="m1 is not nested in m2: its fixed effects"):
        mm.anova(mm.lmer("Reaction ~ Days + (1 | Subject)", data), intercept_only)
    with pytest.raises(mm.MixedModelsError, match="m1 is not nested in m2: it estimates the cov"):
        mm.anova(intercept_only, uncorrelated)
    with pytest.raises(TypeError, match="compares fitted linear mixed models"):
        mm.anova(slope, "model")
    # nested the right way round: fine
    table = mm.anova(uncorrelated, slope)
    assert table["Df"].iloc[1] == 1


def test_with_response_matches_a_fresh_build(r_models):
    from mixedmodels.lmm import CrossProducts

    model = r_models["penicillin"]
    design = model.design
    rng = np.random.default_rng(4)
    y = design.y + rng.normal(size=design.nobs)
    weights = rng.uniform(0.5, 2.0, size=design.nobs)
    offset = rng.normal(size=design.nobs)
    fresh = CrossProducts.build(y, design.X, design.terms, weights, offset)
    reused = CrossProducts.build(design.y, design.X, design.terms, weights, offset)
    reused = reused.with_response(y, design.X, weights, offset)
    for block in ("C1", "C2", "XyXy"):
        np.testing.assert_allclose(getattr(reused, block), getattr(fresh, block), rtol=1e-12)


@pytest.mark.slow
def test_bootstrap_is_reproducible_across_workers(r_models):
    model = r_models["sleepstudy"]
    one = model.bootstrap(24, seed=11, n_jobs=1, progress=False)
    two = model.bootstrap(24, seed=11, n_jobs=2, progress=False)
    other = model.bootstrap(24, seed=12, n_jobs=1, progress=False)
    pd.testing.assert_frame_equal(one.replicates, two.replicates)
    assert not np.allclose(one.replicates.to_numpy(), other.replicates.to_numpy())
    assert one.n_failed == 0
    assert list(one.replicates.columns) == [
        "sd_(Intercept)|Subject",
        "cor_Days.(Intercept)|Subject",
        "sd_Days|Subject",
        "sigma",
        "Intercept",
        "Days",
    ]
    # replicate means near the estimates they were simulated from
    est = one.estimates
    assert (
        abs(one.replicates["Days"].mean() - est["Days"]) < 3 * model.vcov.loc["Days", "Days"] ** 0.5
    )


def test_bootstrap_func_and_intervals(r_models):
    model = r_models["dyestuff"]
    boot = model.bootstrap(30, seed=2, func=lambda m: m.sigma**2, progress=False)
    np.testing.assert_allclose(boot.replicates["func_0"], boot.replicates["sigma"] ** 2)
    assert boot.estimates["func_0"] == pytest.approx(model.sigma**2)
    for kind in ("percentile", "basic", "normal"):
        ci = boot.confint(type=kind)
        assert (ci["lower"] < ci["upper"]).all()
    ci = model.confint(method="boot", nsim=30, seed=2, parm="beta_")
    assert list(ci.index) == ["Intercept"]
    np.testing.assert_allclose(ci.loc["Intercept"], boot.confint().loc["Intercept"], rtol=1e-12)
    with pytest.raises(ValueError, match="nsim must be a positive integer"):
        model.bootstrap(0)
    with pytest.raises(ValueError, match="type: expecting one of"):
        boot.confint(type="bca")
