"""Timing suite: mixedmodels against lme4 on the same data, in the same run.

Usage: ``python benchmarks/run.py [--only NAME ...] [--repeats N] [--no-r]``

Prints, per case, the median wall time over repeats for mixedmodels and (when
``Rscript`` with lme4 is installed) for lme4, their ratio, and the two log-likelihoods
so a speed-up never hides a worse optimum.  Never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import mixedmodels as mm

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
R_SCRIPT = Path(__file__).with_name("time_lme4.R")


@dataclass
class Case:
    name: str
    formula: str
    make: Callable[[], pd.DataFrame]
    repeats: int
    reml: bool = True


def _sleepstudy() -> pd.DataFrame:
    fixture = json.loads((ROOT / "tests" / "fixtures" / "lme4_lmm.json").read_text())
    return pd.DataFrame(fixture["data"]["sleepstudy"]["columns"])


def _seed_or_simulated(name: str) -> pd.DataFrame:
    path = SHARED / "data" / f"{name}.csv"
    if path.exists():
        return pd.read_csv(path)
    return getattr(mm.datasets, name)(seed=1)


def _slopes_1m() -> pd.DataFrame:
    rng = np.random.default_rng(20_000)
    groups, per = 20_000, 50
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=g.size)
    b0 = rng.normal(scale=0.8, size=groups)
    b1 = rng.normal(scale=0.3, size=groups)
    y = 1.0 + 0.5 * x + b0[g] + b1[g] * x + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def _crossed_500k() -> pd.DataFrame:
    rng = np.random.default_rng(500)
    n = 500_000
    a = rng.integers(0, 5_000, size=n)
    b = rng.integers(0, 500, size=n)
    x = rng.normal(size=n)
    y = 2.0 + 0.3 * x + rng.normal(scale=0.7, size=5_000)[a] + rng.normal(scale=0.4, size=500)[b]
    y = y + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "a": a, "b": b})


def _insteval_shaped() -> pd.DataFrame:
    """73,421 ratings by 2,972 students of 1,128 lecturers in 14 departments (nested)."""
    rng = np.random.default_rng(73)
    n, n_s, n_d, n_dept = 73_421, 2_972, 1_128, 14
    s = rng.integers(0, n_s, size=n)
    d = rng.integers(0, n_d, size=n)
    dept_of_d = rng.integers(0, n_dept, size=n_d)
    dept = dept_of_d[d]
    service = rng.integers(0, 2, size=n)
    y = (
        3.2
        - 0.07 * service
        + rng.normal(scale=0.32, size=n_s)[s]
        + rng.normal(scale=0.52, size=n_d)[d]
        + rng.normal(scale=0.08, size=n_dept)[dept]
        + rng.normal(scale=1.18, size=n)
    )
    return pd.DataFrame({"y": y, "service": service, "s": s, "d": d, "dept": dept})


CASES = [
    Case("sleepstudy", "Reaction ~ Days + (Days | Subject)", _sleepstudy, 20),
    Case(
        "gpa slopes",
        "gpa ~ occasion + (1 + occasion | student)",
        lambda: _seed_or_simulated("gpa"),
        20,
    ),
    Case(
        "pupils crossed",
        "achievement ~ sex + ses + (1 | primary_school_id) + (1 | secondary_school_id)",
        lambda: _seed_or_simulated("pupils"),
        10,
    ),
    Case("InstEval-shaped", "y ~ service + (1 | s) + (1 | d) + (1 | dept)", _insteval_shaped, 3),
    Case("1M slopes", "y ~ x + (x | g)", _slopes_1m, 3),
    Case("500k crossed", "y ~ x + (1 | a) + (1 | b)", _crossed_500k, 3),
]


def time_python(case: Case, data: pd.DataFrame) -> tuple[float, float, int]:
    times = []
    model = None
    for _ in range(case.repeats):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = mm.lmer(case.formula, data, reml=case.reml)
        times.append(time.perf_counter() - start)
    return statistics.median(times), model.loglik, model.opt_summary.evaluations


def time_r(case: Case, csv: Path) -> tuple[float, float] | None:
    if not shutil.which("Rscript"):
        return None
    result = subprocess.run(
        [
            "Rscript",
            str(R_SCRIPT),
            str(csv),
            case.formula,
            str(case.repeats),
            str(case.reml).upper(),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print(f"  lme4 failed on {case.name}: {result.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    seconds, loglik = result.stdout.strip().splitlines()[-1].split()
    return float(seconds), float(loglik)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="case names to run (substring match)")
    parser.add_argument("--repeats", type=int, help="override the repeats of every case")
    parser.add_argument("--no-r", action="store_true", help="skip lme4 even when R is installed")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            if args.only and not any(o.lower() in case.name.lower() for o in args.only):
                continue
            if args.repeats:
                case.repeats = args.repeats
            data = case.make()
            mm.lmer(case.formula, data.head(min(len(data), 5000)))  # warm caches and imports
            py_time, py_loglik, evals = time_python(case, data)
            r = None
            if not args.no_r:
                csv = Path(tmp) / f"{case.name.replace(' ', '_')}.csv"
                data.to_csv(csv, index=False)
                r = time_r(case, csv)
            row = {
                "case": case.name,
                "rows": len(data),
                "mixedmodels_s": py_time,
                "evals": evals,
                "lme4_s": r[0] if r else float("nan"),
                "ratio": py_time / r[0] if r else float("nan"),
                "loglik": py_loglik,
                "loglik_minus_lme4": py_loglik - r[1] if r else float("nan"),
            }
            rows.append(row)
            print(
                f"{case.name:16s} n={len(data):>8d}  mixedmodels {py_time:8.3f}s ({evals} evals)"
                + (
                    f"  lme4 {r[0]:8.3f}s  ratio {py_time / r[0]:6.3f}"
                    f"  ΔlogLik {py_loglik - r[1]:+.2e}"
                    if r
                    else ""
                ),
                flush=True,
            )
    table = pd.DataFrame(rows)
    print()
    print(
        table.to_markdown(index=False, floatfmt=".4g")
        if _has_tabulate()
        else table.to_string(index=False)
    )


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
