"""The lm cells of the model × tool matrix against R (tools/make_lm_tool_fixtures.R):
anova.lm between nested fits, predict.lm's intervals, and the bootstrap's
self-consistency; the refusals name what to use instead."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

from .conftest import load_fixture

matplotlib.use("Agg")
FIXTURE = load_fixture("lm_tools.json")


@pytest.fixture(scope="module")
def fits(gpa):
    m0 = mm.lm("gpa ~ occasion", gpa)
    m1 = mm.lm("gpa ~ occasion + sex + job", gpa)
    return m0, m1


def test_anova_between_nested_lm_fits_is_anova_lm(fits):
    ref = FIXTURE["anova"]
    table = mm.anova(fits[1], fits[0])  # any order, as anova.lm sorts by size here
    np.testing.assert_allclose(table["Res.Df"], ref["res_df"])
    np.testing.assert_allclose(table["RSS"], ref["rss"], rtol=1e-10)
    np.testing.assert_allclose(table["Df"].iloc[1], ref["df"][1])
    np.testing.assert_allclose(table["Sum of Sq"].iloc[1], ref["sum_sq"][1], rtol=1e-9)
    np.testing.assert_allclose(table["F"].iloc[1], ref["F"][1], rtol=1e-9)
    np.testing.assert_allclose(table["p"].iloc[1], ref["p"][1], rtol=1e-6)
    np.testing.assert_allclose(table["logLik"], ref["logLik"], rtol=1e-10)
    assert list(table["npar"]) == [3, 6]


def test_anova_refuses_non_nested_and_mixed_kinds(gpa, fits):
    other = mm.lm("gpa ~ sex", gpa)
    with pytest.raises(mm.MixedModelsError, match="not nested"):
        mm.anova(fits[0], other)
    mixed = mm.lmer("gpa ~ occasion + (1 | student)", gpa)
    with pytest.raises(mm.MixedModelsError, match="Compare lm fits with each other"):
        mm.anova(fits[0], mixed)


def test_predict_interval_is_predict_lm(gpa, fits):
    ref = FIXTURE["predict"]
    rows = gpa.iloc[: ref["rows"]]
    pi = fits[1].predict_interval(rows)
    np.testing.assert_allclose(pi["fit"], ref["prediction"]["fit"], rtol=1e-10)
    np.testing.assert_allclose(pi["lower"], ref["prediction"]["lwr"], rtol=1e-10)
    np.testing.assert_allclose(pi["upper"], ref["prediction"]["upr"], rtol=1e-10)
    ci = fits[1].predict_interval(rows, include_resid_var=False)
    np.testing.assert_allclose(ci["lower"], ref["confidence"]["lwr"], rtol=1e-10)
    np.testing.assert_allclose(ci["upper"], ref["confidence"]["upr"], rtol=1e-10)


def test_predict_interval_of_a_weighted_fit_uses_the_rows_weights(gpa):
    ref = FIXTURE["predict"]["weighted"]
    data = gpa.assign(w=1.0 + gpa["occasion"] % 3)
    fit = mm.lm("gpa ~ occasion + sex", data, weights="w")
    pi = fit.predict_interval().iloc[:12]
    np.testing.assert_allclose(pi["lower"], ref["lwr"], rtol=1e-10)
    np.testing.assert_allclose(pi["upper"], ref["upr"], rtol=1e-10)


def test_predict_interval_refuses_random_part(fits):
    with pytest.raises(mm.UnsupportedToolError, match="lm fit.*which='full'"):
        fits[0].predict_interval(which="random")


def test_parametric_bootstrap_matches_the_exact_sampling_distribution(fits):
    """Parametric replicates of β are N(β̂, σ̂²(X'X)⁻¹) exactly: their SDs are the SEs
    within Monte Carlo error (SD of an SD: SE/√(2n)), and σ* follows σ̂·√(χ²_df/df)."""
    m = fits[1]
    nsim = 2000
    boot = m.bootstrap(nsim, seed=5)
    assert boot.n_failed == 0
    se = np.sqrt(np.diag(m.vcov.to_numpy()))
    sd = boot.replicates[list(m.design.fixed_names)].std(ddof=1).to_numpy()
    np.testing.assert_array_less(np.abs(sd / se - 1.0), 4.5 / np.sqrt(2 * nsim))
    mean = boot.replicates[list(m.design.fixed_names)].mean().to_numpy()
    np.testing.assert_array_less(np.abs(mean - m.beta) / (se / np.sqrt(nsim)), 4.5)
    # percentile interval of σ against the quantiles of σ̂·√(χ²_df/df)
    from scipy import stats

    df = m.df_residual
    ci = m.confint(method="boot", nsim=nsim, seed=5).loc["sigma"]
    expected = m.sigma * np.sqrt(stats.chi2.ppf([0.025, 0.975], df) / df)
    np.testing.assert_allclose(ci.to_numpy(), expected, rtol=5e-3)
    assert boot.replicates.equals(m.bootstrap(nsim, seed=5).replicates)  # seeded


def test_case_bootstrap_sds_match_the_standard_errors(fits):
    m = fits[0]
    boot = m.bootstrap(600, seed=2, kind="case")
    se = np.sqrt(np.diag(m.vcov.to_numpy()))
    sd = boot.replicates[list(m.design.fixed_names)].std(ddof=1).to_numpy()
    np.testing.assert_allclose(sd, se, rtol=0.15)
    assert not boot.replicates.equals(m.bootstrap(600, seed=2).replicates)


def test_confint_refusals_name_the_way_out(fits):
    with pytest.raises(mm.UnsupportedToolError, match="exact.*method='wald'"):
        fits[0].confint(method="profile")
    with pytest.raises(mm.UnsupportedToolError, match="no random-effect variance"):
        fits[0].confint(parm="theta_")
    with pytest.raises(mm.DataError, match="method"):
        fits[0].confint(method="bayes")


def test_plots_and_report_of_an_lm(fits, tmp_path):
    import matplotlib.pyplot as plt

    m = fits[1]
    fig = m.plot.fitted()
    ax = fig.axes[0]
    assert ax.get_xlabel() == "occasion" and "sex" in fig.get_suptitle()
    line = ax.get_lines()[0].get_ydata()
    assert np.allclose(np.diff(line, 2), 0.0, atol=1e-12)  # straight: others held fixed
    plt.close(fig)
    fig = m.plot.residuals()
    assert [a.get_title() for a in fig.axes] == ["Residuals vs fitted", "Normal QQ: residuals / σ"]
    plt.close(fig)
    html = mm.report(m, tmp_path / "lm.html").read_text()
    assert "Linear model report" in html and html.count("<img") == 2
    assert "Random effects" not in html and "sequential F tests" in html
    assert isinstance(m.anova(), pd.DataFrame)
