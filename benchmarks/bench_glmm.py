"""GLMM timing: mixedmodels.glmer against lme4::glmer on the same data, same run.

Usage: ``python benchmarks/bench_glmm.py [--repeats N] [--no-r]``.  Prints medians,
the ratio to lme4 and the two log-likelihoods (ours minus lme4's, ≥ 0 is better).
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
from pathlib import Path

import pandas as pd

import mixedmodels as mm

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
R_SCRIPT = Path(__file__).with_name("time_glmer.R")


def _verbagg() -> pd.DataFrame:
    fixture = json.loads((ROOT / "tests" / "fixtures" / "lme4_glmm.json").read_text())
    return pd.DataFrame(fixture["data"]["VerbAgg"]["columns"])


def _speed_dating() -> pd.DataFrame:
    path = SHARED / "data" / "speed_dating.csv"
    return pd.read_csv(path) if path.exists() else mm.datasets.speed_dating(seed=1)


CASES = [
    ("VerbAgg", "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", _verbagg),
    (
        "speed_dating",
        "decision ~ sex + samerace + attractive_sc + sincere_sc + intelligent_sc + (1 | iid)",
        _speed_dating,
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-r", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, formula, make in CASES:
            data = make()
            data = data.dropna(subset=[c for c in data.columns if c in formula])
            times, model = [], None
            for _ in range(args.repeats):
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = mm.glmer(formula, data, family="binomial")
                times.append(time.perf_counter() - start)
            ours = statistics.median(times)
            line = f"{name:14s} n={len(data):6d} mixedmodels {ours:7.3f}s"
            line += f" ({model.problem.evaluations} evals)"
            if not args.no_r and shutil.which("Rscript"):
                csv = Path(tmp) / f"{name}.csv"
                data.to_csv(csv, index=False)
                out = subprocess.run(
                    ["Rscript", str(R_SCRIPT), str(csv), formula, str(args.repeats)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if out.returncode == 0:
                    seconds, loglik = map(float, out.stdout.split()[-2:])
                    line += (
                        f"  lme4 {seconds:7.3f}s  ratio {ours / seconds:6.3f}"
                        f"  ΔlogLik {model.loglik - loglik:+.2e}"
                    )
                else:
                    line += f"  lme4 failed: {out.stderr.strip()[-200:]}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
