"""Timing of residual structures and glmmTMB covariance structures, side by side with
nlme / glmmTMB on the same data in the same run.

Usage: ``python benchmarks/bench_residual.py [--repeats N] [--no-r]``

Prints per case the median wall time of mixedmodels and of R (when ``Rscript`` with nlme
and glmmTMB is installed), R's time over ours, and both log-likelihoods so a speed-up
never hides a worse optimum.  Goals (issue 4): faster than nlme on the gpa varIdent and
corAR1 fits, at least 5x faster than glmmTMB on the gpa ar1 model.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

import mixedmodels as mm

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
R_SCRIPT = Path(__file__).with_name("time_residual.R")


@dataclass
class Case:
    name: str
    formula: str
    data: str
    reml: bool = True
    options: dict[str, Any] = field(default_factory=dict)


def _gpa() -> pd.DataFrame:
    path = SHARED / "data" / "gpa.csv"
    if path.exists():
        return pd.read_csv(path)
    return mm.datasets.gpa(seed=1)


def _crossed() -> pd.DataFrame:
    fixture = json.loads((ROOT / "tests" / "fixtures" / "residual_structures.json").read_text())
    return pd.DataFrame(fixture["data"]["crossed"]["columns"])


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Grouping columns as categoricals with R's (sorted) level order."""
    frame = frame.copy()
    for name in ("student", "occas", "a", "b", "stratum"):
        if name in frame.columns:
            frame[name] = pd.Categorical(
                frame[name].astype(str), categories=sorted(frame[name].astype(str).unique())
            )
    return frame


CASES = [
    Case(
        "gpa varIdent",
        "gpa ~ occasion + (1 | student)",
        "gpa",
        options={"variance": mm.VarIdent("occasion")},
    ),
    Case(
        "gpa corAR1",
        "gpa ~ occasion + (1 | student)",
        "gpa",
        options={"correlation": mm.CorAR1(time="occasion", group="student")},
    ),
    Case(
        "gpa ar1 (glmmTMB)",
        "gpa ~ occasion + ar1(0 + occas | student) + (1 | student)",
        "gpa",
        reml=False,
    ),
    Case(
        "gpa diag (glmmTMB)",
        "gpa ~ occasion + (1 | student) + diag(0 + occas | student)",
        "gpa",
        reml=False,
    ),
    Case(
        "crossed varIdent",
        "y ~ x + (1 | a) + (1 | b)",
        "crossed",
        reml=False,
        options={"variance": mm.VarIdent("stratum", reference="high")},
    ),
]


def time_python(case: Case, data: pd.DataFrame, repeats: int) -> tuple[float, float, int]:
    times = []
    model = None
    for _ in range(repeats + 1):  # the first run is a warm-up (imports, caches)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = mm.lmer(case.formula, data, reml=case.reml, **case.options)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]), model.loglik, model.opt_summary.evaluations


def time_r(case: Case, csv: Path, repeats: int) -> tuple[float, float] | None:
    if not shutil.which("Rscript"):
        return None
    result = subprocess.run(
        ["Rscript", str(R_SCRIPT), str(csv), case.name, str(repeats)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print(f"  R failed: {result.stderr.strip().splitlines()[-1:]}")
        return None
    seconds, loglik = result.stdout.strip().splitlines()[-1].split()
    return float(seconds), float(loglik)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--no-r", action="store_true", help="skip the R timings")
    args = parser.parse_args()
    raw = {"gpa": _gpa(), "crossed": _crossed()}
    print(
        f"{'case':20s} {'ours (s)':>9s} {'evals':>6s} {'R (s)':>9s} {'R/ours':>7s}  logLik ours / R"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            data = _prepare(raw[case.data])
            ours, loglik, evals = time_python(case, data, args.repeats)
            line = f"{case.name:20s} {ours:9.4f} {evals:6d}"
            r = None
            if not args.no_r:
                csv = Path(tmp) / f"{case.data}.csv"
                if not csv.exists():
                    raw[case.data].to_csv(csv, index=False)
                r = time_r(case, csv, args.repeats)
            if r is None:
                print(f"{line} {'-':>9s} {'-':>7s}  {loglik:.4f}")
            else:
                print(f"{line} {r[0]:9.4f} {r[0] / ours:7.1f}  {loglik:.4f} / {r[1]:.4f}")


if __name__ == "__main__":
    main()
