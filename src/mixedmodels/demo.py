"""The seed chapter's analyses: ``python -m mixedmodels.demo [--data DIR]``.

Fits every model of "Mixed Models with R" (sections 20.1-20.8 and the formula table of 20.9)
on the chapter's data when ``--data DIR`` holds its CSV files (with ``levels.json`` for R's
level order; ``make demo`` passes ``../shared/data`` when it exists), else on the simulated
sets of :mod:`mixedmodels.datasets`; prints each Python call above its result and writes them
to ``<output>/report.md`` (plus one CSV per table), then the toolbox: REsim and
predictInterval tables, the per-student ``lmlist`` fits, the equatiomatic equations, every
plot as PNG and ``<output>/report.html`` (``mixedmodels demo -o DIR`` runs the same).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from . import datasets
from .datasets.files import apply_levels, read_levels, read_table
from .fitting.glmer import glmer
from .fitting.lmer import lmer
from .inference.comparison import aic_table
from .models.linear import lm
from .models.lmlist import lmlist
from .residual.correlation import CorAR1
from .residual.variance import VarIdent

FORMULA_TABLE = [
    (
        "random group intercept",
        "gpa ~ occasion + (1 | student)",
    ),
    (
        "random slope of x within group with correlated intercept",
        "gpa ~ occasion + (occasion | student)",
    ),
    (
        "random slope of x within group: no variation in intercept",
        "gpa ~ occasion + (0 + occasion | student)",
    ),
    (
        "uncorrelated random intercept and random slope within group",
        "gpa ~ occasion + (1 | student) + (0 + occasion | student)",
    ),
    (
        "the same, written with ||",
        "gpa ~ occasion + (occasion || student)",
    ),
    (
        "intercept varying among sites and among blocks within sites (nested)",
        "stress ~ experience + (1 | hospital/ward)",
    ),
    (
        "fixed effect of sites plus random intercepts of blocks within sites",
        "stress ~ experience + hospsize + (1 | hospital:ward)",
    ),
    (
        "slope and intercept varying among sites and among blocks within sites",
        "stress ~ experience + (experience | hospital/ward)",
    ),
    (
        "two different effects, varying at different levels",
        "stress ~ age + experience + (age | hospital) + (experience | wardid)",
    ),
    (
        "fixed slopes by site, random slopes and intercepts of blocks within sites",
        "stress ~ experience * hospsize + (experience | hospital:ward)",
    ),
    (
        "intercept varying among crossed random effects",
        "achievement ~ sex + (1 | primary_school_id) + (1 | secondary_school_id)",
    ),
]


class _Report:
    def __init__(self, output: Path | None):
        self.output = output
        self.lines: list[str] = ["# Mixed Models with R, reproduced with mixedmodels", ""]
        self.tables = 0
        if output is not None:
            output.mkdir(parents=True, exist_ok=True)

    def heading(self, text: str) -> None:
        print(f"\n{'=' * 78}\n{text}\n{'=' * 78}")
        self.lines += [f"## {text}", ""]

    def code(self, text: str) -> None:
        """The Python call, shown above its result."""
        print(
            "\n".join(
                f">>> {line}" if i == 0 else f"... {line}"
                for i, line in enumerate(text.splitlines())
            )
        )
        self.lines += ["```python", text, "```", ""]

    def text(self, text: str) -> None:
        print(text)
        self.lines += [text, ""]

    def output_block(self, text: str) -> None:
        print(text)
        self.lines += ["```", text, "```", ""]

    def table(self, name: str, frame: pd.DataFrame) -> None:
        shown = frame.round(4)
        print(f"[{name}]")
        print(shown.to_string(index=False))
        self.lines += [f"**{name}**", "", "```", shown.to_string(index=False), "```", ""]
        if self.output is not None:
            self.tables += 1
            frame.to_csv(
                self.output / f"{self.tables:02d}_{name.replace(' ', '_')}.csv", index=False
            )

    def figure(self, name: str, fig) -> None:
        """Save a plot as PNG next to the tables and link it from report.md."""
        if self.output is None:
            return
        path = self.output / f"{name}.png"
        fig.savefig(path)
        print(f"[figure] {path}")
        self.lines += [f"![{name}]({path.name})", ""]

    def save(self) -> Path | None:
        if self.output is None:
            return None
        path = self.output / "report.md"
        path.write_text("\n".join(self.lines))
        return path


class _Session:
    """Runs each step from its source text, so the call the report shows is the call made."""

    def __init__(self, report: _Report, namespace: dict):
        self.report = report
        self.namespace = namespace

    def fit(self, name: str, call: str, quiet: bool = False):
        """``name = call``, timed; with ``quiet`` the fit's warnings are silenced."""
        self.report.code(f"{name} = {call}")
        with warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore")
            start = time.perf_counter()
            model = eval(call, self.namespace)  # noqa: S307 - our own literal source text
            elapsed = time.perf_counter() - start
        self.namespace[name] = model
        self.report.text(f"{name}: fitted in {1000 * elapsed:.0f} ms")
        return model

    def let(self, name: str, call: str) -> Any:
        self.report.code(f"{name} = {call}")
        value = eval(call, self.namespace)  # noqa: S307
        self.namespace[name] = value
        return value

    def value(self, expression: str) -> Any:
        self.report.code(expression)
        return eval(expression, self.namespace)  # noqa: S307

    def table(self, title: str, expression: str) -> pd.DataFrame:
        frame = self.value(expression)
        self.report.table(title, frame)
        return frame

    def show(self, expression: str) -> None:
        self.report.output_block(str(self.value(expression)))

    def figure(self, name: str, expression: str) -> None:
        self.report.figure(name, self.value(expression))


#: the chapter's data sets, as files in ``--data DIR`` (with levels.json) or simulated
DATASETS = ("gpa", "pupils", "nurses", "speed_dating")


def load_datasets(data_dir: Path | None, seed: int) -> tuple[dict[str, pd.DataFrame], dict]:
    """The chapter's data: ``DIR/<name>.csv`` with ``DIR/levels.json``'s level order when
    present, else :mod:`mixedmodels.datasets`' simulated set. Returns (data, sources)."""
    data: dict[str, pd.DataFrame] = {}
    sources: dict[str, str] = {}
    levels_file = None if data_dir is None else data_dir / "levels.json"
    for name in DATASETS:
        file = None if data_dir is None else data_dir / f"{name}.csv"
        if file is not None and file.is_file():
            frame = read_table(file)
            if levels_file is not None and levels_file.is_file():
                frame = apply_levels(frame, read_levels(levels_file, dataset=name))
            data[name] = frame
            sources[name] = str(file)
        else:
            data[name] = getattr(datasets, name)(seed=seed)
            sources[name] = f"simulated: mixedmodels.datasets.{name}(seed={seed})"
    return data, sources


def run(output: Path | None = None, seed: int = 2024, data_dir: Path | None = None) -> _Report:
    """Run every section and return the report (also written under ``output``).

    Parameters
    ----------
    output : Path, optional
        Folder for report.md, report.html, the CSV tables and the PNG plots.
    seed : int
        Seed of the simulated data sets and of every simulation.
    data_dir : Path, optional
        Folder with the chapter's CSV files and levels.json; each missing file falls back
        to the simulated data set.
    """
    data, sources = load_datasets(data_dir, seed)
    report = _Report(output)
    real = _describe_data(report, sources)
    namespace = {
        "lm": lm,
        "lmer": lmer,
        "glmer": glmer,
        "lmlist": lmlist,
        "aic_table": aic_table,
        "VarIdent": VarIdent,
        "CorAR1": CorAR1,
        "seed": seed,
        **data,
    }
    session = _Session(report, namespace)
    gpa = data["gpa"]
    _section_random_intercept(session, report, gpa)
    gpa_mixed2 = _section_random_slopes(session, report)
    _section_crossed_and_nested(session, report)
    _section_residual_structures(session, report)
    _section_glmm_and_comparison(session, report)
    _section_formula_table(report, data)
    path = report.save()
    if path is not None:
        from .toolbox.report import report as html_report

        kind = "the chapter's gpa" if "gpa" in real else "simulated gpa"
        html = html_report(gpa_mixed2, output / "report.html", title=f"gpa_mixed2 ({kind})")
        print(f"\nReport written to {path} and {html}")
    return report


def _describe_data(report: _Report, sources: dict[str, str]) -> list[str]:
    """Say where the data come from; the names of the data sets read from files."""
    real = [name for name, source in sources.items() if not source.startswith("simulated")]
    if len(real) == len(DATASETS):
        report.text("The chapter's data, read from files; the numbers can be held against it.")
    elif not real:
        report.text(
            "All data are simulated by mixedmodels.datasets to look like the chapter's data; "
            "the numbers differ from the chapter's, the analyses are the same."
        )
    report.text("Data: " + "; ".join(f"{name} ({source})" for name, source in sources.items()))
    return real


def _section_random_intercept(session: _Session, report: _Report, gpa: pd.DataFrame) -> None:
    """20.1-20.2: lm, the random-intercept model, its random effects, predictions and intervals."""
    report.heading("20.1-20.2 Standard regression model: lm(gpa ~ occasion)")
    session.let("gpa_lm", 'lm("gpa ~ occasion", gpa)')
    session.table("gpa_lm coefficients", "gpa_lm.coefficients()")
    session.table("gpa_lm fit", "gpa_lm.fit_statistics()")

    report.heading("20.2.3 Mixed model: lmer(gpa ~ occasion + (1 | student))")
    session.fit("gpa_mixed", 'lmer("gpa ~ occasion + (1 | student)", gpa)')
    session.show("gpa_mixed.summary()")
    session.table("gpa_mixed fixed effects", "gpa_mixed.fixed_effects()")
    session.table("gpa_mixed variance components", "gpa_mixed.variance_components()")
    icc = session.value('gpa_mixed.icc()["student"]')
    report.text(f"Intraclass correlation (student): {icc:.4f}")

    report.heading("20.2.4 Estimation of random effects")
    session.table("gpa_mixed random effects (first 5)", "gpa_mixed.random_effects().head(5)")
    session.table("gpa_mixed random intercepts (first 5)", "gpa_mixed.coef().head(5)")

    report.heading("20.2.5 Prediction")
    session.table(
        "predictions (first 8 rows)",
        'gpa[["student", "occasion", "gpa"]].assign(\n'
        "    lm=gpa_lm.predict(),\n"
        '    lmm_no_random_effects=gpa_mixed.predict(re_form="~0"),\n'
        "    lmm_with_random_effects=gpa_mixed.predict(),\n"
        ").head(8)",
    )

    report.heading("20.2.4 (cont.) merTools: REsim and predictInterval")
    session.table("gpa_mixed REsim (first 5)", "gpa_mixed.resim(nsim=1000, seed=seed).head(5)")
    intervals = session.let(
        "intervals", "gpa_mixed.predict_interval(level=0.95, nsim=1000, seed=seed)"
    )
    report.table("gpa_mixed predictInterval (first 6)", intervals.head(6))
    covered = ((intervals["lower"] <= gpa["gpa"]) & (gpa["gpa"] <= intervals["upper"])).mean()
    report.text(f"95% prediction intervals cover {covered:.1%} of the observations.")
    report.text("Equation (equatiomatic form):")
    session.show("gpa_mixed.to_latex()")
    session.figure("caterpillar_gpa_mixed", "gpa_mixed.plot.caterpillar(seed=seed)")
    session.figure("fitted_two_students", 'gpa_mixed.plot.fitted(groups=["1", "2"])')


def _section_random_slopes(session: _Session, report: _Report) -> Any:
    """20.3: random slopes, the per-student lm fits and the shrinkage plot; the model."""
    report.heading("20.3 Random slopes: lmer(gpa ~ occasion + (1 + occasion | student))")
    gpa_mixed2 = session.fit("gpa_mixed2", 'lmer("gpa ~ occasion + (1 + occasion | student)", gpa)')
    session.table("gpa_mixed2 fixed effects", "gpa_mixed2.fixed_effects()")
    session.table("gpa_mixed2 variance components", "gpa_mixed2.variance_components()")
    session.table("gpa_mixed2 VarCorr", "gpa_mixed2.varcorr()")
    session.table("gpa_mixed2 random coefficients (first 6)", "gpa_mixed2.coef().head(6)")
    separate = session.let("separate", 'lmlist("gpa ~ occasion", gpa, group="student")')
    report.table("separate per-student lm fits (lmlist, first 6 rows)", separate.head(6))
    report.text(f"lmlist: {separate['group'].nunique()} per-student fits.")
    report.text("Equation (equatiomatic form):")
    session.show("gpa_mixed2.to_latex()")
    session.figure("shrinkage_gpa_mixed2", "gpa_mixed2.plot.shrinkage()")
    session.figure("fitted_gpa_mixed2", 'gpa_mixed2.plot.fitted(groups=["1", "2"])')
    session.figure("residuals_gpa_mixed2", "gpa_mixed2.plot.residuals()")
    return gpa_mixed2


def _section_crossed_and_nested(session: _Session, report: _Report) -> None:
    """20.4-20.5: crossed school factors and nurses nested in wards in hospitals."""
    report.heading("20.4 Cross-classified: (1 | primary_school_id) + (1 | secondary_school_id)")
    session.fit(
        "pupils_crossed",
        'lmer(\n    "achievement ~ sex + ses + (1 | primary_school_id) + '
        '(1 | secondary_school_id)",\n    pupils,\n)',
    )
    session.table("pupils_crossed fixed effects", "pupils_crossed.fixed_effects()")
    session.table("pupils_crossed variance components", "pupils_crossed.variance_components()")
    session.table(
        "pupils_crossed REsim (first 5)", "pupils_crossed.resim(nsim=1000, seed=seed).head(5)"
    )
    session.figure("caterpillar_pupils_crossed", "pupils_crossed.plot.caterpillar(seed=seed)")

    report.heading("20.5 Hierarchical: nurses in wards in hospitals")
    fixed = "stress ~ age + sex + experience + treatment + wardtype + hospsize"
    for name, random in (
        ("nurses_hierach", "(1 | hospital) + (1 | hospital:ward)"),
        ("nurses_hierach2", "(1 | hospital) + (1 | hospital:wardid)"),
        ("nurses_nested", "(1 | hospital) + (1 | wardid)"),
    ):
        session.fit(name, f'lmer("{fixed} + {random}", nurses)')
        if name == "nurses_hierach":
            session.table(f"{name} fixed effects", f"{name}.fixed_effects()")
            session.figure(f"caterpillar_{name}", f"{name}.plot.caterpillar(seed=seed)")
        session.table(f"{name} variance components", f"{name}.variance_components()")


def _section_residual_structures(session: _Session, report: _Report) -> None:
    """20.6: the marginal covariance, heterogeneous variances and autocorrelation."""
    report.heading("20.6 Residual structure: the marginal covariance of the first students")
    session.figure("marginal_cov_gpa_mixed", 'gpa_mixed.plot.marginal_cov(groups=["1", "2", "3"])')
    session.table("rescov first block (student 1)", 'gpa_mixed.marginal_cov(groups="1")')

    report.heading("20.6.1 Heterogeneous variance: nlme varIdent and glmmTMB diag")
    session.fit(
        "gpa_hetero_res",
        'lmer("gpa ~ occasion + (1 | student)", gpa, variance=VarIdent("occasion"))',
    )
    session.table("gpa_hetero_res fixed effects", "gpa_hetero_res.fixed_effects()")
    session.table("gpa_hetero_res residual variances", "gpa_hetero_res.residual_variances()")
    session.fit(
        "gpa_hetero_res2",
        'lmer(\n    "gpa ~ occasion + (1 | student) + diag(0 + occas | student)",\n'
        "    gpa,\n    reml=False,\n)",
        quiet=True,
    )
    session.table("gpa_hetero_res2 residual variances", "gpa_hetero_res2.residual_variances()")

    report.heading("20.6.2 Autocorrelation: nlme corAR1 and glmmTMB ar1")
    session.fit(
        "gpa_autocorr",
        'lmer(\n    "gpa ~ occasion + (1 | student)",\n    gpa,\n'
        '    correlation=CorAR1(time="occasion", group="student"),\n)',
    )
    session.table("gpa_autocorr fixed effects", "gpa_autocorr.fixed_effects()")
    session.table(
        "gpa_autocorr residual parameters",
        'gpa_autocorr.residual_parameters().to_frame("value")',
    )
    session.fit(
        "gpa_autocorr2",
        'lmer(\n    "gpa ~ occasion + ar1(0 + occas | student) + (1 | student)",\n'
        "    gpa,\n    reml=False,\n)",
        quiet=True,
    )
    session.table("gpa_autocorr2 fixed effects", "gpa_autocorr2.fixed_effects()")


def _section_glmm_and_comparison(session: _Session, report: _Report) -> None:
    """20.7-20.8: the binomial GLMM and the AIC comparison."""
    report.heading("20.7 Generalized linear mixed model: speed-dating decisions (binomial)")
    session.fit(
        "sdating",
        "glmer(\n"
        '    "decision ~ sex + samerace + attractive_sc + sincere_sc + intelligent_sc + (1 | iid)",'
        '\n    speed_dating,\n    family="binomial",\n)',
    )
    session.show("sdating.summary()")
    session.table("sdating fixed effects", "sdating.fixed_effects()")
    session.table("sdating variance components", "sdating.variance_components()")

    report.heading("20.8.1 Model comparison by AIC (REML criterion, as lme4)")
    session.table(
        "AIC comparison",
        "aic_table({\n"
        '    "gpa_1": lmer("gpa ~ occasion + (1 + occasion | student)", gpa),\n'
        '    "gpa_2": lmer("gpa ~ occasion + sex + (1 + occasion | student)", gpa),\n'
        '    "gpa_3": lmer("gpa ~ occasion + (1 | student)", gpa),\n'
        "})",
    )


def _section_formula_table(report: _Report, data: dict[str, pd.DataFrame]) -> None:
    """20.9: every row of the formula table, fitted, with its time and warnings."""
    report.heading("20.9 Formula summary: every row of the table, fitted")
    report.code(
        "for meaning, formula in FORMULA_TABLE:\n"
        "    model = lmer(formula, gpa | nurses | pupils)  # the data set the formula names"
    )
    rows = []
    for meaning, formula in FORMULA_TABLE:
        frame = (
            data["gpa"]
            if formula.startswith("gpa")
            else data["nurses"]
            if formula.startswith("stress")
            else data["pupils"]
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            model = lmer(formula, frame)
            elapsed = time.perf_counter() - start
        notes = "; ".join(sorted({type(w.message).__name__ for w in caught}))
        rows.append(
            {
                "formula": formula,
                "meaning": meaning,
                "logLik": model.loglik,
                "n_theta": len(model.theta),
                "groups": ", ".join(f"{g} ({n})" for g, n in model.ngroups.items()),
                "ms": round(1000 * elapsed, 1),
                "warnings": notes,
            }
        )
    report.table("formula table", pd.DataFrame(rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", "-o", type=Path, default=Path("demo-output"))
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--data", type=Path, default=None, help="folder of the chapter's CSVs")
    args = parser.parse_args(argv)
    run(args.output, args.seed, data_dir=args.data)


if __name__ == "__main__":
    main()
