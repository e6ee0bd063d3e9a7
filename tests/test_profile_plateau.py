"""Profile intervals off a trace that turns non-monotone far from the estimate (issue 10, 7).

The correlation of a random slope (data: tools/profile_plateau_data.py) has a profile that
crosses ζ = ±1.96 on its branch through the estimate and, beyond the lower crossing, meets a
plateau where the slope SD reaches 0.  The reference is a dense lme4 profile
(tests/fixtures/profile_plateau.json, tools/make_profile_plateau_fixtures.R); lme4's default
grid, interpolated linearly over the turn, is 1.2e-3 off at the lower end.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

import mixedmodels as mm
from mixedmodels.inference.profile import (
    ProfileWarning,
    _Trace,
    interval_from_trace,
    monotone_branch,
)
from mixedmodels.inference.profilers import make_profiler
from tests.conftest import fixture_frame, load_fixture


@pytest.fixture(scope="module")
def plateau():
    fixture = load_fixture("profile_plateau.json")
    model = mm.lmer(fixture["formula"], fixture_frame(fixture, "plateau"))
    return fixture, model


def test_plateau_profile_interval_matches_dense_lme4(plateau):
    fixture, model = plateau
    name = fixture["parameter"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProfileWarning)
        ci = model.confint(parm=name)
    ours = ci.loc[name, ["lower", "upper"]].to_numpy(dtype=float)
    np.testing.assert_allclose(ours, fixture["reference"], atol=1e-4)

    # self-consistency: at each end the ML deviance is the minimum + χ²₁(0.95), to 1e-4
    profiler = make_profiler(model)
    index = profiler.names.index(name)
    trace = profiler.trace(index)
    target = stats.chi2.ppf(0.95, 1)
    for end in ours:
        nearest = trace.rows[np.argmin(np.abs(trace.rows[:, 1 + index] - end))]
        zeta = profiler.zeta_at(index, end, nearest)[0]
        assert abs(zeta**2 - target) < 1e-4
    # the trace as a whole is not monotone: the branch read is a strict part of it
    branch = monotone_branch(trace.rows[:, 1 + index], trace.rows[:, 0])
    assert 4 <= branch.size < len(trace.rows)


def _trace(values, zeta):
    rows = np.column_stack([zeta, values])
    return _Trace("p", rows)


def test_monotone_branch_stops_where_the_trace_turns():
    values = np.linspace(-1.0, 1.0, 9)
    zeta = np.array([-2.5, -2.5, -2.9, -2.0, 0.0, 1.0, 2.1, 2.6, 2.4])
    assert monotone_branch(values, zeta).tolist() == [2, 3, 4, 5, 6, 7]
    ci = interval_from_trace(_trace(values, zeta), 1, np.array([-1.96, 1.96]), (-1.0, 1.0))
    assert -0.26 < ci[0] < -0.2 and 0.4 < ci[1] < 0.5


def test_a_trace_that_turns_before_the_crossing_gives_nan_with_a_warning():
    values = np.linspace(-1.0, 1.0, 9)
    zeta = np.array([-2.5, -2.5, -2.9, -2.0, 0.0, 1.0, 1.5, 1.2, 1.1])
    with pytest.warns(ProfileWarning, match="upper side before it turned back"):
        ci = interval_from_trace(_trace(values, zeta), 1, np.array([-1.96, 1.96]), (-1.0, 1.0))
    assert np.isfinite(ci[0]) and np.isnan(ci[1])


@pytest.mark.slow
def test_toep_fit_on_the_edge_profiles_to_its_own_deviance():
    """A toep term fitted on the edge of the positive-definite set (ρ₂ = 2ρ₁² − 1): its
    refits work on partial autocorrelations, and every interval end not on a bound is where
    the ML deviance is the minimum + χ²₁(0.95), to 1e-4 (the profile jumps where σ reaches
    its floor, so the spline alone misses by up to 0.5)."""
    from tests.model_zoo import _gpa

    gpa = _gpa()
    gpa3 = gpa[gpa["occasion"] <= 2].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer("gpa ~ occasion + sex + toep(0 + occas | student)", gpa3, reml=False)
        ci = m.confint(parm="theta_")
    params = m.objective.parameters()
    rho = params.estimate[3:5]
    assert rho[1] == pytest.approx(2 * rho[0] ** 2 - 1, abs=1e-6)  # on the edge
    base = m.objective.deviance(m.objective._ml_estimate(), reml=False)
    checked = 0
    for name, row in ci.iterrows():
        i = params.index(name)
        assert row["lower"] <= params.estimate[i] <= row["upper"]
        for end in (row["lower"], row["upper"]):
            assert np.isfinite(end), name
            if params.lower[i] < end < params.upper[i]:
                deviance, _ = m.objective.refit({name: end})
                assert deviance - base == pytest.approx(stats.chi2.ppf(0.95, 1), abs=1e-4)
                checked += 1
    assert checked >= 8
