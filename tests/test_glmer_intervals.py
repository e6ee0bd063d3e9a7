"""predict_interval and resim on glmer fits against merTools (tests/fixtures/glmer_intervals.json,
made by tools/make_glmer_interval_fixtures.R).

merTools' intervals are Monte Carlo quantiles of n_sims draws, so are ours: the two are compared
on the link scale, where the draws are normal, within 4.5 standard errors of the difference of
two independent sample quantiles (the SE of a sample q-quantile of a normal with SD s from n
draws is s·sqrt(q(1 − q)/n)/φ(z_q)).  A Gaussian residual on the link scale (the bug this
guards against: N(0, 1) noise widens the speed-dating intervals by ~15%) is many SEs away.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from tests.conftest import fixture_frame, load_fixture, load_seed_data


@pytest.fixture(scope="module")
def fixture() -> dict:
    return load_fixture("glmer_intervals.json")


@pytest.fixture(scope="module")
def models(fixture) -> dict:
    dates = load_seed_data("speed_dating")
    with pytest.warns(mm.MissingDataWarning):
        sdating = mm.glmer(fixture["sdating"]["formula"], dates, family="binomial")
    ticks_data = fixture_frame(load_fixture("lme4_glmm.json"), "grouseticks")
    ticks = mm.glmer(fixture["grouseticks"]["formula"], ticks_data, family="poisson")
    return {
        "sdating": (sdating, dates, stats.logistic.ppf),
        "grouseticks": (ticks, ticks_data, np.log),
    }


def _rows(frame: pd.DataFrame, ref: dict) -> pd.DataFrame:
    return frame.iloc[np.asarray(ref["rows"]) - 1]


def _assert_quantiles_match(ours: pd.DataFrame, lower, fit, upper, link, n_ours, n_theirs):
    lower, fit, upper = (link(np.asarray(v)) for v in (lower, fit, upper))
    z = stats.norm.ppf(0.975)
    s = (upper - lower) / (2 * z)  # the SD of the (normal) link-scale draws
    for column, theirs, q in (("lower", lower, 0.025), ("fit", fit, 0.5), ("upper", upper, 0.975)):
        se_one = np.sqrt(q * (1 - q)) / stats.norm.pdf(stats.norm.ppf(q))
        se = s * se_one * np.sqrt(1 / n_ours + 1 / n_theirs)
        diff = link(ours[column].to_numpy()) - theirs
        assert np.all(np.abs(diff) < 4.5 * se), (column, np.max(np.abs(diff) / se))


@pytest.mark.parametrize("key", ["sdating", "grouseticks"])
def test_predict_interval_matches_mertools_probability(models, fixture, key):
    model, frame, link = models[key]
    ref = fixture[key]
    newdata = _rows(frame, ref)
    # the same rows as R's: lme4's predictions at the modes
    np.testing.assert_allclose(
        model.predict(newdata, type="response"), ref["predict_response"], rtol=2e-3
    )
    n = 4000
    full = model.predict_interval(newdata, nsim=n, seed=11)
    _assert_quantiles_match(full, ref["lower"], ref["fit"], ref["upper"], link, n, ref["n_sims"])
    fixed = model.predict_interval(newdata, which="fixed", nsim=n, seed=12)
    _assert_quantiles_match(
        fixed, ref["fixed_lower"], ref["fixed_fit"], ref["fixed_upper"], link, n, ref["n_sims"]
    )


def test_binary_intervals_are_probabilities(models):
    """The issue's reproducer: on the chapter's model intervals were like [-0.93, 4.21]."""
    model, _, _ = models["sdating"]
    out = model.predict_interval(nsim=500, seed=1)
    assert len(out) == model.nobs
    assert ((0 < out["lower"]) & (out["lower"] <= out["fit"])).all()
    assert ((out["fit"] <= out["upper"]) & (out["upper"] < 1)).all()
    # the median of the draws of μ is close to the prediction at the modes
    np.testing.assert_allclose(out["fit"], model.fitted(), atol=0.03)
    # with 401 draws the 2.5%, 50% and 97.5% quantiles are draws: they commute with g⁻¹
    out = model.predict_interval(nsim=401, seed=1)
    link = model.predict_interval(nsim=401, seed=1, type="link")
    for column in ("lower", "fit", "upper"):
        np.testing.assert_allclose(stats.logistic.cdf(link[column]), out[column], rtol=1e-6)
    mean = model.predict_interval(nsim=500, seed=1, stat="mean")
    assert (mean["fit"] != out["fit"]).any()
    assert ((mean["lower"] < mean["fit"]) & (mean["fit"] < mean["upper"])).all()


def test_glmer_resid_var_is_refused(models):
    model, _, _ = models["grouseticks"]
    with pytest.raises(ValueError, match="poisson GLMM has no Gaussian residual.*simulate"):
        model.predict_interval(include_resid_var=True)
    with pytest.raises(ValueError, match="type: expecting one of"):
        model.predict_interval(type="probability")


def test_inverse_link_draws_without_a_mean_are_nan():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(12), 6)
    mu = 1.0 / (0.4 + rng.normal(0, 0.25, 12)[g].clip(-0.3, None))
    data = pd.DataFrame({"y": rng.gamma(2.0, mu / 2.0), "g": g})
    model = mm.glmer("y ~ 1 + (1 | g)", data, family="Gamma", link="inverse")
    with pytest.warns(RuntimeWarning, match="no valid mean under the inverse link"):
        out = model.predict_interval(nsim=4000, seed=2)
    bad = out["fit"].isna()
    assert bad.any() and not bad.all()
    ok = out[~bad]
    assert ((0 < ok["lower"]) & (ok["lower"] < ok["fit"]) & (ok["fit"] < ok["upper"])).all()


@pytest.mark.parametrize("key", ["sdating", "grouseticks"])
def test_resim_on_glmer_matches_lme4_condsd(models, fixture, key):
    model, _, _ = models[key]
    ref = fixture[key]
    table = model.resim(nsim=1000, seed=4)
    assert len(table) == len(model.random_effects())
    # lme4's conditional SDs exactly in expectation; merTools' REsim (arm::sim) within 3%
    assert table["sd"].mean() == pytest.approx(ref["condsd_mean"], rel=0.01)
    assert table["sd"].mean() == pytest.approx(ref["resim_sd_mean"], rel=0.03)
