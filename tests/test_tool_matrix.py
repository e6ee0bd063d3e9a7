"""Every tool on every model kind: the right answer or a clear refusal (issue 10).

The zoo (tests/model_zoo.py) fits one small model of each kind once per session; each cell
of the matrix calls one tool on one kind. A cell passes when the tool's result passes the
checks of that tool (values finite, estimates inside their own intervals, predictions that
agree with the fitted values, an LRT refit that equals a direct ML fit, ...) or when the
kind is listed in ``REFUSED`` for that tool and the call raises a ``MixedModelsError`` whose
message matches the reason given there (it names the tool and says what to use instead).

``KNOWN_BROKEN`` lists the cells that give a wrong answer or an unclear error today; they
run as strict xfails, so a fix shows up as an XPASS failure: then delete the entry.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

from .model_zoo import ZOO, FittedKind, fit_zoo

matplotlib.use("Agg")
pytestmark = pytest.mark.slow  # ~660 cells, ~3 min on one core

GLMM_KINDS = tuple(k for k in ZOO if k.startswith("glmer"))
RESIDUAL_KINDS = ("VarIdent", "VarPower", "VarExp", "VarFixed", "CorAR1", "CorCAR1",
                  "CorCompSymm", "CorSymm")  # fmt: skip
RANDOM_EFFECT_TOOLS = (
    "random_effects", "fe_satterthwaite", "fe_kenward_roger", "resim", "marginal_cov",
    "plot_caterpillar", "plot_shrinkage", "plot_marginal_cov", "predict_re_form",
)  # fmt: skip


@pytest.fixture(scope="module")
def zoo() -> dict[str, FittedKind]:
    return fit_zoo()


# -- helpers --------------------------------------------------------------------------------
def _finite(values: Any) -> bool:
    return bool(np.all(np.isfinite(np.asarray(values, dtype=float))))


def _estimates(model: Any) -> dict[str, float]:
    """The fit's value of each confint row that can be read off its public tables."""
    out: dict[str, float] = {}
    for name, value in model.fixef.items():
        out[str(name)] = float(value)
        out["Intercept" if name == "(Intercept)" else str(name)] = float(value)
    if hasattr(model, "varcorr"):
        vc = model.varcorr()
        for row in vc.itertuples():
            if row.group == "Residual":
                out["sigma"] = float(row.sdcor)
            elif row.var2 is None or (isinstance(row.var2, float) and np.isnan(row.var2)):
                out[f"sd_{row.var1}|{row.group}"] = float(row.sdcor)
            else:
                out[f"cor_{row.var2}.{row.var1}|{row.group}"] = float(row.sdcor)
                out[f"cor_{row.var1}.{row.var2}|{row.group}"] = float(row.sdcor)
    if "sigma" not in out:
        out["sigma"] = float(model.sigma)
    return out


def _check_intervals(model: Any, table: pd.DataFrame, *, fixed_only: bool = False) -> None:
    assert list(table.columns[:2]) == ["lower", "upper"]
    estimates = _estimates(model)
    fixed = {"Intercept" if n == "(Intercept)" else n for n in model.fixef.index}
    checked = 0
    for name, row in table.iterrows():
        if fixed_only and name not in fixed:
            continue
        assert not (np.isnan(row["lower"]) or np.isnan(row["upper"])), f"{name}: NaN interval"
        assert row["lower"] < row["upper"], f"{name}: lower {row['lower']} ≥ upper {row['upper']}"
        if name in estimates:
            value = estimates[name]
            slack = 1e-6 * max(1.0, abs(value))
            assert row["lower"] - slack <= value <= row["upper"] + slack, (
                f"{name}: estimate {value} outside its interval ({row['lower']}, {row['upper']})"
            )
            checked += 1
    assert checked >= (len(fixed) if fixed_only else 1)


def _figure_texts(fig: Any) -> str:
    texts = [fig.get_suptitle() if hasattr(fig, "get_suptitle") else ""]
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        texts += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
    return " ".join(texts)


def _check_figure(fig: Any) -> None:
    import matplotlib.pyplot as plt

    try:
        assert type(fig).__name__ == "Figure"
        assert fig.axes
        assert "__response__" not in _figure_texts(fig)
    finally:
        plt.close(fig)


def _first_rows(fk: FittedKind, n: int = 12) -> tuple[pd.DataFrame, np.ndarray]:
    """The first n rows of the data the model was fitted to, and their positions."""
    data = fk.entry.data
    return data.iloc[:n], np.arange(n)


def _fitted_link(model: Any) -> np.ndarray:
    if hasattr(model, "family"):
        return model.predict(type="link")
    return model.predict()


# -- the tools ------------------------------------------------------------------------------
def tool_summary_tables(fk: FittedKind, tmp_path: Any) -> None:
    m = fk.model
    text = m.summary()
    assert "__response__" not in text and "__weights__" not in text
    html = m._repr_html_() if hasattr(m, "_repr_html_") else ""
    assert "__response__" not in html
    assert _finite(m.fixef) and _finite(m.vcov.to_numpy())
    assert np.isfinite(m.loglik) and np.isfinite(m.aic) and np.isfinite(m.bic)
    if fk.entry.has_random:
        vc = m.varcorr()
        assert _finite(vc["vcov"]) and _finite(vc["sdcor"])
        comp = m.variance_components()
        assert _finite(comp["variance"])
        assert comp["var_prop"].sum() == pytest.approx(1.0)


def tool_fixed_effects(fk: FittedKind, tmp_path: Any) -> None:
    table = fk.model.fixed_effects()
    assert _finite(table["value"]) and _finite(table["se"]) and bool((table["se"] > 0).all())
    assert bool(table["p_value"].between(0, 1).all())
    assert bool((table["lower_2.5"] < table["value"]).all())


def _ddf_table(fk: FittedKind, ddf: str) -> None:
    table = fk.model.fixed_effects(ddf=ddf)
    assert _finite(table["df"]) and bool((table["df"] > 0).all())
    assert _finite(table["se"]) and bool((table["se"] > 0).all())
    assert bool(table["p_value"].between(0, 1).all())


def tool_fe_satterthwaite(fk: FittedKind, tmp_path: Any) -> None:
    _ddf_table(fk, "satterthwaite")


def tool_fe_kenward_roger(fk: FittedKind, tmp_path: Any) -> None:
    _ddf_table(fk, "kenward-roger")


def tool_random_effects(fk: FittedKind, tmp_path: Any) -> None:
    m = fk.model
    table = m.random_effects()
    assert _finite(table["value"]) and _finite(table["se"])
    coef = m.coef()
    assert len(coef) == len(table)


def tool_confint_profile(fk: FittedKind, tmp_path: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ProfileWarning)
        table = fk.model.confint(parm="theta_")  # the fixed effects' rows: Wald and boot cells
    _check_intervals(fk.model, table)


def tool_confint_wald(fk: FittedKind, tmp_path: Any) -> None:
    _check_intervals(fk.model, fk.model.confint(method="wald"), fixed_only=True)


def tool_confint_boot(fk: FittedKind, tmp_path: Any) -> None:
    table = fk.model.confint(method="boot", nsim=12, seed=1, progress=False)
    _check_intervals(fk.model, table, fixed_only=True)


def tool_bootstrap(fk: FittedKind, tmp_path: Any) -> None:
    boot = fk.model.bootstrap(8, seed=2, progress=False)
    assert boot.n_failed == 0
    assert boot.replicates.shape[0] == 8
    assert _finite(boot.replicates.to_numpy())


def tool_anova_lrt(fk: FittedKind, tmp_path: Any) -> None:
    """The LRT refits by ML (REML fits) with the model's own structure: its logLik and
    parameter counts must be those of the same models fitted by ML directly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = mm.anova(fk.reduced, fk.model)
        options = {"reml": False} if getattr(fk.model, "reml", False) else {}
        direct = [
            fk.entry.fit(f, fk.entry.data, **options) for f in (fk.entry.reduced, fk.entry.formula)
        ]
    assert list(table["npar"]) == [d.npar for d in direct]
    assert table["Df"].iloc[1] == direct[1].npar - direct[0].npar >= 1
    np.testing.assert_allclose(table["logLik"], [d.loglik for d in direct], rtol=1e-7)
    assert 0.0 <= table["p"].iloc[1] <= 1.0


def _check_anova_table(table: pd.DataFrame) -> None:
    assert len(table) >= 1
    numeric = table.select_dtypes("number")
    assert _finite(numeric.to_numpy()), f"non-finite entries in\n{table}"
    for column in ("den_df", "df", "Df", "num_df"):
        if column in table:
            assert bool((table[column] > 0).all()), f"{column} not positive in\n{table}"


def _check_asymptotic(fk: FittedKind, table: pd.DataFrame) -> None:
    """glmer tests are asymptotic (Wald z / χ²): no denominator degrees of freedom."""
    if fk.entry.kind in GLMM_KINDS:
        assert not {"den_df", "df"} & set(table.columns), f"ddf test on a glmer fit:\n{table}"


def _anova_cell(fk: FittedKind, type: int) -> None:
    table = fk.model.anova(type=type)
    _check_anova_table(table)
    _check_asymptotic(fk, table)


def tool_anova_type1(fk: FittedKind, tmp_path: Any) -> None:
    _anova_cell(fk, 1)


def tool_anova_type2(fk: FittedKind, tmp_path: Any) -> None:
    _anova_cell(fk, 2)


def tool_anova_type3(fk: FittedKind, tmp_path: Any) -> None:
    _anova_cell(fk, 3)


def tool_contrast(fk: FittedKind, tmp_path: Any) -> None:
    m = fk.model
    name = list(m.fixef.index)[1]
    table = m.contrast({name: 1.0})
    _check_anova_table(table)
    _check_asymptotic(fk, table)
    assert table["estimate"].iloc[0] == pytest.approx(m.fixef[name])


def tool_predict_newdata(fk: FittedKind, tmp_path: Any) -> None:
    m = fk.model
    rows, positions = _first_rows(fk)
    if hasattr(m, "family"):
        new = np.asarray(m.predict(newdata=rows, type="response"), dtype=float)
        np.testing.assert_allclose(new, np.asarray(m.fitted())[positions], rtol=1e-10)
    else:
        new = np.asarray(m.predict(newdata=rows), dtype=float)
        np.testing.assert_allclose(new, np.asarray(m.fitted())[positions], rtol=1e-10)


def tool_predict_re_form(fk: FittedKind, tmp_path: Any) -> None:
    m = fk.model
    rows, positions = _first_rows(fk)
    population = np.asarray(m.predict(re_form="~0"), dtype=float)
    X = m.design.X
    np.testing.assert_allclose(population, X @ m.fixef.to_numpy(), rtol=1e-10, atol=1e-12)
    new = np.asarray(m.predict(newdata=rows, re_form="~0"), dtype=float)
    np.testing.assert_allclose(new, population[positions], rtol=1e-10, atol=1e-12)
    assert not np.allclose(population, _fitted_link(m))


def tool_predict_interval(fk: FittedKind, tmp_path: Any) -> None:
    m = fk.model
    table = m.predict_interval(nsim=200, seed=1)
    assert list(table.columns[:3]) == ["fit", "lower", "upper"]
    assert len(table) == m.nobs
    assert _finite(table.to_numpy())
    assert bool((table["lower"] <= table["fit"]).all() and (table["fit"] <= table["upper"]).all())
    family = fk.entry.family
    if family == "binomial":
        assert bool(((table["lower"] >= 0) & (table["upper"] <= 1)).all())
    elif family != "gaussian":
        assert bool((table["lower"] >= 0).all())


def tool_resim(fk: FittedKind, tmp_path: Any) -> None:
    table = fk.model.resim(nsim=100, seed=1)
    assert len(table) == len(fk.model.random_effects())
    assert _finite(table[["mean", "median", "sd"]].to_numpy())


def tool_simulate(fk: FittedKind, tmp_path: Any) -> None:
    m = fk.model
    sims = np.asarray(m.simulate(nsim=4, seed=1))
    assert sims.shape == (m.nobs, 4), "simulate returns n × nsim, as lme4"
    assert _finite(sims)
    family = fk.entry.family
    if family == "binomial":
        assert set(np.unique(sims)) <= {0.0, 1.0}
    elif family in ("poisson", "negative_binomial"):
        assert bool((sims >= 0).all()) and np.allclose(sims, np.round(sims))
    elif family in ("Gamma", "inverse_gaussian"):
        assert bool((sims > 0).all())


def tool_marginal_cov(fk: FittedKind, tmp_path: Any) -> None:
    m = fk.model
    term = m.crossprods.terms[0]
    V = m.marginal_cov(groups=str(term.levels[0]))
    V = V.to_numpy() if hasattr(V, "to_numpy") else V.toarray()
    assert V.shape[0] == int(np.sum(term.codes == 0))
    np.testing.assert_allclose(V, V.T, atol=1e-12)
    assert np.linalg.eigvalsh(V).min() > -1e-10


def tool_plot_caterpillar(fk: FittedKind, tmp_path: Any) -> None:
    _check_figure(fk.model.plot.caterpillar(nsim=50, seed=1))


def tool_plot_shrinkage(fk: FittedKind, tmp_path: Any) -> None:
    _check_figure(fk.model.plot.shrinkage())


def tool_plot_fitted(fk: FittedKind, tmp_path: Any) -> None:
    _check_figure(fk.model.plot.fitted())


def tool_plot_marginal_cov(fk: FittedKind, tmp_path: Any) -> None:
    _check_figure(fk.model.plot.marginal_cov())


def tool_plot_residuals(fk: FittedKind, tmp_path: Any) -> None:
    _check_figure(fk.model.plot.residuals())


def tool_to_latex(fk: FittedKind, tmp_path: Any) -> None:
    text = fk.model.to_latex()
    assert isinstance(text, str) and "\\" in text and "__response__" not in text


def tool_report(fk: FittedKind, tmp_path: Any) -> None:
    path = mm.report(fk.model, tmp_path / "report.html", nsim=50)
    html = path.read_text()
    assert "<html" in html.lower() and "__response__" not in html


def tool_pickle(fk: FittedKind, tmp_path: Any) -> None:
    m = fk.model
    clone = pickle.loads(pickle.dumps(m))
    pd.testing.assert_series_equal(clone.fixef, m.fixef)
    assert clone.loglik == m.loglik
    assert clone.summary() == m.summary()


TOOLS: dict[str, Callable[[FittedKind, Any], None]] = {
    name.removeprefix("tool_"): func
    for name, func in dict(globals()).items()
    if name.startswith("tool_") and callable(func)
}

# -- cells refused by design -------------------------------------------------------------
#: (cells, regex the MixedModelsError must match, why and what to use instead: the README's
#: table of refused cells is generated from these, see test_readme_lists_the_refused_cells)
_REFUSALS: list[tuple[list[tuple[str, str]], str, str]] = [
    (
        [(k, t) for k in GLMM_KINDS for t in ("fe_satterthwaite", "fe_kenward_roger")],
        r"(?i)wald",
        'glmer tests are asymptotic Wald z/χ² tests, as lme4\'s: use `ddf="normal"`',
    ),
    (
        [(k, "fe_kenward_roger") for k in RESIDUAL_KINDS],
        r"(?i)kenward.*residual structure.*satterthwaite",
        "pbkrtest's adjustment needs a marginal covariance linear in its parameters: "
        "use Satterthwaite",
    ),
    (
        [
            (k, "fe_kenward_roger")
            for k in ("diag term", "us term", "cs term", "ar1 term", "toep term")
        ],  # fmt: skip
        r"(?i)REML",
        "Kenward-Roger needs a REML fit (the zoo fits these by ML, as glmmTMB); refit with "
        "`reml=True` (cs/ar1/toep: use Satterthwaite, their covariance is not linear)",
    ),
    (
        [(k, "confint_profile") for k in ("glmer Gamma", "glmer inverse Gaussian")],
        r"(?i)profile.*(wald|boot)",
        'their dispersion is estimated, as lme4 refuses too: use `method="wald"` or `"boot"`',
    ),
    (
        [("crossed", "plot_fitted")],
        r"numeric fixed-effect covariate.*Pass x=",
        "pupils' fixed part (sex, ses) has no numeric covariate for the x axis: pass `x=`",
    ),
    (
        [("CorSymm", "confint_profile")],
        r"profile intervals.*not identified.*instead",
        "CorSymm within student beside `(1 \\| student)` is not identified (τ² and the "
        "correlations' common part trade off along a flat ridge; nlme's intervals() fail "
        "too): drop the random intercept",
    ),
    (
        [("lm", "confint_profile")],
        r"theta_.*lm fit.*no random-effect variance.*boot",
        'an lm has no θ and exact t intervals (confint.lm): use `method="wald"`, or `"boot"` for σ',
    ),
]
REFUSED: dict[tuple[str, str], str] = {
    cell: regex for cells, regex, _ in _REFUSALS for cell in cells
}

#: tools that have no meaning without random effects: lm has no such method
NOT_APPLICABLE: set[tuple[str, str]] = {("lm", t) for t in RANDOM_EFFECT_TOOLS}

# -- cells that are wrong or unclear today (strict xfail: delete the entry once fixed) -------
_BROKEN: dict[str, list[tuple[str, str]]] = {}
KNOWN_BROKEN: dict[tuple[str, str], str] = {
    cell: reason for reason, cells in _BROKEN.items() for cell in cells
}


def _cells() -> list[Any]:
    cells = []
    for kind in ZOO:
        for tool in TOOLS:
            if (kind, tool) in NOT_APPLICABLE:
                continue
            marks = []
            if (kind, tool) in KNOWN_BROKEN:
                marks.append(pytest.mark.xfail(reason=KNOWN_BROKEN[(kind, tool)], strict=True))
            cells.append(pytest.param(kind, tool, marks=marks, id=f"{kind}-{tool}"))
    return cells


@pytest.mark.parametrize(("kind", "tool"), _cells())
def test_tool_on_model(zoo, kind, tool, tmp_path):
    fk = zoo[kind]
    run = TOOLS[tool]
    refusal = REFUSED.get((kind, tool))
    if refusal is not None:
        with pytest.raises(mm.MixedModelsError, match=refusal):
            run(fk, tmp_path)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        warnings.simplefilter("ignore", mm.ConvergenceWarning)
        run(fk, tmp_path)


def test_lm_has_no_random_effect_tools(zoo):
    """lm: tools of random effects are absent, not silently empty."""
    m = zoo["lm"].model
    for method in ("random_effects", "resim", "marginal_cov"):
        assert not hasattr(m, method)


_README_START = "<!-- refused cells: generated from tests/test_tool_matrix.py -->"
_README_END = "<!-- end of refused cells -->"


def refused_cells_markdown() -> str:
    """The README's table of refused and not-applicable cells, from the tables above."""
    lines = ["| model kinds | tool | why, and what to use instead |", "|---|---|---|"]
    for cells, _, why in _REFUSALS:
        for tool in dict.fromkeys(t for _, t in cells):
            kinds = ", ".join(k for k, t in cells if t == tool)
            lines.append(f"| {kinds} | `{tool}` | {why} |")
    tools = ", ".join(f"`{t}`" for t in sorted({t for _, t in NOT_APPLICABLE}))
    lines.append(f"| lm | {tools} | no random effects: an lm has no such method |")
    for (kind, tool), reason in KNOWN_BROKEN.items():
        lines.append(f"| {kind} | `{tool}` | not yet right (strict xfail): {reason} |")
    return "\n".join(lines)


def test_readme_lists_the_refused_cells():
    """The README's table is this file's tables; after editing them, paste the output of
    ``python -c "from tests.test_tool_matrix import refused_cells_markdown as f; print(f())"``
    between the markers."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start, end = readme.index(_README_START), readme.index(_README_END)
    shown = readme[start + len(_README_START) : end].strip()
    assert shown == refused_cells_markdown()
