"""The seed chapter's analyses on the built-in simulated data: ``python -m mixedmodels.demo``.

Fits every model of "Mixed Models with R" (sections 20.1-20.8 and the
formula table of 20.9) on data from :mod:`mixedmodels.datasets`, prints the tables and
writes them to ``<output>/report.md`` (plus one CSV per table), then the toolbox: REsim and
predictInterval tables, the per-student ``lmlist`` fits, the equatiomatic equations, every
plot as PNG and ``<output>/report.html`` (``mixedmodels demo -o DIR`` runs the same).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from . import datasets
from .comparison import aic_table
from .fit import lmer
from .fit_glmm import glmer
from .linear import lm
from .lmlist import lmlist
from .residual import CorAR1, VarIdent

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

    def text(self, text: str) -> None:
        print(text)
        self.lines += [text, ""]

    def table(self, name: str, frame: pd.DataFrame) -> None:
        shown = frame.round(4)
        print(f"\n[{name}]")
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


def _timed(report: _Report, label: str, fit: Callable):
    start = time.perf_counter()
    model = fit()
    report.text(f"{label}: fitted in {1000 * (time.perf_counter() - start):.0f} ms")
    return model


def run(output: Path | None = None, seed: int = 2024) -> _Report:
    """Run every section and return the report (also written under ``output``)."""
    gpa = datasets.gpa(seed=seed)
    pupils = datasets.pupils(seed=seed)
    nurses = datasets.nurses(seed=seed)
    report = _Report(output)
    report.text(
        "All data are simulated by mixedmodels.datasets to look like the chapter's data; "
        "the numbers differ from the chapter's, the analyses are the same."
    )

    report.heading("20.1-20.2 Standard regression model: lm(gpa ~ occasion)")
    gpa_lm = lm("gpa ~ occasion", gpa)
    report.table("gpa_lm coefficients", gpa_lm.coefficients())
    report.table("gpa_lm fit", gpa_lm.fit_statistics())

    report.heading("20.2.3 Mixed model: lmer(gpa ~ occasion + (1 | student))")
    gpa_mixed = _timed(report, "gpa_mixed", lambda: lmer("gpa ~ occasion + (1 | student)", gpa))
    report.text(gpa_mixed.summary())
    report.table("gpa_mixed fixed effects", gpa_mixed.fixed_effects())
    report.table("gpa_mixed variance components", gpa_mixed.variance_components())
    report.text(f"Intraclass correlation (student): {gpa_mixed.icc()['student']:.4f}")

    report.heading("20.2.4 Estimation of random effects")
    report.table("gpa_mixed random effects (first 5)", gpa_mixed.random_effects().head(5))
    report.table("gpa_mixed random intercepts (first 5)", gpa_mixed.coef().head(5))

    report.heading("20.2.5 Prediction")
    predictions = gpa[["student", "occasion", "gpa"]].assign(
        lm=gpa_lm.predict(),
        lmm_no_random_effects=gpa_mixed.predict(re_form="~0"),
        lmm_with_random_effects=gpa_mixed.predict(),
    )
    report.table("predictions (first 8 rows)", predictions.head(8))

    report.heading("20.2.4 (cont.) merTools: REsim and predictInterval")
    report.table("gpa_mixed REsim (first 5)", gpa_mixed.resim(nsim=1000, seed=seed).head(5))
    intervals = gpa_mixed.predict_interval(level=0.95, nsim=1000, seed=seed)
    covered = ((intervals["lower"] <= gpa["gpa"]) & (gpa["gpa"] <= intervals["upper"])).mean()
    report.table("gpa_mixed predictInterval (first 6)", intervals.head(6))
    report.text(f"95% prediction intervals cover {covered:.1%} of the observations.")
    report.text("Equation (equatiomatic form):\n" + gpa_mixed.to_latex())
    report.figure("caterpillar_gpa_mixed", gpa_mixed.plot.caterpillar(seed=seed))
    report.figure("fitted_two_students", gpa_mixed.plot.fitted(groups=["1", "2"]))

    report.heading("20.3 Random slopes: lmer(gpa ~ occasion + (1 + occasion | student))")
    gpa_mixed2 = _timed(
        report, "gpa_mixed2", lambda: lmer("gpa ~ occasion + (1 + occasion | student)", gpa)
    )
    report.table("gpa_mixed2 fixed effects", gpa_mixed2.fixed_effects())
    report.table("gpa_mixed2 variance components", gpa_mixed2.variance_components())
    report.table("gpa_mixed2 VarCorr", gpa_mixed2.varcorr())
    report.table("gpa_mixed2 random coefficients (first 6)", gpa_mixed2.coef().head(6))
    separate = lmlist("gpa ~ occasion", gpa, group="student")
    report.table("separate per-student lm fits (lmlist, first 6 rows)", separate.head(6))
    report.text(f"lmlist: {separate['group'].nunique()} per-student fits.")
    report.text("Equation (equatiomatic form):\n" + gpa_mixed2.to_latex())
    report.figure("shrinkage_gpa_mixed2", gpa_mixed2.plot.shrinkage())
    report.figure("fitted_gpa_mixed2", gpa_mixed2.plot.fitted(groups=["1", "2"]))
    report.figure("residuals_gpa_mixed2", gpa_mixed2.plot.residuals())

    report.heading("20.4 Cross-classified: (1 | primary_school_id) + (1 | secondary_school_id)")
    crossed = _timed(
        report,
        "pupils_crossed",
        lambda: lmer(
            "achievement ~ sex + ses + (1 | primary_school_id) + (1 | secondary_school_id)", pupils
        ),
    )
    report.table("pupils_crossed fixed effects", crossed.fixed_effects())
    report.table("pupils_crossed variance components", crossed.variance_components())
    report.table("pupils_crossed REsim (first 5)", crossed.resim(nsim=1000, seed=seed).head(5))
    report.figure("caterpillar_pupils_crossed", crossed.plot.caterpillar(seed=seed))

    report.heading("20.5 Hierarchical: nurses in wards in hospitals")
    fixed = "stress ~ age + sex + experience + treatment + wardtype + hospsize"
    for name, random in (
        ("nurses_hierach", "(1 | hospital) + (1 | hospital:ward)"),
        ("nurses_hierach2", "(1 | hospital) + (1 | hospital:wardid)"),
        ("nurses_nested", "(1 | hospital) + (1 | wardid)"),
    ):
        model = _timed(report, name, lambda random=random: lmer(f"{fixed} + {random}", nurses))
        if name == "nurses_hierach":
            report.table(f"{name} fixed effects", model.fixed_effects())
            report.figure(f"caterpillar_{name}", model.plot.caterpillar(seed=seed))
        report.table(f"{name} variance components", model.variance_components())

    report.heading("20.6 Residual structure: the marginal covariance of the first students")
    report.figure("marginal_cov_gpa_mixed", gpa_mixed.plot.marginal_cov(groups=["1", "2", "3"]))
    report.table("rescov first block (student 1)", gpa_mixed.marginal_cov(groups="1"))

    report.heading("20.6.1 Heterogeneous variance: nlme varIdent and glmmTMB diag")
    hetero = _timed(
        report,
        "gpa_hetero_res",
        lambda: lmer("gpa ~ occasion + (1 | student)", gpa, variance=VarIdent("occasion")),
    )
    report.table("gpa_hetero_res fixed effects", hetero.fixed_effects())
    report.table("gpa_hetero_res residual variances", hetero.residual_variances())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hetero2 = _timed(
            report,
            "gpa_hetero_res2",
            lambda: lmer(
                "gpa ~ occasion + (1 | student) + diag(0 + occas | student)", gpa, reml=False
            ),
        )
    report.table("gpa_hetero_res2 residual variances", hetero2.residual_variances())

    report.heading("20.6.2 Autocorrelation: nlme corAR1 and glmmTMB ar1")
    autocorr = _timed(
        report,
        "gpa_autocorr",
        lambda: lmer(
            "gpa ~ occasion + (1 | student)",
            gpa,
            correlation=CorAR1(time="occasion", group="student"),
        ),
    )
    report.table("gpa_autocorr fixed effects", autocorr.fixed_effects())
    report.table(
        "gpa_autocorr residual parameters", autocorr.residual_parameters().to_frame("value")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        autocorr2 = _timed(
            report,
            "gpa_autocorr2",
            lambda: lmer(
                "gpa ~ occasion + ar1(0 + occas | student) + (1 | student)", gpa, reml=False
            ),
        )
    report.table("gpa_autocorr2 fixed effects", autocorr2.fixed_effects())

    report.heading("20.7 Generalized linear mixed model: speed-dating decisions (binomial)")
    dating = datasets.speed_dating(seed=seed)
    sdating = _timed(
        report,
        "sdating",
        lambda: glmer(
            "decision ~ sex + samerace + attractive_sc + sincere_sc + intelligent_sc + (1 | iid)",
            dating,
            family="binomial",
        ),
    )
    report.text(sdating.summary())
    report.table("sdating fixed effects", sdating.fixed_effects())
    report.table("sdating variance components", sdating.variance_components())

    report.heading("20.8.1 Model comparison by AIC (REML criterion, as lme4)")
    models = {
        "gpa_1": lmer("gpa ~ occasion + (1 + occasion | student)", gpa),
        "gpa_2": lmer("gpa ~ occasion + sex + (1 + occasion | student)", gpa),
        "gpa_3": lmer("gpa ~ occasion + (1 | student)", gpa),
    }
    report.table("AIC comparison", aic_table(models))

    report.heading("20.9 Formula summary: every row of the table, fitted")
    rows = []
    for meaning, formula in FORMULA_TABLE:
        data = (
            gpa if formula.startswith("gpa") else nurses if formula.startswith("stress") else pupils
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            model = lmer(formula, data)
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
    path = report.save()
    if path is not None:
        from .report import report as html_report

        html = html_report(gpa_mixed2, output / "report.html", title="gpa_mixed2 (simulated gpa)")
        print(f"\nReport written to {path} and {html}")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", "-o", type=Path, default=Path("demo-output"))
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    run(args.output, args.seed)


if __name__ == "__main__":
    main()
