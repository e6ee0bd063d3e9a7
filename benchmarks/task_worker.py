"""Times one inference task in this process and prints one JSON line (``compare.py``).

Usage: ``python task_worker.py TASK REPEATS`` with TASK one of :data:`TASKS`.  The data
are the committed fixtures (sleepstudy, cbpp); the model is fitted once, untimed, and the
task timed ``REPEATS`` times after a warm-up; the line holds the median seconds.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable

from bench_inference import CBPP_FORMULA, FORMULA, _cbpp, _sleepstudy


def _sleepstudy_model():
    import mixedmodels as mm

    return mm.lmer(FORMULA, _sleepstudy())


def _cbpp_model():
    import mixedmodels as mm

    return mm.glmer(CBPP_FORMULA, _cbpp(), family="binomial")


TASKS: dict[str, tuple[Callable, Callable]] = {
    "sleepstudy profile CIs": (_sleepstudy_model, lambda m: m.confint(method="profile")),
    "sleepstudy bootstrap 200": (
        _sleepstudy_model,
        lambda m: m.bootstrap(200, seed=1, progress=False),
    ),
    "cbpp glmer profile CIs": (_cbpp_model, lambda m: m.confint(method="profile")),
}


def main() -> None:
    task, repeats = sys.argv[1], int(sys.argv[2])
    build, run = TASKS[task]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build()
        run(model)  # warm-up: imports, compiled kernels
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run(model)
            times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": statistics.median(times)}))


if __name__ == "__main__":
    main()
