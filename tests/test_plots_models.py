"""Plots right for models of other shapes than the chapter's gpa one (issue 10, item 6):
several covariates, crossed and nested factors, glmer binomial and poisson, residual
structures.  The drawn numbers are read back from the figures and checked."""

from __future__ import annotations

import io
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from scipy import special

import mixedmodels as mm
from mixedmodels.toolbox.group_fits import per_group_fits
from tests.conftest import fixture_frame, load_fixture, load_seed_data


def _texts(fig) -> str:
    parts = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        parts += [t.get_text() for t in ax.texts]
    fig.savefig(io.BytesIO(), format="png")
    return " | ".join(parts)


@pytest.fixture(scope="module")
def gpa_covariates(gpa):
    return mm.lmer("gpa ~ occasion + job + highgpa + sex + (1 + occasion | student)", gpa)


@pytest.fixture(scope="module")
def sdating():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmer(
            "decision ~ sex + samerace + attractive_sc + sincere_sc + intelligent_sc + (1 | iid)",
            load_seed_data("speed_dating"),
            family="binomial",
        )


@pytest.fixture(scope="module")
def ticks():
    data = fixture_frame(load_fixture("lme4_glmm.json"), "grouseticks")
    return mm.glmer("TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)", data, "poisson")


# -- fitted --------------------------------------------------------------------------------
def test_fitted_x_is_a_numeric_covariate_never_a_grouping_factor(seed_models, gpa_covariates):
    with pytest.raises(mm.DataError, match="numeric fixed-effect covariate.*grouping factors"):
        seed_models["pupils_crossed"].plot.fitted()  # sex, ses: no numeric covariate
    assert seed_models["nurses_hierach"].plot._x_column(None) == "age"
    assert gpa_covariates.plot._x_column(None) == "occasion"
    assert gpa_covariates.plot._x_column("highgpa") == "highgpa"
    with pytest.raises(mm.DataError, match="'job' is not numeric"):
        gpa_covariates.plot.fitted(x="job")
    with pytest.raises(mm.DataError, match="'student' is not a covariate"):
        gpa_covariates.plot.fitted(x="student")


def test_fitted_lines_hold_other_covariates_at_means_and_reference_levels(gpa_covariates):
    m = gpa_covariates
    gpa = m.design.frame  # the reference levels are those of the fitted rows
    fig = m.plot.fitted(groups=["3"])
    assert "highgpa, job, sex" in _texts(fig)
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    for label in ("3 (mixed model)", "population (mixed model)", "lm"):
        x, y = (np.asarray(v, dtype=float) for v in lines[label].get_data())
        assert np.allclose(np.diff(y, 2), 0.0, atol=1e-12), label  # straight, not jagged
    x, y = (np.asarray(v, dtype=float) for v in lines["3 (mixed model)"].get_data())
    new = pd.DataFrame(
        {
            "occasion": x[[0, -1]],
            "job": pd.Categorical([gpa["job"].cat.categories[0]] * 2, gpa["job"].cat.categories),
            "highgpa": gpa["highgpa"].mean(),
            "sex": pd.Categorical([gpa["sex"].cat.categories[0]] * 2, gpa["sex"].cat.categories),
            "student": "3",
        }
    )
    np.testing.assert_allclose(y[[0, -1]], m.predict(new), rtol=1e-12)
    x, y = (np.asarray(v, dtype=float) for v in lines["population (mixed model)"].get_data())
    np.testing.assert_allclose(y[[0, -1]], m.predict(new.assign(occasion=x[[0, -1]]), re_form="~0"))


def test_nested_group_lines_carry_the_enclosing_factor(seed_models, nurses):
    m = seed_models["nurses_hierach"]
    fig = m.plot.fitted(groups=["1:1"], group="hospital:ward")
    line = next(li for li in fig.axes[0].lines if li.get_label() == "1:1 (mixed model)")
    x, y = (np.asarray(v, dtype=float) for v in line.get_data())
    population = next(li for li in fig.axes[0].lines if li.get_label().startswith("population"))
    px, py = (np.asarray(v, dtype=float) for v in population.get_data())
    shift = y[0] - np.interp(x[0], px, py)
    re = m.random_effects().set_index(["group_var", "group"])["value"]
    assert shift == pytest.approx(re[("hospital", "1")] + re[("hospital:ward", "1:1")], rel=1e-9)


def test_glmer_fitted_on_the_response_scale_with_the_response_name(sdating, ticks):
    fig = sdating.plot.fitted(groups=["1", "2"])
    text = _texts(fig)
    assert "__response__" not in text
    assert "P(decision = Yes)" in text and "response scale" in text
    for line in fig.axes[0].lines:
        y = np.asarray(line.get_data()[1], dtype=float)
        assert ((0 < y) & (y < 1)).all()
    assert all(li.get_label() != "lm" for li in fig.axes[0].lines)
    line = next(li for li in fig.axes[0].lines if li.get_label() == "1 (mixed model)")
    x, y = (np.asarray(v, dtype=float) for v in line.get_data())
    eta = special.logit(y)
    assert np.allclose(np.diff(eta, 2), 0.0, atol=1e-9)  # a logistic curve of a straight η
    slope = (eta[-1] - eta[0]) / (x[-1] - x[0])
    assert slope == pytest.approx(sdating.fixef["attractive_sc"], rel=1e-9)
    text = _texts(ticks.plot.fitted())
    assert "mean TICKS (response scale)" in text and "cHEIGHT" in text


# -- shrinkage -----------------------------------------------------------------------------
def test_per_group_fits_adjust_for_the_fixed_part():
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(20), 10)
    x, z = rng.normal(size=g.size), rng.normal(size=g.size)
    w = rng.normal(size=20)[g]  # a group-level covariate
    y = 1 + 0.5 * x + 0.8 * z + 0.3 * w + rng.normal(0, 0.5, 20)[g] + rng.normal(0, 0.3, g.size)
    data = pd.DataFrame({"y": y, "x": x, "z": z, "w": w, "g": g.astype(str)})
    m = mm.lmer("y ~ x + z + w + (1 + x | g)", data)
    fits = per_group_fits(m, m.crossprods.terms[0])
    level = m.crossprods.terms[0].levels[4]
    rows = data[data["g"] == level]
    # z varies within the group: estimated there; w does not: held at the mixed estimate
    design = np.column_stack([np.ones(len(rows)), rows["x"], rows["z"]])
    target = rows["y"].to_numpy() - m.fixef["w"] * rows["w"].to_numpy()
    coef = np.linalg.lstsq(design, target, rcond=None)[0]
    assert fits.loc[level, "Intercept"] == pytest.approx(coef[0], rel=1e-9)
    assert fits.loc[level, "x"] == pytest.approx(coef[1], rel=1e-9)
    # not the intercept-and-x OLS the plot used to compare with
    plain = np.polyfit(rows["x"], rows["y"], 1)
    assert abs(fits.loc[level, "x"] - plain[0]) > 1e-3


def test_glmer_per_group_fits_solve_the_score_equations(sdating):
    term = sdating.crossprods.terms[0]
    fits = per_group_fits(sdating, term)
    y, X = sdating.design.y, sdating.design.X
    beta = sdating.fixef.to_numpy()
    offset = X[:, 1:] @ beta[1:]
    constant = pd.Series(y).groupby(term.codes).agg(lambda v: v.min() == v.max()).to_numpy()
    assert fits["Intercept"].isna().to_numpy().tolist() == constant.tolist()
    a = fits["Intercept"].to_numpy()[term.codes]
    score = pd.Series(y - special.expit(offset + a)).groupby(term.codes).sum()
    assert np.nanmax(np.abs(score.to_numpy()[~constant])) < 1e-6
    text = _texts(sdating.plot.shrinkage())
    assert "logit scale" in text and f"{int(constant.sum())} of {term.n_levels}" in text


def test_shrinkage_renders_on_crossed_poisson(ticks):
    text = _texts(ticks.plot.shrinkage(group="LOCATION"))
    assert "log scale" in text


# -- marginal covariance --------------------------------------------------------------------
def test_glmer_marginal_cov_is_the_linear_predictors_and_says_so(sdating, ticks):
    fig = sdating.plot.marginal_cov(groups=["1", "2"])
    text = _texts(fig)
    assert "Var(y)" not in text and "Cov(η)" in text and "logit scale" in text
    image = np.asarray(fig.axes[0].images[0].get_array())
    variance = sdating.theta[0] ** 2
    term = sdating.crossprods.terms[0]
    codes = term.codes[np.isin(np.asarray(term.levels, dtype=object)[term.codes], ["1", "2"])]
    np.testing.assert_allclose(image, variance * (codes[:, None] == codes[None, :]), rtol=1e-12)
    fig = ticks.plot.marginal_cov(groups=["1"], group="LOCATION")
    assert "Cov(η)" in _texts(fig)


def test_plots_render_with_a_residual_structure(gpa):
    m = mm.lmer("gpa ~ occasion + sex + (1 | student)", gpa, correlation=mm.CorAR1(group="student"))
    for fig in (m.plot.fitted(), m.plot.shrinkage(), m.plot.marginal_cov()):
        assert "__" not in _texts(fig)


def test_shrinkage_of_a_structured_term_without_fixed_counterparts(gpa):
    """ar1(0 + occas | student): the term's effects are per-occasion deviations, not fixed
    effects; each student's own fit is then y − Xβ̂ on the term's columns."""
    data = gpa[gpa["occasion"] <= 2].copy()
    data["occas"] = data["occas"].cat.remove_unused_categories()
    m = mm.lmer("gpa ~ occasion + ar1(0 + occas | student)", data, reml=False)
    term = m.crossprods.terms[0]
    fits = per_group_fits(m, term)
    assert fits.shape == (term.n_levels, 3)
    rows = np.flatnonzero(term.codes == 0)
    residual = m.design.y[rows] - m.design.X[rows] @ m.fixef.to_numpy()
    coef = np.linalg.lstsq(term.matrix[rows], residual, rcond=None)[0]
    np.testing.assert_allclose(fits.iloc[0].to_numpy(), coef, rtol=1e-9, atol=1e-12)
    text = _texts(m.plot.shrinkage())
    assert "occas" in text


def test_glmer_caterpillar_says_the_scale(sdating):
    assert "effect (logit scale)" in _texts(sdating.plot.caterpillar(simulate=False))
