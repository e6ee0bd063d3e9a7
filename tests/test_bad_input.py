"""Bad input gets a clear error naming the problem and the fix; never a silent wrong answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm


@pytest.fixture
def small() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(12), 6)
    x = rng.normal(size=g.size)
    y = 1 + 0.5 * x + rng.normal(size=12)[g] + rng.normal(scale=0.5, size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str), "grp": g})


def test_unknown_column_is_named_with_suggestions(small):
    with pytest.raises(mm.DataError, match=r"Unknown column 'xx' .*did you mean 'x'"):
        mm.lmer("y ~ xx + (1 | g)", small)
    with pytest.raises(mm.DataError, match=r"Unknown column 'group'.*did you mean 'grp'"):
        mm.lmer("y ~ x + (1 | group)", small)


def test_syntax_error_has_position(small):
    with pytest.raises(mm.FormulaError, match=r"position 8"):
        mm.lmer("y ~ x + (1 | g", small)


def test_missing_rows_are_dropped_and_counted(small):
    data = small.copy()
    data.loc[[0, 5, 7], "x"] = np.nan
    with pytest.warns(mm.MissingDataWarning, match=r"Dropped 3 row\(s\) with missing values in x"):
        m = mm.lmer("y ~ x + (1 | g)", data)
    assert m.nobs == len(data) - 3
    assert m.design.n_dropped_na == 3
    assert "3 observations deleted due to missingness" in m.summary()
    with pytest.raises(mm.DataError, match=r"3 row\(s\) have missing values .*na_action='fail'"):
        mm.lmer("y ~ x + (1 | g)", data, na_action="fail")


def test_na_action_is_validated(small):
    with pytest.raises(ValueError, match=r"na_action: expecting one of"):
        mm.lmer("y ~ x + (1 | g)", small, na_action="drop")  # type: ignore[arg-type]


def test_non_finite_values_are_refused(small):
    data = small.copy()
    data.loc[4, "x"] = np.inf
    with pytest.raises(mm.DataError, match=r"Column 'x' has 1 infinite value"):
        mm.lmer("y ~ x + (1 | g)", data)


def test_grouping_factor_with_one_level(small):
    data = small.assign(one="a")
    with pytest.raises(mm.DataError, match=r"'one' has only 1 level"):
        mm.lmer("y ~ x + (1 | one)", data)


def test_grouping_factor_with_as_many_levels_as_rows(small):
    data = small.assign(row=np.arange(len(small)))
    with pytest.raises(mm.DataError, match=r"'row' has 72 levels for 72 observations"):
        mm.lmer("y ~ x + (1 | row)", data)


def test_more_random_effects_than_observations(small):
    data = small.assign(
        z=np.random.default_rng(1).normal(size=len(small)),
        w=np.random.default_rng(2).normal(size=len(small)),
    )
    with pytest.raises(mm.DataError, match=r"more random effects than observations"):
        mm.lmer("y ~ x + (1 + x + z + w + I(x*z) + I(x*w) | g)", data)


def test_rank_deficient_fixed_effects_are_dropped_and_named(small):
    data = small.assign(x2=2 * small["x"])
    with pytest.warns(mm.RankDeficiencyWarning, match=r"dropping 1 column \(x2\)"):
        m = mm.lmer("y ~ x + x2 + (1 | g)", data)
    assert list(m.fixef.index) == ["Intercept", "x"]
    reference = mm.lmer("y ~ x + (1 | g)", small)
    assert m.loglik == pytest.approx(reference.loglik, abs=1e-8)
    np.testing.assert_allclose(m.predict(newdata=data), reference.predict(newdata=small))


def test_empty_data():
    with pytest.raises(mm.DataError, match=r"no rows"):
        mm.lmer("y ~ x + (1 | g)", pd.DataFrame({"y": [], "x": [], "g": []}))


def test_no_random_effects_points_to_lm(small):
    with pytest.raises(mm.DataError, match=r"Use mixedmodels.lm\(\)"):
        mm.lmer("y ~ x", small)
    with pytest.raises(mm.DataError, match=r"Use mixedmodels.lmer\(\)"):
        mm.lm("y ~ x + (1 | g)", small)


def test_non_numeric_response(small):
    with pytest.raises(mm.DataError, match=r"not numeric"):
        mm.lmer("g ~ x + (1 | grp)", small)


def test_wrong_data_type():
    with pytest.raises(mm.DataError, match=r"pandas DataFrame, a polars DataFrame or a dict"):
        mm.lmer("y ~ x + (1 | g)", [1, 2, 3])


def test_unknown_control_option(small):
    with pytest.raises(ValueError, match=r"Unknown control option"):
        mm.lmer("y ~ x + (1 | g)", small, control={"tolerance": 1})


def test_singular_fit_is_flagged():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(6), 5)
    noise = rng.normal(size=30)
    # identical group means: no between-group variance at all (as lme4's Dyestuff2)
    y = noise - pd.Series(noise).groupby(g).transform("mean").to_numpy()
    data = pd.DataFrame({"y": y, "g": g})
    with pytest.warns(mm.SingularFitWarning, match=r"boundary \(singular\) fit"):
        m = mm.lmer("y ~ 1 + (1 | g)", data)
    assert m.is_singular
    assert "boundary (singular) fit" in m.summary()


def test_inputs_as_dict_and_polars(small):
    reference = mm.lmer("y ~ x + (1 | g)", small)
    as_dict = mm.lmer("y ~ x + (1 | g)", {c: small[c].to_numpy() for c in small.columns})
    assert as_dict.loglik == pytest.approx(reference.loglik, abs=1e-10)
    polars = pytest.importorskip("polars")
    frame = polars.DataFrame({c: small[c].to_numpy() for c in small.columns})
    assert mm.lmer("y ~ x + (1 | g)", frame).loglik == pytest.approx(reference.loglik, abs=1e-10)


def test_too_many_crossed_levels_is_refused_clearly(monkeypatch):
    import mixedmodels.lmm.crossprods as lmm
    import mixedmodels.lmm.sparse_tail as sparse_tail

    monkeypatch.setattr(lmm, "MAX_DENSE_EFFECTS", 10)
    monkeypatch.setattr(sparse_tail, "MAX_FACTOR_BYTES", 0)  # nor would a sparse factor fit
    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {"y": rng.normal(size=400), "a": rng.integers(0, 40, 400), "b": rng.integers(0, 20, 400)}
    )
    with pytest.raises(mm.DataError, match=r"after the largest one \(a\) have 20 random effects"):
        mm.lmer("y ~ 1 + (1 | a) + (1 | b)", data)


def test_categorical_time_of_car1_names_the_column(small):
    """The message template used to print a literal '{name}' (no f-prefix)."""
    small = small.assign(t=pd.Categorical(np.tile(np.arange(6), 12)))
    with pytest.raises(mm.DataError, match=r"column 't' must be numeric.*data\['t'\]\.astype"):
        mm.lmer("y ~ x + (1 | g)", small, correlation=mm.CorAR1(time="t", group="g"))


@pytest.mark.parametrize("argument", ["weights", "offset"])
def test_glmer_weights_and_offset_columns_are_checked_as_lmer(small, argument):
    counts = small.assign(n=np.arange(len(small)) % 4)
    expected = r"Unknown column 'wts' .*did you mean 'wt'"
    counts["wt"] = 1.0
    with pytest.raises(mm.DataError, match=expected):
        mm.lmer("y ~ x + (1 | g)", counts, **{argument: "wts"})
    with pytest.raises(mm.DataError, match=expected):
        mm.glmer("n ~ x + (1 | g)", counts, family="poisson", **{argument: "wts"})
    with pytest.raises(mm.DataError, match=f"{argument} has 3 values but the data have 72 rows"):
        mm.glmer("n ~ x + (1 | g)", counts, family="poisson", **{argument: [1.0, 2.0, 3.0]})
