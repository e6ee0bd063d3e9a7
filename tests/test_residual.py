"""Residual variance functions, correlation structures and glmmTMB covariance structures
against R: the seed's section 20.6 tables (../shared/seed/reference.json) and the nlme /
glmmTMB fixtures made by tools/make_residual_fixtures.R.

Tolerances (issue 4): fixed effects within 1e-3 of an SE, SEs and variance parameters
within 0.5%, logLik within 1e-3.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from tests.conftest import fixture_frame, load_fixture

FIXTURE = "residual_structures.json"
RTOL = 5e-3


def _check_fixed(model, expected: list[dict], se: list[float] | None = None) -> None:
    table = model.fixed_effects()
    estimate = np.array([row["estimate"] for row in expected])
    se = np.array([row["se"] for row in expected] if se is None else se)
    np.testing.assert_array_less(np.abs(table["value"].to_numpy() - estimate), 1e-3 * se)
    np.testing.assert_allclose(table["se"].to_numpy(), se, rtol=RTOL)


# -- the seed's section 20.6 -----------------------------------------------------------


@pytest.fixture(scope="module")
def seed_fits(gpa) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        warnings.simplefilter("ignore", mm.ConvergenceWarning)
        return {
            "gpa_hetero_res": mm.lmer(
                "gpa ~ occasion + (1 | student)", gpa, variance=mm.VarIdent("occasion")
            ),
            "gpa_hetero_res2": mm.lmer(
                "gpa ~ occasion + (1 | student) + diag(0 + occas | student)", gpa, reml=False
            ),
            "gpa_autocorr": mm.lmer(
                "gpa ~ occasion + (1 | student)",
                gpa,
                correlation=mm.CorAR1(time="occasion", group="student"),
            ),
            "gpa_autocorr2": mm.lmer(
                "gpa ~ occasion + ar1(0 + occas | student) + (1 | student)", gpa, reml=False
            ),
        }


@pytest.mark.parametrize(
    "key", ["gpa_hetero_res", "gpa_hetero_res2", "gpa_autocorr", "gpa_autocorr2"]
)
def test_seed_fixed_effects_and_loglik(seed_fits, reference, key):
    ref = reference[key]
    model = seed_fits[key]
    _check_fixed(model, ref["fixed"])
    assert abs(model.loglik - ref["loglik"]) < 1e-3
    assert model.reml is (key in ("gpa_hetero_res", "gpa_autocorr"))


def test_seed_hetero_res_nlme_table(seed_fits, reference):
    ref = reference["gpa_hetero_res"]
    model = seed_fits["gpa_hetero_res"]
    table = model.residual_variances()
    assert table["level"].tolist() == ["0", "1", "2", "3", "4", "5"]
    np.testing.assert_allclose(table["relative_sd"], ref["relative_sd"], rtol=RTOL)
    np.testing.assert_allclose(table["variance"], ref["residual_variance_by_occasion"], rtol=RTOL)
    np.testing.assert_allclose(
        model.residual_parameters().to_numpy(), ref["relative_sd"][1:], rtol=RTOL
    )
    assert model.sigma == pytest.approx(ref["sigma"], rel=RTOL)
    student = model.varcorr().set_index("group").loc["student", "sdcor"]
    assert student == pytest.approx(ref["student_sd"], rel=RTOL)
    assert model.npar == 2 + 1 + 1 + 5


def test_seed_hetero_res_glmmtmb_table(seed_fits, reference):
    """glmmTMB's diag(0 + occas | student) plus σ² is the residual variance per occasion
    (how it splits between the two is not identified; their sum is)."""
    ref = reference["gpa_hetero_res2"]
    model = seed_fits["gpa_hetero_res2"]
    table = model.residual_variances()
    np.testing.assert_allclose(table["variance"], ref["residual_variance_by_occasion"], rtol=RTOL)
    assert table["level"].tolist()[0] == "year 1 semester 1"
    vc = model.varcorr()
    intercept = vc[(vc["var1"] == "(Intercept)") & vc["var2"].isna()]
    assert intercept["sdcor"].iloc[0] == pytest.approx(ref["student_sd"], rel=RTOL)
    assert set(vc["structure"].dropna()) == {"us", "diag"}


def test_seed_autocorr_parameters(seed_fits, reference):
    ref = reference["gpa_autocorr"]
    model = seed_fits["gpa_autocorr"]
    assert model.residual_parameters()["Phi"] == pytest.approx(ref["phi"], rel=RTOL)
    assert model.sigma == pytest.approx(ref["sigma"], rel=RTOL)
    student = model.varcorr().set_index("group").loc["student", "sdcor"]
    assert student == pytest.approx(ref["student_sd"], rel=RTOL)


def test_seed_autocorr2_ar1_term(seed_fits, reference):
    ref = reference["gpa_autocorr2"]
    model = seed_fits["gpa_autocorr2"]
    vc = model.varcorr()
    ar1 = vc[vc["structure"] == "ar1"]
    sds = ar1[ar1["var2"].isna()]["sdcor"].to_numpy()
    np.testing.assert_allclose(sds, ref["ar1_sd"], rtol=RTOL)
    lag1 = ar1[ar1["var2"].notna()]["sdcor"].iloc[0]
    assert lag1 == pytest.approx(ref["ar1_rho"], rel=RTOL)
    assert model.sigma == pytest.approx(ref["sigma"], rel=RTOL)
    intercept = vc[(vc["var1"] == "(Intercept)") & vc["var2"].isna()]["sdcor"].iloc[0]
    assert intercept < 1e-3  # glmmTMB: 1.7e-5, on the boundary


def test_rescov_first_block(seed_models, reference):
    expected = np.array(reference["gpa_mixed"]["rescov_first_block"])
    model = seed_models["gpa_mixed"]
    block = model.marginal_cov(groups="1")
    np.testing.assert_allclose(block.to_numpy(), expected, rtol=RTOL)
    full = model.marginal_cov()
    np.testing.assert_allclose(full.iloc[:6, :6].to_numpy(), expected, rtol=RTOL)


def test_marginal_cov_includes_the_residual_structure(seed_fits, reference):
    model = seed_fits["gpa_autocorr"]
    ref = reference["gpa_autocorr"]
    block = model.marginal_cov(groups=["1"]).to_numpy()
    lags = np.abs(np.subtract.outer(np.arange(6), np.arange(6)))
    expected = ref["student_sd"] ** 2 + ref["sigma"] ** 2 * ref["phi"] ** lags
    np.testing.assert_allclose(block, expected, rtol=RTOL)
    hetero = seed_fits["gpa_hetero_res"].marginal_cov(groups="2").to_numpy()
    ref = reference["gpa_hetero_res"]
    np.testing.assert_allclose(
        np.diag(hetero),
        ref["student_sd"] ** 2 + np.array(ref["residual_variance_by_occasion"]),
        rtol=RTOL,
    )


# -- nlme and glmmTMB fixtures --------------------------------------------------------


def _structure(spec: dict | None, reference: str | None = None):
    if spec is None:
        return None
    kind = spec["type"]
    if kind == "VarIdent":
        return mm.VarIdent(spec["by"], reference=reference)
    if kind in ("VarPower", "VarExp", "VarFixed"):
        return getattr(mm, kind)(spec["covariate"])
    if kind == "CorAR1":
        return mm.CorAR1(time=spec.get("time"), group=spec.get("group"))
    if kind == "CorCAR1":
        return mm.CorCAR1(spec["time"], group=spec.get("group"))
    raise AssertionError(kind)


@cache
def _fit(name: str):
    fixture = load_fixture(FIXTURE)
    record = fixture["models"][name]
    python = record["python"]
    data = fixture_frame(fixture, python["data"])
    reference = (record.get("variance_levels") or [None])[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        model = mm.lmer(
            python["formula"],
            data,
            reml=python.get("reml", True),
            variance=_structure(python.get("variance"), reference),
            correlation=_structure(python.get("correlation")),
        )
    return model, record


NLME = [
    "ovary_ar1",
    "ovary_ar1_ml",
    "ovary_ar1_gaps",
    "orthodont_varident",
    "orthodont_slopes_ar1",
    "bodyweight_varpower",
    "bodyweight_varexp_car1",
    "crossed_varident_glmmtmb",
]
GLMMTMB = ["panel_cs_glmmtmb", "panel_toep_glmmtmb", "panel_ar1_glmmtmb"]


@pytest.mark.parametrize("name", NLME + GLMMTMB)
def test_fixture_fixed_effects_and_loglik(name):
    model, record = _fit(name)
    # glmmTMB's SEs use the joint observed information of (β, θ), 1-2% off (XᵀV⁻¹X)⁻¹
    # for cs/toep here; the fixture also has the latter, computed in R from glmmTMB's V
    _check_fixed(model, record["fixed"], se=record.get("gls_se"))
    assert abs(model.loglik - record["loglik"]) < 1e-3
    assert model.reml is record["reml"]


@pytest.mark.parametrize("name", NLME)
def test_fixture_variance_parameters(name):
    model, record = _fit(name)
    assert model.sigma == pytest.approx(record["sigma"], rel=RTOL)
    vc = model.varcorr()
    sds = vc[vc["var2"].isna() & (vc["group"] != "Residual")]["sdcor"].to_numpy()
    np.testing.assert_allclose(sds, record["re_sd"], rtol=RTOL)
    params = model.residual_parameters()
    expected = list((record.get("variance_coef") or {}).values()) + list(
        (record.get("correlation_coef") or {}).values()
    )
    np.testing.assert_allclose(params.to_numpy(), expected, rtol=RTOL)
    if "variance_levels" in record and record["python"]["variance"]["type"] == "VarIdent":
        assert list(params.index) == record["variance_levels"][1:]


@pytest.mark.parametrize("name", GLMMTMB)
def test_fixture_structured_covariance(name):
    """The subject block of Var(y), σ²(TTᵀ + I), from glmmTMB's SDs, correlations and σ."""
    model, record = _fit(name)
    sd = np.array(record["re_sd"])
    corr = np.array(record["re_cor"])
    k = len(sd)
    if "toep" in name or "ar1" in name:
        lags = np.abs(np.subtract.outer(np.arange(k), np.arange(k)))
        C = corr[lags]
    else:
        C = np.full((k, k), corr[1])
        np.fill_diagonal(C, 1.0)
    expected = np.outer(sd, sd) * C + record["sigma"] ** 2 * np.eye(k)
    ours = model.marginal_cov(groups="s001").to_numpy()
    np.testing.assert_allclose(ours, expected, rtol=RTOL, atol=RTOL * expected.max())
    structure = name.split("_")[1]
    assert set(model.varcorr()["structure"].dropna()) == {structure}


def test_crossed_varident_matches_dense_likelihood():
    """The whitened deviance equals −2 log-likelihood of y ~ N(Xβ̂, V) with V built densely."""
    model, _ = _fit("crossed_varident_glmmtmb")
    V = model.marginal_cov().to_numpy() if hasattr(model.marginal_cov(), "to_numpy") else None
    assert V is not None
    r = model.design.y - model.design.X @ model.fixef.to_numpy()
    sign, logdet = np.linalg.slogdet(V)
    dense = len(r) * np.log(2 * np.pi) + logdet + r @ np.linalg.solve(V, r)
    assert sign > 0
    assert dense == pytest.approx(-2 * model.loglik, abs=1e-6)


@pytest.mark.parametrize(
    "correlation",
    [mm.CorCompSymm(group="Subject"), mm.CorSymm(group="Subject"), mm.CorCAR1("age", "Subject")],
)
def test_correlation_whitening_matches_dense_likelihood(correlation):
    """At the estimates, the ML deviance equals the dense Gaussian likelihood (no R needed:
    CorCompSymm/CorSymm with a random intercept on the same group are not identified in nlme)."""
    fixture = load_fixture(FIXTURE)
    data = fixture_frame(fixture, "orthodont")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mm.lmer(
            "distance ~ age + Sex + (1 | Subject)",
            data,
            reml=False,
            variance=mm.VarIdent("Sex"),
            correlation=correlation,
        )
    V = model.marginal_cov().to_numpy()
    r = model.design.y - model.design.X @ model.fixef.to_numpy()
    _, logdet = np.linalg.slogdet(V)
    dense = len(r) * np.log(2 * np.pi) + logdet + r @ np.linalg.solve(V, r)
    assert dense == pytest.approx(-2 * model.loglik, abs=1e-6)


# -- bad input -------------------------------------------------------------------------


def test_varident_with_one_level_is_refused(gpa):
    data = gpa.assign(one="a")
    with pytest.raises(mm.DataError, match=r"VarIdent\('one'\): column 'one' has a single level"):
        mm.lmer("gpa ~ occasion + (1 | student)", data, variance=mm.VarIdent("one"))


def test_car1_needs_integer_times_for_ar1(gpa):
    data = gpa.assign(t=gpa["occasion"] + 0.5 * (gpa["occasion"] == 3))
    with pytest.raises(mm.DataError, match="times must be integers .* Use CorCAR1"):
        mm.lmer("gpa ~ occasion + (1 | student)", data, correlation=mm.CorAR1(time="t"))


def test_duplicated_times_within_a_group_are_refused(gpa):
    data = gpa.assign(t=np.minimum(gpa["occasion"], 4))
    with pytest.raises(mm.DataError, match="time 4 appears more than once in one group"):
        mm.lmer("gpa ~ occasion + (1 | student)", data, correlation=mm.CorAR1(time="t"))
    with pytest.raises(mm.DataError, match="appears more than once in one group"):
        mm.lmer("gpa ~ occasion + (1 | student)", data, correlation=mm.CorCAR1("t"))


def test_correlation_group_crossing_a_term_is_refused():
    fixture = load_fixture(FIXTURE)
    data = fixture_frame(fixture, "crossed")
    with pytest.raises(mm.DataError, match="is not nested in the grouping factor 'b'"):
        mm.lmer("y ~ x + (1 | a) + (1 | b)", data, correlation=mm.CorAR1(group="a"))


def test_unknown_structure_column_and_wrong_type(gpa):
    with pytest.raises(mm.DataError, match=r"uses column\(s\) \['nope'\]"):
        mm.lmer("gpa ~ occasion + (1 | student)", gpa, variance=mm.VarIdent("nope"))
    with pytest.raises(TypeError, match="variance= expects mm.VarIdent"):
        mm.lmer("gpa ~ occasion + (1 | student)", gpa, variance="occasion")
    with pytest.raises(mm.DataError, match=r"VarPower\('occasion'\): the covariate is 0"):
        mm.lmer("gpa ~ occasion + (1 | student)", gpa, variance=mm.VarPower("occasion"))


def test_fitted_values_are_on_the_data_scale(seed_fits, gpa):
    model = seed_fits["gpa_autocorr"]
    fitted = model.fitted()
    by_student = pd.Series(model.residuals()).groupby(gpa["student"].to_numpy()).mean()
    assert np.allclose(fitted + model.residuals(), gpa["gpa"].to_numpy())
    assert abs(by_student.mean()) < 0.05
    assert model.predict(gpa.head(3)).shape == (3,)
