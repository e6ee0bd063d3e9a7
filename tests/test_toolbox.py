"""resim / predict_interval against merTools and lme4, lmlist against lme4's lmList and lm.

The R numbers are in tests/fixtures/toolbox.json (tools/make_toolbox_fixtures.R). Monte Carlo
summaries are compared within tolerances derived from their simulation error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.models.lmlist import lmlist

from .conftest import load_fixture


@pytest.fixture(scope="module")
def toolbox() -> dict:
    return load_fixture("toolbox.json")


@pytest.fixture(scope="module")
def gpa_slope(gpa) -> mm.LinearMixedModel:
    return mm.lmer("gpa ~ occasion + (1 + occasion | student)", gpa)


# -- resim --------------------------------------------------------------------------------
def test_resim_sd_matches_conditional_sd(seed_models):
    """Acceptance: student-intercept SDs agree with the conditional SDs (0.0917) within 5%."""
    m = seed_models["gpa_mixed"]
    table = m.resim(nsim=1000, seed=11)
    cond = m.random_effects()
    assert cond["se"].iloc[0] == pytest.approx(0.0917, abs=5e-5)
    relative = table["sd"].to_numpy() / cond["se"].to_numpy() - 1.0
    # the mean over 200 students has Monte Carlo error ~0.15%; each level's SD ~2.2%.
    assert abs(table["sd"].mean() / cond["se"].mean() - 1.0) < 0.01
    assert np.median(np.abs(relative)) < 0.05
    assert np.mean(np.abs(relative) < 0.05) > 0.95
    # means: conditional modes up to Monte Carlo error sd/sqrt(1000)
    error = np.abs(table["mean"] - cond["value"]) / (cond["se"] / np.sqrt(1000))
    assert error.max() < 4.5


def test_resim_against_mertools(seed_models, toolbox):
    m = seed_models["gpa_mixed"]
    r = toolbox["random_intercept"]
    table = m.resim(nsim=1000, seed=3)
    # lme4's condsd, exactly
    assert m.random_effects()["se"].mean() == pytest.approx(r["condsd_by_term"][0], rel=1e-5)
    # merTools' REsim (via arm::sim) also draws the fixed effects jointly, so its SDs are
    # slightly wider (0.0932 vs 0.0917); both within 5% of each other.
    assert table["sd"].mean() == pytest.approx(r["resim_sd_by_term"][0], rel=0.05)
    ours = table.set_index("group")["mean"]
    theirs = pd.Series(r["resim_mean"], index=r["resim_group"])
    assert np.corrcoef(ours.loc[theirs.index], theirs)[0, 1] > 0.995


def test_resim_random_slopes(gpa_slope):
    table = gpa_slope.resim(nsim=1000, seed=5)
    cond = gpa_slope.random_effects()
    assert table[["group_var", "effect", "group"]].equals(cond[["group_var", "effect", "group"]])
    for effect in ("Intercept", "occasion"):
        mine = table["effect"] == effect
        assert table.loc[mine, "sd"].mean() == pytest.approx(cond.loc[mine, "se"].mean(), rel=0.01)


def test_resim_reproducible_and_validated(seed_models):
    m = seed_models["gpa_mixed"]
    pd.testing.assert_frame_equal(m.resim(nsim=50, seed=1), m.resim(nsim=50, seed=1))
    with pytest.raises(ValueError, match="nsim: expecting an integer of at least 2. Got 1"):
        m.resim(nsim=1)


def test_resim_crossed_has_every_factor(seed_models):
    table = seed_models["pupils_crossed"].resim(nsim=100, seed=1)
    assert set(table["group_var"]) == {"primary_school_id", "secondary_school_id"}


# -- predict_interval -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "formula"),
    [
        ("random_intercept", "gpa ~ occasion + (1 | student)"),
        ("random_slope", "gpa ~ occasion + (1 + occasion | student)"),
    ],
)
def test_predict_interval_against_mertools(gpa, toolbox, key, formula):
    r = toolbox[key]
    m = mm.lmer(formula, gpa)
    full = m.predict_interval(level=0.95, nsim=1000, seed=7)
    covered = ((full["lower"] <= gpa["gpa"]) & (gpa["gpa"] <= full["upper"])).mean()
    # acceptance: about 95% (in-sample, the interval is slightly conservative, as merTools')
    assert 0.94 <= covered <= 0.99
    assert covered == pytest.approx(r["pi_coverage"], abs=0.015)
    assert (full["upper"] - full["lower"]).mean() == pytest.approx(r["pi_mean_width"], rel=0.02)
    # median of draws ~ the conditional prediction
    assert full["fit"].to_numpy()[:12] == pytest.approx(r["pi_fit_first"], abs=0.04)
    fixed = m.predict_interval(which="fixed", include_resid_var=False, nsim=1000, seed=7)
    width = (fixed["upper"] - fixed["lower"]).mean()
    assert width == pytest.approx(r["pi_fixed_mean_width"], rel=0.05)
    assert fixed["fit"].to_numpy()[:12] == pytest.approx(r["pi_fixed_fit_first"], abs=0.005)


def test_predict_interval_newdata_and_new_levels(seed_models, gpa):
    m = seed_models["gpa_mixed"]
    new = pd.DataFrame({"occasion": [0, 5, 5], "student": ["1", "1", "no such student"]})
    out = m.predict_interval(new, nsim=500, seed=2)
    assert list(out.columns) == ["fit", "lower", "upper"]
    assert (out["lower"] < out["fit"]).all() and (out["fit"] < out["upper"]).all()
    # an unseen student gets the population prediction (random effect 0), as merTools
    population = m.predict(new, re_form="~0")
    assert out["fit"].iloc[2] == pytest.approx(population[2], abs=0.05)
    random_only = m.predict_interval(new, which="random", include_resid_var=False, seed=2)
    assert random_only["fit"].iloc[2] == 0.0


def test_predict_interval_bad_options(seed_models):
    m = seed_models["gpa_mixed"]
    with pytest.raises(ValueError, match="which: expecting one of .*Got 'both'"):
        m.predict_interval(which="both")
    with pytest.raises(ValueError, match="level: expecting a number between 0 and 1. Got 95"):
        m.predict_interval(level=95)
    with pytest.raises(mm.DataError, match="newdata lacks the grouping column"):
        m.predict_interval(pd.DataFrame({"occasion": [1]}))


# -- lmlist -------------------------------------------------------------------------------
def test_lmlist_matches_lme4_lmlist(gpa, toolbox):
    ref = toolbox["lmlist"]
    fits = lmlist("gpa ~ occasion", gpa, group="student")
    assert fits["group"].nunique() == 200
    wide = fits.pivot(index="group", columns="term", values="value").loc[ref["groups"]]
    np.testing.assert_allclose(wide["Intercept"], ref["intercept"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(wide["occasion"], ref["slope"], rtol=1e-10, atol=1e-12)
    se = fits.pivot(index="group", columns="term", values="se").loc[ref["groups_separate"]]
    for effect, key in (("Intercept", "intercept"), ("occasion", "slope")):
        np.testing.assert_allclose(se[effect], ref[f"{key}_se_separate"], rtol=1e-10)


def test_lmlist_rank_deficient_group_is_nan():
    data = pd.DataFrame(
        {
            "y": [1.0, 2.0, 2.5, 4.0, 3.0, 3.0],
            "x": [0.0, 1.0, 2.0, 3.0, 1.0, 1.0],
            "g": ["a", "a", "a", "a", "b", "b"],
        }
    )
    fits = lmlist("y ~ x", data, group="g").set_index(["group", "term"])
    assert fits.loc[("a", "x"), "value"] == pytest.approx(0.95)
    assert fits.loc[("b", "Intercept"), "value"] == pytest.approx(3.0)
    assert np.isnan(fits.loc[("b", "x"), "value"])


def test_lmlist_errors(gpa):
    with pytest.raises(mm.FormulaError, match="lmlist\\(\\) takes a formula without random"):
        lmlist("gpa ~ occasion + (1 | student)", gpa, group="student")
    with pytest.raises(mm.DataError, match="group: expecting the name of the grouping column"):
        lmlist("gpa ~ occasion", gpa, group=None)  # type: ignore[arg-type]
    with pytest.raises(mm.DataError, match="nope"):
        lmlist("gpa ~ occasion", gpa, group="nope")
