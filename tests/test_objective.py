"""Every tool through the fitted model's own objective (issue 10's reproducers).

R's values come from tools/make_objective_fixtures.R (tests/fixtures/objective_tools.json);
where R has none the checks are self-consistency: the deviance at a profile interval's
end is the minimum + χ²₁(0.95), bootstrap SDs match the Wald SEs, simulated responses
reproduce marginal_cov().
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

import mixedmodels as mm
from mixedmodels.errors import UnsupportedToolError
from mixedmodels.models.objective import GlmmObjective, LmmObjective

from .conftest import load_fixture, load_seed_data

CHI2 = float(stats.chi2.ppf(0.95, 1))


@pytest.fixture(scope="module")
def varident(gpa):
    return mm.lmer("gpa ~ occasion + (1 | student)", gpa, variance=mm.VarIdent("occasion"))


@pytest.fixture(scope="module")
def varident_ml(gpa):
    return mm.lmer(
        "gpa ~ occasion + (1 | student)", gpa, variance=mm.VarIdent("occasion"), reml=False
    )


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("objective_tools.json")


def _end_deviance(model, name: str, value: float) -> float:
    objective = model.objective
    base = objective.deviance(objective._ml_estimate(), reml=False)
    return objective.refit({name: value})[0] - base


# -- the objective itself ---------------------------------------------------------------


def test_each_kind_owns_its_criterion(varident, gpa):
    plain = mm.lmer("gpa ~ occasion + (1 | student)", gpa)
    for model in (plain, varident):
        f = model.objective
        assert isinstance(f, LmmObjective)
        assert f(f.start) == pytest.approx(model.deviance, abs=1e-8)
    # the whitened criterion is not the plain model's at the same θ
    x = varident.objective.start
    assert plain.objective(x[:1]) != pytest.approx(varident.objective(x), abs=1e-3)
    assert "residual structure" in varident.objective.kind


def test_ml_objective_keeps_the_residual_structure(varident, varident_ml):
    ml = varident.objective.ml()
    opt = ml.fit()
    assert opt.objective == pytest.approx(varident_ml.deviance, abs=1e-5)


# -- reproducer 1: varIdent intervals, ddf and bootstrap --------------------------------


@pytest.mark.slow
def test_varident_profile_intervals_are_the_whitened_models(varident_ml):
    ci = varident_ml.confint(parm=["sd_(Intercept)|student", "sigma", "occasion"])
    est = {
        "sd_(Intercept)|student": varident_ml.varcorr()["sdcor"].iloc[0],
        "sigma": varident_ml.sigma,
        "occasion": varident_ml.fixef["occasion"],
    }
    for name, value in est.items():
        lower, upper = ci.loc[name]
        assert lower < value < upper  # was outside: the plain model's interval
        for end in (lower, upper):
            assert _end_deviance(varident_ml, name, end) == pytest.approx(CHI2, abs=2e-3)


def test_varident_satterthwaite_uses_the_whitened_covariance(varident, gpa):
    from mixedmodels.inference.ddf import Satterthwaite

    method = Satterthwaite(varident)
    objective = varident.objective
    np.testing.assert_allclose(
        objective.vcov_beta(method.phi), varident.vcov.to_numpy(), rtol=1e-10
    )
    assert method.phi.size == 2 + 5  # θ, σ and the five variance ratios
    plain = Satterthwaite(mm.lmer("gpa ~ occasion + (1 | student)", gpa))
    assert method.df(np.array([0.0, 1.0])) != pytest.approx(plain.df(np.array([0.0, 1.0])))


def test_kenward_roger_refuses_a_residual_structure(varident):
    with pytest.raises(UnsupportedToolError, match="Kenward-Roger.*satterthwaite"):
        varident.fixed_effects(ddf="kenward-roger")


def test_simulated_residuals_have_the_residual_structure(varident):
    y = varident.objective.simulate(400, np.random.default_rng(1))
    rows = varident.marginal_cov(groups=["1", "2", "3"])
    index = np.flatnonzero(np.isin(varident.crossprods.terms[0].codes, [0, 1, 2]))
    sims = y[index]
    empirical = np.cov(sims)
    expected = rows.to_numpy()
    # Monte Carlo error of a covariance from 400 draws: sqrt((v_ii v_jj + v_ij²) / 400)
    se = np.sqrt((np.outer(np.diag(expected), np.diag(expected)) + expected**2) / 400)
    assert np.all(np.abs(empirical - expected) < 4.5 * se)
    # the residual variance differs by occasion (it would not with iid residuals)
    assert np.diag(expected).max() / np.diag(expected).min() > 1.5


@pytest.mark.slow
def test_varident_bootstrap_sds_match_the_wald_ses(varident):
    boot = varident.bootstrap(200, seed=2, progress=False)
    assert boot.n_failed == 0
    sd = boot.replicates.iloc[:, -2:].std().to_numpy()  # the two fixed effects
    se = np.sqrt(np.diag(varident.vcov.to_numpy()))
    # the SD of 200 normal draws has relative Monte Carlo error 1/sqrt(400) = 5%
    np.testing.assert_allclose(sd, se, rtol=0.2)


# -- reproducer 2: likelihood-ratio tests between varIdent fits ------------------------


def test_anova_between_varident_fits_keeps_the_structure(gpa, fixture):
    small = mm.lmer("gpa ~ occasion + (1 | student)", gpa, variance=mm.VarIdent("occasion"))
    large = mm.lmer("gpa ~ occasion + sex + (1 | student)", gpa, variance=mm.VarIdent("occasion"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.RefitWarning)
        table = mm.anova(small, large)
    ref = fixture["nlme"]["varident_anova"]
    assert table["npar"].tolist() == ref["df"]  # 9 and 10, was 3 and 4
    np.testing.assert_allclose(table["logLik"], ref["logLik"], rtol=1e-6)
    assert table["Chisq"].iloc[1] == pytest.approx(ref["L.Ratio"], rel=1e-4)
    assert table["p"].iloc[1] == pytest.approx(ref["p"], rel=1e-3)


@pytest.mark.parametrize(
    "key, kwargs",
    [
        ("varpower", {"variance": mm.VarPower("occasion1")}),
        ("ar1", {"correlation": mm.CorAR1(time="occasion", group="student")}),
    ],
)
def test_anova_residual_structure_against_the_plain_model(gpa, fixture, key, kwargs):
    data = gpa.assign(occasion1=gpa["occasion"] + 1)
    plain = mm.lmer("gpa ~ occasion + (1 | student)", data, reml=False)
    structured = mm.lmer("gpa ~ occasion + (1 | student)", data, reml=False, **kwargs)
    table = mm.anova(plain, structured)
    ref = fixture["nlme"][key]["anova_vs_plain"]
    assert table["npar"].tolist() == ref["df"]
    np.testing.assert_allclose(table["logLik"], ref["logLik"], rtol=1e-6)
    assert table["Chisq"].iloc[1] == pytest.approx(ref["L.Ratio"], rel=1e-3, abs=1e-6)


# -- reproducer 3: structured covariance terms ------------------------------------------


def test_structured_terms_map_their_own_theta(gpa):
    m = mm.lmer("gpa ~ occasion + cs(1 + occasion | student)", gpa, reml=False)
    params = m.objective.parameters()
    assert params.names[:3] == (
        "sd_(Intercept)|student",
        "sd_occasion|student",
        "cor_occasion.(Intercept)|student",
    )
    np.testing.assert_allclose(m.objective.from_sdcor(params.estimate[:4]), m.theta, rtol=1e-8)


def _glmmtmb_profile(ref: dict) -> dict:
    prof = ref["profile"]
    if "error" in prof:
        pytest.skip(f"glmmTMB's profile failed: {prof['error']}")
    return dict(zip(prof["names"], zip(prof["lower"], prof["upper"], strict=True), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("key", ["cs", "diag", "ar1"])
def test_structured_term_profiles_match_glmmtmb(gpa, fixture, key):
    ref = fixture["glmmTMB"][key]
    m = mm.lmer(ref["formula"], gpa, reml=False)
    assert m.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    lookup = _glmmtmb_profile(ref)
    names = m.objective.parameters().names
    ci = m.confint(parm=[names[0], "beta_"])
    for name, ours in (("(Intercept)", "Intercept"), ("occasion", "occasion")):
        np.testing.assert_allclose(ci.loc[ours], lookup[name], rtol=2e-4)
    # glmmTMB profiles the first SD as its log (theta_...1): the same interval
    theta1 = next(v for k, v in lookup.items() if k.startswith("theta_") and k.endswith(".1"))
    np.testing.assert_allclose(ci.loc[names[0]], np.exp(theta1), rtol=2e-3)
    for end in ci.loc[names[0]]:
        assert _end_deviance(m, names[0], end) == pytest.approx(CHI2, abs=2e-3)


@pytest.mark.slow
def test_ar1_correlation_profile_matches_glmmtmb(gpa, fixture):
    ref = fixture["glmmTMB"]["ar1"]
    m = mm.lmer(ref["formula"], gpa, reml=False)
    name = m.objective.parameters().names[1]
    ci = m.confint(parm=name)
    lookup = _glmmtmb_profile(ref)
    x = np.array(lookup["theta_0+occas|student.2"])  # glmmTMB's ρ = x / sqrt(1 + x²)
    np.testing.assert_allclose(ci.loc[name], x / np.sqrt(1 + x * x), rtol=2e-3)


@pytest.mark.slow
def test_dispformula_analogue_of_varident_matches_glmmtmb(varident_ml, fixture):
    ref = fixture["glmmTMB"]["dispformula"]
    assert varident_ml.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    lookup = _glmmtmb_profile(ref)
    ci = varident_ml.confint(parm=["sd_(Intercept)|student", "beta_"])
    np.testing.assert_allclose(
        ci.loc["sd_(Intercept)|student"], np.exp(lookup["theta_1|student.1"]), rtol=2e-3
    )
    for name, ours in (("(Intercept)", "Intercept"), ("occasion", "occasion")):
        np.testing.assert_allclose(ci.loc[ours], lookup[name], rtol=2e-4)
    joint = np.sqrt(np.diag(varident_ml.objective.joint_vcov()))
    np.testing.assert_allclose(joint, ref["se"], rtol=2e-3)


def test_ar1_term_profile_evaluates(gpa):
    m = mm.lmer("gpa ~ occasion + ar1(0 + occas | student)", gpa, reml=False)
    params = m.objective.parameters()
    assert params.names[:2] == (
        "sd_occasyear 1 semester 1|student",
        "cor_occasyear 1 semester 2.occasyear 1 semester 1|student",
    )
    base = m.objective.deviance(m.objective.start, reml=False)
    check, _ = m.objective.ml_deviance_sdcor(params.estimate[: params.n_variance])
    assert check == pytest.approx(base, abs=1e-6)  # was inf: Cholesky θ assumed


def test_joint_hessian_ses_on_an_ar1_term(gpa, fixture):
    ref = fixture["glmmTMB"]["ar1"]
    m = mm.lmer(ref["formula"], gpa, reml=False)
    joint = np.sqrt(np.diag(m.objective.joint_vcov()))
    np.testing.assert_allclose(joint, ref["se"], rtol=2e-3)


# -- reproducer 5: glmer tests ------------------------------------------------------------


@pytest.fixture(scope="module")
def speed_dating():
    return load_seed_data("speed_dating")


@pytest.fixture(scope="module")
def glmer_pair(speed_dating, fixture):
    ref = fixture["glmer"]
    data = speed_dating.dropna(subset=["attractive_sc", "sincere_sc"])
    small = mm.glmer(ref["small"], data, family="binomial")
    large = mm.glmer(ref["large"], data, family="binomial")
    return small, large


def test_glmer_anova_types_are_wald_chisquare(glmer_pair, fixture):
    _, large = glmer_pair
    assert isinstance(large.objective, GlmmObjective)
    table = large.anova(type=3)
    assert table.attrs["test"].startswith("Wald chi-square")
    for row in fixture["glmer"]["wald_type3"]:
        term = row["term"]
        assert table.loc[term, "Df"] == row["df"]
        assert table.loc[term, "Chisq"] == pytest.approx(row["chisq"], rel=2e-3)
        assert np.isfinite(table.loc[term, "p_value"])
    with pytest.raises(UnsupportedToolError, match="glmer fit.*ddf='normal'"):
        large.anova(ddf="satterthwaite")


def test_glmer_contrast_is_a_wald_z_test(glmer_pair):
    _, large = glmer_pair
    one = large.contrast({"attractive_sc": 1.0})
    table = large.fixed_effects().set_index("term")
    assert one["z"].iloc[0] == pytest.approx(table.loc["attractive_sc", "z"], rel=1e-10)
    two = large.contrast(np.eye(len(large.fixef))[3:5])
    assert two["Df"].iloc[0] == 2 and 0 <= two["p_value"].iloc[0] <= 1


def test_glmer_likelihood_ratio_test(glmer_pair, fixture):
    small, large = glmer_pair
    table = mm.anova(small, large)
    ref = fixture["glmer"]["anova"]
    assert table["npar"].tolist() == ref["npar"]
    np.testing.assert_allclose(table["logLik"], ref["logLik"], rtol=1e-6)
    assert table["Chisq"].iloc[1] == pytest.approx(ref["Chisq"][1], rel=1e-4)
