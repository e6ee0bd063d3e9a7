"""This tree against an earlier commit, side by side in one run: every benchmark case.

Usage: ``python benchmarks/compare.py BASE [--only NAME ...] [--rounds N] [--repeats N]``

BASE is a git revision; its package is checked out into a temporary worktree and each
case runs in its own process with ``PYTHONPATH`` on that tree's ``src`` or on this one's,
alternating over ``--rounds`` rounds so that a shared machine's load hits both alike.  The
cases are the fits of :data:`cases.CASES` (``fit_worker.py``) and the inference tasks of
``task_worker.py`` (profile intervals, bootstrap).  Printed: the median over rounds of
each side's median seconds, their ratio, and ``> 5%`` where this tree is slower by more
than 5% (the rule of the house's issues).  Never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from cases import CASES, ROOT

HERE = Path(__file__).resolve().parent
FIT_WORKER = HERE / "fit_worker.py"
TASK_WORKER = HERE / "task_worker.py"


def _seconds(command: list[str], src: Path) -> float:
    env = dict(os.environ, PYTHONPATH=f"{src}{os.pathsep}{HERE}")
    run = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if run.returncode != 0:
        print(f"  failed on {src}: {run.stderr.strip()[-300:]}", file=sys.stderr)
        return float("nan")
    return float(json.loads(run.stdout.strip().splitlines()[-1])["seconds"])


def _commands(only: list[str] | None, repeats: int | None) -> dict[str, list[str]]:
    from task_worker import TASKS

    commands = {}
    for case in CASES:
        csv = case.ensure_csv()
        if csv is None:
            continue
        n = str(repeats or case.repeats)
        commands[case.name] = [
            sys.executable, str(FIT_WORKER), "mixedmodels", str(csv), case.formula, n,
            str(case.reml), case.family, ",".join(case.factors),
        ]  # fmt: skip
    for task in TASKS:
        commands[task] = [sys.executable, str(TASK_WORKER), task, str(repeats or 3)]
    return {
        name: command
        for name, command in commands.items()
        if not only or any(o.lower() in name.lower() for o in only)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base", help="git revision to compare against")
    parser.add_argument("--only", nargs="*", help="case names to run (substring match)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, help="override each case's repeats")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT.parent) as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base_tree),
             args.base], check=True,
        )  # fmt: skip
        try:
            sides = {"base": base_tree / "src", "this": ROOT / "src"}
            print(f"| case | {args.base} s | this tree s | this/base | |")
            print("|---|---|---|---|---|")
            for name, command in _commands(args.only, args.repeats).items():
                times: dict[str, list[float]] = {side: [] for side in sides}
                for _ in range(args.rounds):
                    for side, src in sides.items():
                        times[side].append(_seconds(command, src))
                base, this = (statistics.median(times[s]) for s in sides)
                ratio = this / base
                flag = "> 5%" if ratio > 1.05 else ""
                print(f"| {name} | {base:.4f} | {this:.4f} | {ratio:.3f} | {flag} |", flush=True)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)],
                check=False,
            )


if __name__ == "__main__":
    main()
