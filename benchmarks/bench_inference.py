"""Timing of inference: profile intervals and a parametric bootstrap, side by side with lme4.

Usage: ``python benchmarks/bench_inference.py [--repeats N] [--nsim N] [--no-r]``

Times ``m.confint(method="profile")`` and ``m.bootstrap(nsim)`` (1 and 2 workers) on the
sleepstudy random-slope model, and ``confint(method="profile")`` of the cbpp binomial
glmer fit; when ``Rscript`` with lme4 is installed, lme4's ``confint(m, method =
"profile")`` and ``bootMer(m, fixef, nsim)`` on the same data, in the same run.  Prints
medians and ratios (lme4 / mixedmodels).  Goal (issue 5): at least 5x faster.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

import mixedmodels as mm

ROOT = Path(__file__).resolve().parents[1]
R_SCRIPT = Path(__file__).with_name("time_lme4_inference.R")
R_GLMER_SCRIPT = Path(__file__).with_name("time_lme4_glmer_profile.R")
FORMULA = "Reaction ~ Days + (Days | Subject)"
CBPP_FORMULA = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def _sleepstudy() -> pd.DataFrame:
    fixture = json.loads((ROOT / "tests" / "fixtures" / "lme4_lmm.json").read_text())
    return pd.DataFrame(fixture["data"]["sleepstudy"]["columns"])


def _cbpp() -> pd.DataFrame:
    fixture = json.loads((ROOT / "tests" / "fixtures" / "lme4_glmm.json").read_text())
    spec = fixture["data"]["cbpp"]
    frame = pd.DataFrame(spec["columns"])
    for column, levels in spec["levels"].items():
        frame[column] = pd.Categorical(frame[column].astype(str), categories=levels)
    return frame


def _median_time(func, repeats: int) -> float:
    func()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _rscript_last_line(script: Path, data: pd.DataFrame, *args: str) -> list[str] | None:
    """Run an R timing script on ``data`` (written to a temporary CSV, passed first) and
    return the fields of its last output line; None without Rscript or on failure."""
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        data.to_csv(path, index=False)
        run = subprocess.run(
            ["Rscript", str(script), str(path), *args], capture_output=True, text=True
        )
    if run.returncode != 0:
        print(f"{script.name} failed:", run.stderr.strip().splitlines()[-1:])
        return None
    return run.stdout.strip().splitlines()[-1].split()


def _lme4_times(data: pd.DataFrame, repeats: int, nsim: int) -> tuple[float, float] | None:
    fields = _rscript_last_line(R_SCRIPT, data, FORMULA, str(repeats), str(nsim))
    if fields is None:
        return None
    profile, boot = (float(v) for v in fields)
    return profile, boot


def _lme4_glmer_profile(data: pd.DataFrame, repeats: int) -> float | None:
    fields = _rscript_last_line(
        R_GLMER_SCRIPT, data, CBPP_FORMULA, "binomial", str(repeats), "herd,period"
    )
    return None if fields is None else float(fields[0])


def _row(case: str, seconds: float, reference: float | None) -> None:
    ratio = f"{reference / seconds:6.1f}x" if reference else "      -"
    ref_text = f"{reference:9.3f}" if reference else "        -"
    print(f"{case:<28} {seconds:14.3f} {ref_text} {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--nsim", type=int, default=200)
    parser.add_argument("--no-r", action="store_true")
    args = parser.parse_args()
    data = _sleepstudy()
    model = mm.lmer(FORMULA, data)
    ours = {
        "profile CIs": _median_time(lambda: model.confint(method="profile"), args.repeats),
        f"bootstrap {args.nsim} (1 worker)": _median_time(
            lambda: model.bootstrap(args.nsim, seed=1, progress=False), args.repeats
        ),
        f"bootstrap {args.nsim} (2 workers)": _median_time(
            lambda: model.bootstrap(args.nsim, seed=1, n_jobs=2, progress=False), args.repeats
        ),
    }
    theirs = None if args.no_r else _lme4_times(data, args.repeats, args.nsim)
    print(f"sleepstudy {FORMULA}: medians of {args.repeats} runs")
    print(f"{'case':<28} {'mixedmodels s':>14} {'lme4 s':>9} {'ratio':>7}")
    for case, seconds in ours.items():
        reference = None
        if theirs is not None:
            reference = theirs[0] if case.startswith("profile") else theirs[1]
        _row(case, seconds, reference)

    cbpp = _cbpp()
    glmm = mm.glmer(CBPP_FORMULA, cbpp, family="binomial")
    seconds = _median_time(lambda: glmm.confint(method="profile"), args.repeats)
    reference = None if args.no_r else _lme4_glmer_profile(cbpp, args.repeats)
    print(f"\ncbpp glmer {CBPP_FORMULA} (Laplace): medians of {args.repeats} runs")
    print(f"{'case':<28} {'mixedmodels s':>14} {'lme4 s':>9} {'ratio':>7}")
    _row("profile CIs", seconds, reference)


if __name__ == "__main__":
    main()
