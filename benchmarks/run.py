"""Timing suite: mixedmodels against lme4 (and glmmTMB) and the glmm peer, same data, same run.

Usage: ``python benchmarks/run.py [--only NAME ...] [--repeats N] [--rounds N] [--no-r]
[--no-glmm]`` (``make bench``; ``make bench-env`` first creates the venv with glmm).

Each engine fits each case in its own process (``fit_worker.py``, ``time_r.R``), reading
the same CSV with pandas or R; the cases of one row run back to back, so a shared
machine's load hits them alike.  Printed per row: medians, our time over lme4's and over
glmm's, our log-likelihood minus each peer's (≥ 0: our optimum is at least as good), the
evaluations and each process's peak memory.  Never asserted in tests.

``--rounds N`` runs our worker and glmm's N times each, alternating, and reports the
median of their medians and the largest peak memory: this shared 2-core VM has slow
spells of tens of seconds that doubled one engine's millisecond row and not the other's
in a single round (lme4 runs once: its ratios are not close).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from cases import CASES, ROOT, Case

WORKER = Path(__file__).with_name("fit_worker.py")
R_SCRIPT = Path(__file__).with_name("time_r.R")
BENCH_PYTHON = ROOT / ".bench-venv" / "bin" / "python"


def _run(command: list[str], label: str) -> dict | None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(f"  {label} failed: {result.stderr.strip()[-400:]}", file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def _arguments(case: Case, csv: Path) -> list[str]:
    return [
        str(csv),
        case.formula,
        str(case.repeats),
        str(case.reml),
        case.family,
        ",".join(case.factors),
    ]


def _combined(results: list[dict | None]) -> dict | None:
    """One engine's rounds: the median of the medians, the largest peak memory."""
    done = [r for r in results if r is not None]
    if not done:
        return None
    return {
        **done[0],
        "seconds": statistics.median(r["seconds"] for r in done),
        "peak_mb": max(r["peak_mb"] for r in done),
    }


def measure(
    case: Case, csv: Path, use_r: bool, use_glmm: bool, rounds: int = 1
) -> dict[str, dict | None]:
    ours, glmm = [], []
    for _ in range(rounds):
        command = [sys.executable, str(WORKER), "mixedmodels", *_arguments(case, csv)]
        ours.append(_run(command, "mixedmodels"))
        if use_glmm and "glmm" in case.peers:
            command = [str(BENCH_PYTHON), str(WORKER), "glmm", *_arguments(case, csv)]
            glmm.append(_run(command, "glmm"))
    out: dict[str, dict | None] = {"mixedmodels": _combined(ours)}
    for peer in case.peers:
        if peer == "glmm":
            out[peer] = _combined(glmm)
        else:
            out[peer] = (
                _run(["Rscript", str(R_SCRIPT), peer, *_arguments(case, csv)], peer)
                if use_r
                else None
            )
    return out


def _ratio(ours: dict | None, peer: dict | None) -> float:
    return ours["seconds"] / peer["seconds"] if ours and peer else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="case names to run (substring match)")
    parser.add_argument("--repeats", type=int, help="override the repeats of every case")
    parser.add_argument(
        "--rounds", type=int, default=1, help="alternate our worker and glmm's N times"
    )
    parser.add_argument("--no-r", action="store_true", help="skip lme4/glmmTMB")
    parser.add_argument("--no-glmm", action="store_true", help="skip the glmm peer")
    args = parser.parse_args()
    use_r = not args.no_r and shutil.which("Rscript") is not None
    use_glmm = not args.no_glmm and BENCH_PYTHON.exists()
    if not args.no_glmm and not use_glmm:
        print("glmm peer skipped: run `make bench-env` first", file=sys.stderr)
    rows = []
    for case in CASES:
        if args.only and not any(o.lower() in case.name.lower() for o in args.only):
            continue
        if args.repeats:
            case.repeats = args.repeats
        csv = case.ensure_csv()
        if csv is None:
            print(f"{case.name}: data unavailable (needs R to export it)", file=sys.stderr)
            continue
        result = measure(case, csv, use_r, use_glmm, args.rounds)
        ours = result["mixedmodels"]
        r_peer = "glmmTMB" if "glmmTMB" in case.peers else "lme4"
        r, peer = result.get(r_peer), result.get("glmm")
        row = {
            "case": case.name,
            "ours_s": ours["seconds"] if ours else math.nan,
            "evals": ours["evaluations"] if ours else 0,
            f"{r_peer}_s": r["seconds"] if r else math.nan,
            "glmm_s": peer["seconds"] if peer else math.nan,
            "ours/R": _ratio(ours, r),
            "ours/glmm": _ratio(ours, peer),
            "dlogLik_R": ours["loglik"] - r["loglik"] if ours and r else math.nan,
            "dlogLik_glmm": ours["loglik"] - peer["loglik"] if ours and peer else math.nan,
            "MB_ours": ours["peak_mb"] if ours else math.nan,
            "MB_glmm": peer["peak_mb"] if peer else math.nan,
            "MB_R": r["peak_mb"] if r else math.nan,
        }
        rows.append(row)
        print(
            "  ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            ),
            flush=True,
        )
    print()
    header = [
        "case", "ours", "lme4/glmmTMB", "glmm", "ours/R", "ours/glmm", "ΔlogLik R",
        "ΔlogLik glmm", "evals", "MB ours", "MB glmm", "MB R",
    ]  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        r_time = row.get("lme4_s", row.get("glmmTMB_s", math.nan))
        print(
            f"| {row['case']} | {row['ours_s']:.4f} | {r_time:.4f} | {row['glmm_s']:.4f} "
            f"| {row['ours/R']:.3f} | {row['ours/glmm']:.2f} | {row['dlogLik_R']:+.1e} "
            f"| {row['dlogLik_glmm']:+.1e} | {row['evals']} | {row['MB_ours']:.0f} "
            f"| {row['MB_glmm']:.0f} | {row['MB_R']:.0f} |"
        )


if __name__ == "__main__":
    main()
