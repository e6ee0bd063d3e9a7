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


@pytest.mark.parametrize("name", ["sleepstudy", "oats", "scotssec"])
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
    first = model.design.fixed_names[0]
    for bad in ({first: "one"}, [[1.0, 0.0, 0.0, 0.0], [1.0]]):  # a word, a ragged matrix
        with pytest.raises(mm.errors.DataError, match="L must be numbers"):
            model.contrast(bad)
    with pytest.raises(ValueError, match="type: expecting one of \\{1, 2, 3\\}. Got 4"):
        model.anova(type=4)
    monkeypatch.setattr("mixedmodels.inference.ddf.KR_MAX_NOBS", 1000)
    with pytest.raises(mm.DataError, match="Kenward-Roger forms dense 3435 x 3435"):
        model.fixed_effects(ddf="kenward-roger")


def test_anova_lrt_matches_lme4_on_gpa(gpa, inference_fixture):
    expected = inference_fixture["anova_gpa"]
    m1 = mm.lmer(expected["formulas"][0], gpa)
    m2 = mm.lmer(expected["formulas"][1], gpa)
    with pytest.warns(mm.RefitWarning, match="with ML \\(instead of REML\\)"):
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
    from mixedmodels.lmm.crossprods import CrossProducts

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


# -- unbalanced designs: Kenward-Roger and type I/II/III F tests (tools/make_kr_type3_fixtures.R)

KR_TYPE3_FIXTURE = "kr_type3.json"
#: models of kr_type3.json without a term contained in another (Kenward-Roger, issue 5 task 1)
UNBALANCED_KR = ["sleepstudy_unbalanced", "oats_unbalanced", "machines_unbalanced"]


@pytest.fixture(scope="module")
def kr_type3_fixture() -> dict:
    return load_fixture(KR_TYPE3_FIXTURE)


def _unbalanced_frame(spec: dict) -> pd.DataFrame:
    """The fixture's subset: rows whose 1-based number % modulus == remainder are dropped."""
    full = fixture_frame(load_fixture(LMM_FIXTURE), spec["dataset"])
    row_number = np.arange(1, len(full) + 1)
    keep = row_number % spec["modulus"] != spec["remainder"]
    np.testing.assert_array_equal(row_number[keep], spec["kept_rows"])
    frame = full.loc[keep].reset_index(drop=True)
    if spec.get("derived") == "N":  # R's factor(nitro)
        frame["N"] = pd.Categorical(
            frame["nitro"].map("{:g}".format), categories=["0", "0.2", "0.4", "0.6"]
        )
    return frame


@pytest.fixture(scope="module")
def unbalanced_models(kr_type3_fixture) -> dict[str, mm.LinearMixedModel]:
    models = {}
    for name, spec in kr_type3_fixture["models"].items():
        with warnings.catch_warnings():
            warnings.simplefilter("error", mm.ConvergenceWarning)
            models[name] = mm.lmer(spec["formula"], _unbalanced_frame(spec), reml=True)
    return models


def _at_lme4_theta(model: mm.LinearMixedModel, theta: list) -> mm.LinearMixedModel:
    """The same model evaluated at lme4's θ: separates the KR numerics from the optimizer."""
    import dataclasses

    opt = dataclasses.replace(model.opt_summary, final=np.asarray(theta, dtype=float))
    return type(model)(model.design, model.crossprods, opt, model.reml, model.converged)


@pytest.mark.parametrize("name", list(UNBALANCED_KR))
def test_kenward_roger_unbalanced_matches_pbkrtest(name, kr_type3_fixture, unbalanced_models):
    """Adjusted SEs within 1e-4 and df within 1% of pbkrtest, on our own fit.

    The SE error (at most ~5e-5, sleepstudy) is the distance between our θ and lme4's:
    our REML criterion is lower or equal, and at lme4's θ the numbers agree to ~1e-13
    (next test)."""
    spec = kr_type3_fixture["models"][name]
    expected = spec["kenward_roger"]
    fe = unbalanced_models[name].fixed_effects(ddf="kenward-roger")
    assert list(fe["term"]) == [_r_name(t) for t in expected["term"]]
    np.testing.assert_allclose(fe["se"], expected["se"], rtol=1e-4)
    np.testing.assert_allclose(fe["df"], expected["df"], rtol=1e-2)
    np.testing.assert_allclose(fe["t"], expected["t"], rtol=1e-4)


@pytest.mark.parametrize("name", list(UNBALANCED_KR))
def test_kenward_roger_adjustment_at_lme4_theta(name, kr_type3_fixture, unbalanced_models):
    """At lme4's θ the adjustment Φ_A - Φ itself (not only Φ_A, which it barely moves on
    machines) matches pbkrtest's vcovAdj, and so do the df and the scaled F tests."""
    from mixedmodels.inference.ddf import KenwardRoger

    spec = kr_type3_fixture["models"][name]
    model = _at_lme4_theta(unbalanced_models[name], spec["theta"])
    kr = KenwardRoger(model)
    phi = np.array(spec["vcov"]["values"])
    phi_adjusted = np.array(spec["vcov_adjusted"]["values"])
    np.testing.assert_allclose(kr.vcov, phi, rtol=1e-9, atol=1e-12 * np.abs(phi).max())
    adjustment = phi_adjusted - phi
    np.testing.assert_allclose(
        kr.vcov_adjusted - kr.vcov, adjustment, rtol=1e-6, atol=1e-9 * np.abs(adjustment).max()
    )
    fe = model.fixed_effects(ddf="kenward-roger")
    np.testing.assert_allclose(fe["df"], spec["kenward_roger"]["df"], rtol=1e-9)
    expected = spec["anova"]["type3_kenward_roger"]
    table = model.anova(type=3, ddf="kenward-roger")
    assert list(table.index) == expected["term"]
    np.testing.assert_array_equal(table["num_df"], expected["numdf"])
    np.testing.assert_allclose(table["den_df"], expected["dendf"], rtol=1e-9)
    np.testing.assert_allclose(table["F"], expected["F"], rtol=1e-9)
    np.testing.assert_allclose(table["p_value"], expected["p"], rtol=1e-7)


ANOVA_CASES = [
    (name, type_, ddf)
    for name in ["oats_cells", "orthodont_unbalanced", "oats_slopes", *UNBALANCED_KR]
    for type_ in (1, 2, 3)
    for ddf in ("satterthwaite", "kenward-roger")
]


def _anova_expected(spec: dict, type_: int, ddf: str) -> dict:
    return spec["anova"][f"type{type_}_{ddf.replace('-', '_')}"]


@pytest.mark.parametrize(("name", "type_", "ddf"), ANOVA_CASES)
def test_anova_types_match_lmertest(name, type_, ddf, kr_type3_fixture, unbalanced_models):
    """lmerTest's anova(m, type, ddf) on unbalanced cells, with interactions beside their
    main effects (factor x factor, factor x numeric), on our own fit: F within 1e-4 (our
    θ is not lme4's; see the next test), df within 1%."""
    expected = _anova_expected(kr_type3_fixture["models"][name], type_, ddf)
    table = unbalanced_models[name].anova(type=type_, ddf=ddf)
    assert list(table.index) == expected["term"]
    np.testing.assert_array_equal(table["num_df"], expected["numdf"])
    np.testing.assert_allclose(table["F"], expected["F"], rtol=1e-4)
    np.testing.assert_allclose(table["den_df"], expected["dendf"], rtol=1e-2)


@pytest.mark.parametrize(("name", "type_", "ddf"), ANOVA_CASES)
def test_anova_types_at_lme4_theta(name, type_, ddf, kr_type3_fixture, unbalanced_models):
    """At lme4's θ: F within 1e-7 (lmerTest rounds its type III contrasts to 7 digits with
    zapsmall, ~3e-8 here), KR df within 1e-8, Satterthwaite df within 1e-3 (both packages
    differentiate numerically; they differ by up to 1.4e-4)."""
    spec = kr_type3_fixture["models"][name]
    expected = _anova_expected(spec, type_, ddf)
    table = _at_lme4_theta(unbalanced_models[name], spec["theta"]).anova(type=type_, ddf=ddf)
    np.testing.assert_allclose(table["F"], expected["F"], rtol=1e-7)
    df_rtol = 1e-8 if ddf == "kenward-roger" else 1e-3
    np.testing.assert_allclose(table["den_df"], expected["dendf"], rtol=df_rtol)
    np.testing.assert_allclose(table["p_value"], expected["p"], rtol=1e-3)


@pytest.mark.parametrize("name", ["oats_cells", "orthodont_unbalanced", "oats_slopes"])
def test_type3_hypotheses_span_lmertests(name, kr_type3_fixture, unbalanced_models):
    """Each term's type III L has the row space of lmerTest's get_contrasts_type3."""
    from mixedmodels.inference.hypotheses import term_hypotheses

    model = unbalanced_models[name]
    ours = term_hypotheses(model, 3)
    theirs = kr_type3_fixture["models"][name]["type3_contrasts"]
    assert list(ours) == list(theirs)
    for term, matrix in theirs.items():
        assert [_r_name(c) for c in matrix["colnames"]] == list(model.design.fixed_names)
        L_r = np.array(matrix["values"])
        L = ours[term]
        assert L.shape == L_r.shape
        # lmerTest's rows are combinations of ours and vice versa (ranks equal)
        for A, B in ((L, L_r), (L_r, L)):
            coef = np.linalg.lstsq(A.T, B.T, rcond=None)[0]
            np.testing.assert_allclose(A.T @ coef, B.T, atol=1e-7)


def test_type3_does_not_depend_on_reference_levels(kr_type3_fixture, unbalanced_models):
    """Type III F tests are contrast-invariant: other reference levels, same table, while
    the coefficient tests of the treatment contrasts (type III's old refusal) change."""
    spec = kr_type3_fixture["models"]["oats_cells"]
    frame = _unbalanced_frame(spec)
    for column in ("Variety", "N"):
        frame[column] = frame[column].cat.reorder_categories(frame[column].cat.categories[::-1])
    releveled = mm.lmer(spec["formula"], frame, reml=True)
    model = unbalanced_models["oats_cells"]
    for ddf in ("satterthwaite", "kenward-roger"):
        before = model.anova(type=3, ddf=ddf)
        after = releveled.anova(type=3, ddf=ddf)
        np.testing.assert_allclose(after["F"], before["F"], rtol=1e-4)
        np.testing.assert_allclose(after["den_df"], before["den_df"], rtol=1e-3)
    p = model.fixef.size
    coefficients = {
        label: model.contrast(np.eye(p)[cols])["F"].iloc[0]
        for label, cols in (("Variety", [1, 2]), ("N", [3, 4, 5]))
    }
    table = model.anova(type=3)
    assert abs(coefficients["N"] / table.loc["N", "F"] - 1) > 0.1


def test_inference_warnings_live_with_the_others():
    """ProfileWarning and RefitWarning are in mixedmodels.errors, still importable where
    they were, and filterable from the top level."""
    from mixedmodels import errors
    from mixedmodels.inference.anova import RefitWarning
    from mixedmodels.inference.profile import ProfileWarning

    assert ProfileWarning is errors.ProfileWarning is mm.ProfileWarning
    assert RefitWarning is errors.RefitWarning is mm.RefitWarning
    assert issubclass(ProfileWarning, UserWarning) and issubclass(RefitWarning, UserWarning)
