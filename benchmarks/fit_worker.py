"""Fits one benchmark case in this process and prints one JSON line.

Usage: ``python fit_worker.py ENGINE CSV FORMULA REPEATS REML FAMILY FACTOR,...``
with ENGINE ``mixedmodels`` or ``glmm`` (run by the interpreter of the benchmark venv,
``make bench-env``, where glmm is installed; glmm is never a dependency of the package).

The CSV is read with pandas (not timed); the fit is timed ``REPEATS`` times after one
warm-up fit; the line holds the median seconds, the log-likelihood, the evaluations and
the process's peak resident memory (VmHWM) in MB.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import warnings

import pandas as pd


def peak_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def fit_mixedmodels(data, formula, reml, family):
    import mixedmodels as mm

    if family == "gaussian":
        model = mm.lmer(formula, data, reml=reml)
        return model, model.loglik, model.opt_summary.evaluations
    model = mm.glmer(formula, data, family=family)
    return model, model.loglik, model.problem.evaluations


def fit_glmm(data, formula, reml, family):
    import glmm

    # glmm's Satterthwaite pass is switched off: lmer computes no df during a fit
    kwargs = {"reml": reml} if family == "gaussian" else {}
    model = glmm.fit(data, formula, family, satterthwaite=False, **kwargs)
    return model, model.loglik, model.n_eval


def main() -> None:
    engine, csv, formula, repeats, reml, family, factors = sys.argv[1:8]
    data = pd.read_csv(csv)
    for name in filter(None, factors.split(",")):
        data[name] = data[name].astype(str)
        if engine == "mixedmodels":
            data[name] = data[name].astype("category")
    fit = {"mixedmodels": fit_mixedmodels, "glmm": fit_glmm}[engine]
    reml_flag = reml.lower() == "true"
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(data, formula, reml_flag, family)  # warm-up: imports, compiled kernels
        for _ in range(int(repeats)):
            start = time.perf_counter()
            _, loglik, evaluations = fit(data, formula, reml_flag, family)
            times.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "seconds": statistics.median(times),
                "loglik": float(loglik),
                "evaluations": int(evaluations),
                "peak_mb": peak_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
