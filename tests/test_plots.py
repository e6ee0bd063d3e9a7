"""Every plot renders to PNG (Agg); the heatmap's numbers are checked against lme4's formula."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import mixedmodels as mm
from mixedmodels.toolbox.marginal import marginal_covariance


@pytest.fixture(scope="module")
def slope_model(gpa) -> mm.LinearMixedModel:
    return mm.lmer("gpa ~ occasion + (1 + occasion | student)", gpa)


def _png(fig: Figure) -> bytes:
    assert isinstance(fig, Figure)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    data = buffer.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5_000
    return data


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.plot.caterpillar(nsim=200, seed=1),
        lambda m: m.plot.caterpillar(simulate=False),
        lambda m: m.plot.shrinkage(),
        lambda m: m.plot.fitted(groups=["1", "2"]),
        lambda m: m.plot.fitted(lm=False),
        lambda m: m.plot.marginal_cov(groups=["1", "2", "3"]),
        lambda m: m.plot.residuals(),
    ],
    ids=["caterpillar", "caterpillar-modes", "shrinkage", "fitted", "fitted-nolm", "cov", "resid"],
)
def test_plots_render(slope_model, call):
    _png(call(slope_model))


def test_plots_on_crossed_and_nested(seed_models):
    _png(seed_models["pupils_crossed"].plot.caterpillar(nsim=100, seed=1))
    nested = seed_models["nurses_hierach"]
    _png(nested.plot.caterpillar(simulate=False))
    _png(nested.plot.residuals())
    _png(nested.plot.marginal_cov(groups=["1"], group="hospital"))
    _png(seed_models["gpa_mixed"].plot.shrinkage())


def test_marginal_covariance_matches_dense_formula(slope_model):
    """σ²(ZΛΛᵀZᵀ + I) for one student: σ² I + X_i Σ X_iᵀ with Σ from VarCorr."""
    cov, rows = marginal_covariance(slope_model, ["3"])
    vc = slope_model.varcorr()
    sigma_b = np.array(
        [[vc["vcov"][0], vc["vcov"][2]], [vc["vcov"][2], vc["vcov"][1]]], dtype=float
    )
    x = np.column_stack([np.ones(rows.size), slope_model.design.frame["occasion"].to_numpy()[rows]])
    expected = x @ sigma_b @ x.T + slope_model.sigma**2 * np.eye(rows.size)
    np.testing.assert_allclose(cov, expected, rtol=1e-12)
    assert rows.size == 6
    provider = getattr(slope_model, "marginal_cov", None)
    if callable(provider):  # the residual-structure engineer's Var(y) agrees
        theirs = provider(groups=["3"], group_var="student")
        np.testing.assert_allclose(np.asarray(theirs, dtype=float), cov, rtol=1e-10)


def test_plot_errors(slope_model):
    with pytest.raises(mm.DataError, match="groups: \\['nobody'\\] are not levels of 'student'"):
        slope_model.plot.fitted(groups=["nobody"])
    with pytest.raises(mm.DataError, match="group: 'class' is not a grouping factor"):
        slope_model.plot.shrinkage(group="class")
    with pytest.raises(ValueError, match="level: expecting a number between 0 and 1"):
        slope_model.plot.caterpillar(level=95)


def test_profile_plot(slope_model, monkeypatch):
    if callable(getattr(slope_model, "profile", None)):
        pytest.skip("profiles exist: covered by the rendering of the real profile below")
    with pytest.raises(mm.MixedModelsError, match="profile plots need likelihood profiles"):
        slope_model.plot.profile()
    # with a provider of the agreed shape, the plot draws it
    grid = np.linspace(-2.5, 2.5, 11)
    table = pd.concat(
        [
            pd.DataFrame({"parameter": name, "value": centre + 0.1 * grid, "zeta": grid})
            for name, centre in (("sigma", 0.2), ("(Intercept)", 2.6))
        ]
    )
    monkeypatch.setattr(type(slope_model), "profile", lambda self: table, raising=False)
    _png(slope_model.plot.profile())


def test_profile_plot_real(slope_model):
    if not callable(getattr(type(slope_model), "profile", None)):
        pytest.skip("m.profile() is not available yet")
    _png(slope_model.plot.profile())
