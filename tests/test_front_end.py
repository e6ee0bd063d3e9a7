"""The front end as R users write it: formulas, data conventions and predictions (issue 12)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.errors import DataError, MixedModelsError, OptionError


@pytest.fixture(scope="module")
def gpa():
    return mm.datasets.gpa(seed=1)


@pytest.fixture(scope="module")
def model(gpa):
    return mm.lmer("gpa ~ occasion + (1 | student)", gpa)


# -- predictions that never lie --------------------------------------------------------


@pytest.mark.parametrize("kind", ["object", "category"])
def test_a_missing_grouping_value_gets_the_population_prediction(gpa, model, kind):
    new = gpa.iloc[[0, 1]].copy()
    values = [str(gpa["student"].iloc[0]), None]
    if kind == "object":
        new["student"] = pd.Series(values, dtype=object, index=new.index)
    else:
        new["student"] = pd.Categorical(values, categories=gpa["student"].cat.categories)
    with_re = model.predict(new)
    population = model.predict(new, re_form="~0")
    assert with_re.iloc[1] == pytest.approx(population.iloc[1])
    assert with_re.iloc[0] == pytest.approx(model.predict()[0])
    assert with_re.iloc[0] != pytest.approx(population.iloc[0])


def test_nested_terms_with_a_missing_value(gpa):
    data = gpa.assign(half=np.where(gpa["occasion"] < 3, "early", "late"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer("gpa ~ occasion + (1 | student/half)", data)
    new = data.iloc[[0, 1]].copy()
    new["half"] = pd.Series(["early", None], dtype=object, index=new.index)
    prediction = m.predict(new)
    only_student = m.predict(new, re_form="~(1 | student)")
    assert prediction.iloc[1] == pytest.approx(only_student.iloc[1])
    assert prediction.iloc[0] == pytest.approx(m.predict()[0])


def test_unseen_levels_follow_allow_new_levels(gpa, model):
    # lme4's default refuses unseen levels; allowing them is the user's explicit choice
    new = gpa.iloc[[0]].assign(student="a student the fit never saw")
    population = model.predict(new, re_form="~0").iloc[0]
    assert model.predict(new, allow_new_levels=True).iloc[0] == pytest.approx(population)
    with pytest.raises(DataError, match="did not see.*allow_new_levels"):
        model.predict(new)
    with pytest.raises(DataError, match="did not see.*allow_new_levels"):
        model.predict(new, allow_new_levels=False)


def test_predict_on_a_dataframe_is_a_series_with_its_index(gpa, model):
    new = gpa.iloc[[5, 3, 9]].set_axis(["c", "a", "b"])
    prediction = model.predict(new)
    assert isinstance(prediction, pd.Series)
    assert list(prediction.index) == ["c", "a", "b"]
    np.testing.assert_allclose(prediction.to_numpy(), model.predict()[[5, 3, 9]])


@pytest.mark.parametrize(
    "formula, kwargs",
    [
        ("gpa ~ occasion + offset(highgpa) + (1 | student)", {}),
        ("gpa ~ occasion + (1 | student)", {"offset": "highgpa"}),
    ],
)
def test_newdata_gets_the_offset(gpa, formula, kwargs):
    m = mm.lmer(formula, gpa, **kwargs)
    np.testing.assert_allclose(m.predict(gpa).to_numpy(), m.predict(), rtol=1e-12)
    without = mm.lmer("gpa ~ occasion + (1 | student)", gpa.assign(gpa=gpa["gpa"] - gpa["highgpa"]))
    np.testing.assert_allclose(m.fixef, without.fixef, rtol=1e-6)


def test_glmer_newdata_gets_the_offset():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(40), 8)
    exposure = rng.uniform(1, 5, g.size)
    counts = rng.poisson(exposure * np.exp(0.3 + rng.normal(0, 0.3, 40)[g]))
    data = pd.DataFrame({"y": counts, "g": g, "exposure": exposure})
    m = mm.glmer("y ~ 1 + offset(log(exposure)) + (1 | g)", data, family="poisson")
    np.testing.assert_allclose(m.predict(data).to_numpy(), m.predict(), rtol=1e-10)
    np.testing.assert_allclose(m.predict(data, type="response").to_numpy(), m.fitted(), rtol=1e-10)


@pytest.mark.parametrize(
    "formula, kwargs",
    [
        ("gpa ~ occasion + offset(highgpa) + (1 | student)", {}),
        ("gpa ~ occasion + (1 | student)", {"offset": "highgpa"}),
    ],
)
def test_predict_interval_on_newdata_gets_the_offset(gpa, formula, kwargs):
    m = mm.lmer(formula, gpa, **kwargs)
    # the same seed and rows draw the same β, b and residuals: newdata equals the fitted rows
    on_fit = m.predict_interval(nsim=200, seed=4)
    on_new = m.predict_interval(gpa, nsim=200, seed=4)
    np.testing.assert_allclose(on_new.to_numpy(), on_fit.to_numpy(), rtol=1e-10)
    # an offset one higher moves every quantile up by one
    shifted = m.predict_interval(gpa.assign(highgpa=gpa["highgpa"] + 1), nsim=200, seed=4)
    np.testing.assert_allclose(shifted.to_numpy(), on_fit.to_numpy() + 1, rtol=1e-10)


def test_glmer_predict_interval_on_newdata_gets_the_offset():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(40), 8)
    exposure = rng.uniform(1, 5, g.size)
    counts = rng.poisson(exposure * np.exp(0.3 + rng.normal(0, 0.3, 40)[g]))
    data = pd.DataFrame({"y": counts, "g": g, "exposure": exposure})
    m = mm.glmer("y ~ 1 + offset(log(exposure)) + (1 | g)", data, family="poisson")
    on_fit = m.predict_interval(nsim=300, seed=2)
    on_new = m.predict_interval(data, nsim=300, seed=2)
    np.testing.assert_allclose(on_new.to_numpy(), on_fit.to_numpy(), rtol=1e-10)
    # a doubled exposure doubles the rate draws, hence every quantile
    doubled = m.predict_interval(data.assign(exposure=2 * exposure), nsim=300, seed=2)
    np.testing.assert_allclose(doubled.to_numpy(), 2 * on_fit.to_numpy(), rtol=1e-10)


def test_an_array_offset_cannot_follow_new_rows(gpa):
    m = mm.lmer("gpa ~ occasion + (1 | student)", gpa, offset=np.ones(len(gpa)))
    with pytest.raises(DataError, match="offset was given as an array"):
        m.predict(gpa)


def test_na_action_exclude_pads_with_nan(gpa):
    data = gpa.copy()
    data.loc[[2, 7], "gpa"] = np.nan
    with pytest.warns(mm.errors.MissingDataWarning):
        m = mm.lmer("gpa ~ occasion + (1 | student)", data, na_action="exclude")
    assert m.nobs == len(gpa) - 2
    for values in (m.fitted(), m.residuals(), m.predict()):
        assert values.shape == (len(gpa),)
        assert np.isnan(values[[2, 7]]).all() and np.isfinite(np.delete(values, [2, 7])).all()
    with pytest.warns(mm.errors.MissingDataWarning):
        omitted = mm.lmer("gpa ~ occasion + (1 | student)", data)
    np.testing.assert_allclose(np.delete(m.fitted(), [2, 7]), omitted.fitted())
    assert "Scaled residuals" in m.summary()


# -- formulas --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "term, names",
    [
        ("poly(occasion, 2)", ["poly(occasion, 2)1", "poly(occasion, 2)2"]),
        ("scale(occasion)", ["scale(occasion)"]),
        ("center(occasion)", ["center(occasion)"]),
        (
            "bs(occasion, df=3)",
            ["bs(occasion, df=3)1", "bs(occasion, df=3)2", "bs(occasion, df=3)3"],
        ),
        ("factor(occasion)", [f"factor(occasion){k}" for k in range(1, 6)]),
        ("C(sex, levels=['male', 'female'])", ["C(sex, levels=['male', 'female'])female"]),
        ("log(highgpa)", ["log(highgpa)"]),
    ],
)
def test_transforms_fit_and_are_remembered_for_newdata(gpa, term, names):
    m = mm.lmer(f"gpa ~ {term} + (1 | student)", gpa)
    assert list(m.fixef.index) == ["Intercept", *names]
    rows = [10, 3, 11]  # a subset: its own mean and scale would differ from the fit's
    np.testing.assert_allclose(m.predict(gpa.iloc[rows]).to_numpy(), m.predict()[rows])


def test_transforms_in_a_random_term(gpa):
    m = mm.lmer("gpa ~ occasion + (scale(occasion) | student)", gpa)
    assert list(m.varcorr()["var1"].dropna().unique())[:2] == ["(Intercept)", "scale(occasion)"]
    np.testing.assert_allclose(m.predict(gpa.iloc[:4]).to_numpy(), m.predict()[:4])


def test_dotted_and_backticked_names(gpa):
    data = gpa.rename(columns={"occasion": "occ.num"})
    plain = mm.lmer("gpa ~ occasion + (1 | student)", gpa)
    for formula in ("gpa ~ occ.num + (1 | student)", "gpa ~ `occ.num` + (1 | student)"):
        m = mm.lmer(formula, data)
        assert list(m.fixef.index) == ["Intercept", "occ.num"]
        np.testing.assert_allclose(m.fixef.to_numpy(), plain.fixef.to_numpy())


def test_columns_named_like_functions(gpa):
    data = gpa.rename(columns={"occasion": "C", "gpa": "log"})
    m = mm.lmer("log ~ C + (1 | student)", data)
    assert list(m.fixef.index) == ["Intercept", "C"]


def test_unknown_names_are_named(gpa):
    with pytest.raises(DataError, match="Unknown column 'occ.nu'"):
        mm.lmer("gpa ~ occ.nu + (1 | student)", gpa)
    with pytest.raises(DataError, match="Unknown column 'nothing'"):
        mm.lmer("gpa ~ poly(nothing, 2) + (1 | student)", gpa)


def test_non_ascii_grouping_names(gpa):
    m = mm.lmer("gpa ~ occasion + (1 | élève)", gpa.rename(columns={"student": "élève"}))
    assert m.ngroups == {"élève": 200}


# -- data conventions ------------------------------------------------------------------


def test_ordered_factors_get_polynomial_contrasts(gpa):
    data = gpa.assign(
        occ=pd.Categorical(gpa["occasion"].astype(str), categories=list("012345"), ordered=True)
    )
    m = mm.lmer("gpa ~ occ + (1 | student)", data)
    assert list(m.fixef.index) == ["Intercept", "occ.L", "occ.Q", "occ.C", "occ^4", "occ^5"]
    np.testing.assert_allclose(m.predict(data.iloc[:6]).to_numpy(), m.predict()[:6])


@pytest.mark.parametrize("unit", ["datetime", "timedelta"])
def test_dates_are_refused_with_how_to_convert(gpa, unit):
    days = pd.to_timedelta(gpa["occasion"], unit="D")
    data = gpa.assign(when=pd.Timestamp("2020-01-01") + days if unit == "datetime" else days)
    with pytest.raises(DataError, match="Convert it to a number"):
        mm.lmer("gpa ~ when + (1 | student)", data)


def test_duplicated_names_are_refused(gpa):
    data = pd.concat([gpa[["gpa", "occasion", "student"]], gpa[["occasion"]]], axis=1)
    with pytest.raises(DataError, match="duplicated column names \\(occasion\\)"):
        mm.lmer("gpa ~ occasion + (1 | student)", data)


def test_numbers_stored_as_objects_are_numbers(gpa):
    data = gpa.assign(occasion=gpa["occasion"].astype(object))
    m = mm.lmer("gpa ~ occasion + (1 | student)", data)
    assert list(m.fixef.index) == ["Intercept", "occasion"]


def test_polars_level_order_and_lazy_frames(gpa):
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame(
        {
            "gpa": gpa["gpa"].to_numpy(),
            "occasion": gpa["occasion"].to_numpy(),
            "student": gpa["student"].astype(str).to_numpy(),
            "sex": pl.Series(gpa["sex"].astype(str).to_list(), dtype=pl.Enum(["male", "female"])),
        }
    )
    m = mm.lmer("gpa ~ occasion + sex + (1 | student)", frame)
    assert list(m.fixef.index) == ["Intercept", "occasion", "sexfemale"]
    lazy = mm.lmer("gpa ~ occasion + sex + (1 | student)", frame.lazy())
    np.testing.assert_allclose(lazy.fixef.to_numpy(), m.fixef.to_numpy())


def test_a_three_level_categorical_glmer_response_is_refused(gpa):
    data = gpa.assign(outcome=pd.Categorical(np.resize(["a", "b", "c"], len(gpa))))
    with pytest.raises(DataError, match="3 levels"):
        mm.glmer("outcome ~ occasion + (1 | student)", data)


# -- options and messages --------------------------------------------------------------


def test_options_are_validated_in_one_place(gpa, model):
    with pytest.raises(OptionError, match="na_action: expecting one of"):
        mm.lmer("gpa ~ occasion + (1 | student)", gpa, na_action="drop")
    with pytest.raises(OptionError, match="type: expecting one of"):
        mm.glmer("y ~ 1 + (1 | g)", pd.DataFrame({"y": [0, 1] * 10, "g": [1, 2] * 10})).predict(
            type="probability"
        )


def test_messages_name_the_users_columns(gpa):
    data = gpa.assign(w=np.where(gpa.index < 3, np.nan, 1.0))
    with pytest.warns(mm.errors.MissingDataWarning, match="in weights"):
        mm.lmer("gpa ~ occasion + (1 | student)", data, weights=data["w"].to_numpy())
    binary = gpa.assign(passed=(gpa["gpa"] > 2.6).astype(float))
    binary.loc[0, "passed"] = np.nan
    with pytest.warns(mm.errors.MissingDataWarning, match="in passed"):
        mm.glmer("passed ~ occasion + (1 | student)", binary)


def test_every_zero_weight_is_refused(gpa):
    with pytest.raises(DataError, match="Every weight is zero"):
        mm.lmer("gpa ~ occasion + (1 | student)", gpa, weights=np.zeros(len(gpa)))


def test_lm_checks_rank_on_the_rows_with_weight(gpa):
    # a level seen only in zero-weight rows is aliased, as R's lm.wfit finds (coefficient NA)
    data = gpa.assign(site=np.where(np.arange(len(gpa)) < 12, "rare", "common"))
    weights = np.where(data["site"] == "rare", 0.0, 1.0)
    with pytest.warns(mm.errors.RankDeficiencyWarning, match="siterare"):
        fit = mm.lm("gpa ~ occasion + site", data, weights=weights)
    kept = mm.lm("gpa ~ occasion", data[weights > 0])
    assert list(fit.fixef.index) == list(kept.fixef.index)
    np.testing.assert_allclose(fit.fixef.to_numpy(), kept.fixef.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(fit.coefficients()["se"], kept.coefficients()["se"], rtol=1e-10)


def test_errors_are_mixedmodels_errors():
    assert issubclass(OptionError, MixedModelsError)


# -- numerical edge cases end at fit time in a MixedModelsError ------------------------


def test_a_constant_response_is_refused(gpa):
    with pytest.raises(DataError, match="response is constant"):
        mm.lmer("gpa ~ occasion + (1 | student)", gpa.assign(gpa=3.0))


def test_more_fixed_columns_than_rows(gpa):
    small = gpa.iloc[:12]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.RankDeficiencyWarning)
        with pytest.raises(DataError):
            mm.lmer("gpa ~ factor(occasion) * sex * job + (1 | student)", small)


def test_wide_fixed_matrices_drop_columns_beyond_the_rank(gpa):
    small = gpa.iloc[:6]
    with pytest.warns(mm.RankDeficiencyWarning):
        fit = mm.lm("gpa ~ factor(occasion) + highgpa + year", small)
    assert len(fit.fixef) == 6


def test_an_all_ones_binomial_response_is_refused(gpa):
    with pytest.raises(DataError, match="Every response is 1"):
        mm.glmer("y ~ occasion + (1 | student)", gpa.assign(y=1.0))


def test_separation_is_named():
    rng = np.random.default_rng(1)
    x = rng.normal(size=60)
    data = pd.DataFrame({"y": (x > 0).astype(float), "x": x, "g": np.tile(np.arange(6), 10)})
    with pytest.warns(mm.ConvergenceWarning, match="separated by x"):
        m = mm.glmer("y ~ x + (1 | g)", data)
    assert abs(m.fixef["x"]) > 10
    level = pd.DataFrame(
        {
            "y": np.r_[rng.integers(0, 2, 30), np.ones(30)],
            "f": np.repeat(["a", "b"], 30),
            "g": np.tile(np.arange(6), 10),
        }
    )
    with pytest.raises(DataError, match="separated: fb"):
        mm.glmer("y ~ f + (1 | g)", level)


def test_glmer_gets_lmers_design_checks():
    rng = np.random.default_rng(2)
    data = pd.DataFrame(
        {"y": rng.integers(0, 2, 60), "x": rng.normal(size=60), "g": np.arange(60) % 45}
    )
    with pytest.raises(DataError, match="90 random effects for 60 observations"):
        mm.glmer("y ~ x + (x | g)", data)


def test_badly_scaled_covariates_warn_with_the_columns(gpa):
    with pytest.warns(mm.ScaleWarning, match=r"big \(SD 1\.7\de\+06\).*scale\(x\)"):
        mm.lmer("gpa ~ big + (1 | student)", gpa.assign(big=gpa["occasion"] * 1e6))


@pytest.mark.parametrize(
    "call",
    [
        lambda d: mm.lmer("gpa ~ occasion + (1 | student)", d, reml="no"),
        lambda d: mm.lmer("gpa ~ occasion + (1 | student)", d, control={"bogus": 1}),
        lambda d: mm.glmer("gpa ~ occasion + (1 | student)", d, family="bogus"),
        lambda d: mm.lmer("gpa ~ occasion + (1 | student)", d).predict(d, re_form="~(1|x)"),
    ],
)
def test_bad_options_are_option_errors(gpa, call):
    with pytest.raises(OptionError):
        call(gpa)


def test_varconstpower_on_a_covariate_with_zeros(gpa):
    # |0|^power: a negative power makes the variance infinite, so the power stays >= 0;
    # before, the search met +inf there, stopped at its first step and said nothing
    plain = mm.lmer("gpa ~ occasion + (1 | student)", gpa)
    with pytest.warns(mm.errors.SingularFitWarning, match="power = 0"):
        flat = mm.lmer("gpa ~ occasion + (1 | student)", gpa, variance=mm.VarConstPower("occasion"))
    assert flat.residual_parameters()["power"] == pytest.approx(0.0, abs=1e-6)
    # at power 0 the variance function is constant: the fit is the plain model's
    assert flat.loglik == pytest.approx(plain.loglik, abs=1e-6)
    np.testing.assert_allclose(flat.fixef, plain.fixef, rtol=1e-5)
    noise = np.random.default_rng(1).normal(size=len(gpa))
    grows = gpa.assign(gpa=gpa["gpa"] + noise * 0.05 * (0.5 + gpa["occasion"] ** 1.5))
    fit = mm.lmer("gpa ~ occasion + (1 | student)", grows, variance=mm.VarConstPower("occasion"))
    assert fit.converged and fit.residual_parameters()["power"] > 1
    base = mm.lmer("gpa ~ occasion + (1 | student)", grows)
    assert fit.loglik > base.loglik + 10


@pytest.mark.parametrize("order", ["C", "F"])
def test_the_rank_check_leaves_the_fixed_effects_matrix_as_it_was(order):
    """geqrf overwrites its input: the check factors a copy, whatever X's layout."""
    from mixedmodels.frontend.checks import _drop_rank_deficient

    rng = np.random.default_rng(3)
    X = np.array(np.column_stack([np.ones(50), rng.normal(size=(50, 2))]), order=order)
    X = np.column_stack([X, X[:, 1] + X[:, 2]]) if order == "C" else np.asfortranarray(X)
    before = X.copy()
    kept, names, dropped = _drop_rank_deficient(X, [f"c{i}" for i in range(X.shape[1])])
    np.testing.assert_array_equal(X, before)
    assert dropped == (["c3"] if order == "C" else [])
    single = np.asfortranarray(rng.normal(size=(20, 1)))
    copy = single.copy()
    _drop_rank_deficient(single, ["x"])
    np.testing.assert_array_equal(single, copy)
