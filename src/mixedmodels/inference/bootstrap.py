"""Parametric bootstrap of a linear mixed model, as lme4's ``bootMer`` (``use.u = FALSE``).

Each replicate draws new random effects b* = Λ̂u*, u* ~ N(0, σ̂²I), and new residuals
ε* ~ N(0, σ̂²/w), forms y* = Xβ̂ + offset + Zb* + ε*, and refits warm-started from θ̂.  The
design is reused: only the y column of the cross-products is recomputed
(:meth:`CrossProducts.with_response`), so a refit costs one O(n) pass plus the
optimization.  Replicate i draws from ``SeedSequence(seed).spawn(nsim)[i]``, so results
do not depend on the number of worker processes.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.linalg as sla
from scipy import stats

from .._progress import progress_bar
from .._protocols import GeneralizedMixedModel
from .._threads import blas_threads_for
from .._warnings import warn
from ..errors import refuse
from ..lmm.optimize import REFIT_CONTROL
from ._params import VarianceLayout, theta_to_sdcor

if TYPE_CHECKING:  # pragma: no cover
    from .._protocols import MixedModel as LinearMixedModel

_BOOT_TYPES = ("percentile", "basic", "normal")


@dataclasses.dataclass
class BootstrapResult:
    """Replicates of a parametric bootstrap.

    Attributes
    ----------
    replicates : DataFrame
        One row per replicate: the variance parameters (lme4 names), σ, the fixed effects
        and the values of ``func``; a failed refit is a row of NaN.
    estimates : Series
        The same statistics on the fitted model.
    n_failed : int
        Replicates whose refit failed.
    seed : int or None
    """

    replicates: pd.DataFrame
    estimates: pd.Series
    n_failed: int
    seed: int | None

    def confint(self, level: float = 0.95, type: str = "percentile") -> pd.DataFrame:
        """Bootstrap intervals: ``"percentile"`` (quantiles of the replicates), ``"basic"``
        (2θ̂ − quantiles) or ``"normal"`` (bias-corrected θ̂ ± z·SD), as ``boot.ci``."""
        if type not in _BOOT_TYPES:
            raise ValueError(f"type: expecting one of {set(_BOOT_TYPES)}. Got {type!r}.")
        alpha = (1.0 - level) / 2.0
        reps = self.replicates
        est = self.estimates
        if type == "normal":
            z = stats.norm.ppf(1.0 - alpha)
            centre = 2 * est - reps.mean()
            sd = reps.std(ddof=1)
            lower, upper = centre - z * sd, centre + z * sd
        else:
            q_low = reps.quantile(alpha)
            q_high = reps.quantile(1.0 - alpha)
            if type == "percentile":
                lower, upper = q_low, q_high
            else:
                lower, upper = 2 * est - q_high, 2 * est - q_low
        table = pd.DataFrame({"lower": lower, "upper": upper})
        table.index = [("Intercept" if i == "(Intercept)" else i) for i in table.index]
        return table


class _Simulator:
    """What one replicate of an lmer fit needs: its objective
    (:class:`~mixedmodels.models.objective.LmmObjective`), which draws the responses (residual
    structure included) and refits each on the same design."""

    def __init__(self, model: LinearMixedModel, func: Callable[[Any], Any] | None):
        self.model = model
        self.func = func
        self.objective = model.objective
        self.names = list(VarianceLayout.of(model.crossprods).names) + list(
            model.design.fixed_names
        )

    def statistics(self, objective: Any, x: np.ndarray) -> np.ndarray:
        beta, sigma = objective.beta_sigma(x)
        return np.concatenate([objective.to_sdcor(x, sigma), beta])

    def replicate(self, seed: np.random.SeedSequence) -> tuple[np.ndarray, Any]:
        y = self.objective.simulate(1, np.random.default_rng(seed))[:, 0]
        objective = self.objective.with_response(y)
        opt = objective.fit(control=REFIT_CONTROL)
        stats_ = self.statistics(objective, opt.final)
        extra = None
        if self.func is not None:
            extra = self.func(objective.refitted_model(opt))
        return stats_, extra

    def run(self, seeds: list[np.random.SeedSequence]) -> list[tuple[np.ndarray | None, Any]]:
        out = []
        for s in seeds:
            try:
                out.append(self.replicate(s))
            except (FloatingPointError, np.linalg.LinAlgError, sla.LinAlgError, ValueError):
                out.append((None, None))
        return out


class _GlmmSimulator(_Simulator):
    """Replicates of a glmer fit through its objective
    (:class:`~mixedmodels.models.objective.GlmmObjective`): responses from its ``simulate`` (new
    random effects), refitted by its ``fit`` (glmer's second stage only), warm-started
    at (θ̂, β̂), with the same family, weights and offset.  No σ for binomial and Poisson
    fits; Gamma and inverse Gaussian replicates report σ and SDs scaled by it, as the
    fit's ``varcorr``."""

    def __init__(self, model: Any, func: Callable[[Any], Any] | None):
        self.model = model
        self.func = func
        self.objective = model.objective  # GlmmObjective: draws and refits
        self.cp = model.crossprods
        self.theta = model.theta
        self.beta = model.fixef.to_numpy()
        self.lower = np.concatenate([self.cp.lower_bounds(), np.full(self.beta.size, -np.inf)])
        self.scaled = not model.family.scale_free
        variance_names = list(VarianceLayout.of(self.cp).names)
        if not self.scaled:
            variance_names = variance_names[:-1]
        self.names = variance_names + list(model.design.fixed_names)

    def statistics(
        self, cp, theta: np.ndarray, beta: np.ndarray | None = None, sigma: float = 1.0
    ) -> np.ndarray:
        beta = self.beta if beta is None else beta
        sdcor = theta_to_sdcor(cp, theta, sigma)
        return np.concatenate([sdcor if self.scaled else sdcor[:-1], beta])

    def replicate(self, seed: np.random.SeedSequence) -> tuple[np.ndarray, Any]:
        if self.func is not None:
            raise refuse(
                "glmer fit",
                "bootstrap(func=)",
                "bootstrap() without func (its replicates hold the SDs, correlations and "
                "fixed effects)",
                "the refits of a glmer bootstrap are not fitted models",
            )
        y = self.objective.simulate(1, np.random.default_rng(seed))[:, 0]
        objective = self.objective.with_response(y)
        opt = objective.fit()
        n_theta = self.theta.size
        theta, beta = opt.final[:n_theta], opt.final[n_theta:]
        sigma = objective.dispersion(opt.final) if self.scaled else 1.0
        extra = None
        return self.statistics(self.cp, theta, beta, sigma), extra


_WORKER: _Simulator | None = None  # set in the parent before forking


def _run_chunk(seeds: list[np.random.SeedSequence]) -> list[tuple[np.ndarray | None, Any]]:
    assert _WORKER is not None
    return _WORKER.run(seeds)


def _init_worker(simulator: _Simulator) -> None:
    global _WORKER
    _WORKER = simulator


def bootstrap(
    model: LinearMixedModel,
    nsim: int,
    seed: int | None = None,
    func: Callable[[Any], Any] | None = None,
    n_jobs: int | None = None,
    progress: bool | None = None,
) -> BootstrapResult:
    """See :meth:`mixedmodels.inference.InferenceMixin.bootstrap`."""
    with blas_threads_for(model.crossprods):
        return _bootstrap(model, nsim, seed=seed, func=func, n_jobs=n_jobs, progress=progress)


def _bootstrap(
    model: LinearMixedModel,
    nsim: int,
    seed: int | None = None,
    func: Callable[[Any], Any] | None = None,
    n_jobs: int | None = None,
    progress: bool | None = None,
) -> BootstrapResult:
    """The bootstrap itself (BLAS threads as chosen by :func:`bootstrap`)."""
    global _WORKER
    if not isinstance(nsim, int | np.integer) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer. Got {nsim!r}.")
    if n_jobs is None or n_jobs == 0:
        n_jobs = 1
    if not isinstance(n_jobs, int | np.integer):
        raise ValueError(f"n_jobs must be an integer (-1 for all cores). Got {n_jobs!r}.")
    if n_jobs < 0:
        n_jobs = os.cpu_count() or 1
    n_jobs = int(min(n_jobs, nsim))
    seeds = np.random.SeedSequence(seed).spawn(int(nsim))
    simulator_for = getattr(model, "bootstrap_simulator", None)  # fits on Dask data
    if simulator_for is not None:
        simulator: _Simulator = simulator_for(func, seeds)
        n_jobs = 1  # the replicates' responses were drawn in one pass; refits are cheap
    elif isinstance(model, GeneralizedMixedModel):
        if func is not None:
            raise refuse(
                "glmer fit",
                "bootstrap(func=)",
                "bootstrap() without func (its replicates hold the SDs, correlations and "
                "fixed effects)",
                "the refits of a glmer bootstrap are not fitted models",
            )
        simulator = _GlmmSimulator(model, func)
    else:
        simulator = _Simulator(model, func)
    bar = progress_bar(progress, total=int(nsim), desc="bootstrap", unit="refit")
    results: list[tuple[np.ndarray | None, Any]] = []
    try:
        if n_jobs == 1:
            for s in seeds:
                results.extend(simulator.run([s]))
                bar.update(1)
        else:
            size = max(1, min(25, int(np.ceil(nsim / (4 * n_jobs)))))
            chunks = [seeds[i : i + size] for i in range(0, len(seeds), size)]
            methods = multiprocessing.get_all_start_methods()
            if "fork" in methods:  # the children inherit the model: nothing to pickle
                _WORKER = simulator
                executor = ProcessPoolExecutor(
                    n_jobs, mp_context=multiprocessing.get_context("fork")
                )
            else:  # pragma: no cover - platforms without fork
                executor = ProcessPoolExecutor(
                    n_jobs, initializer=_init_worker, initargs=(simulator,)
                )
            with executor:
                for chunk_result in executor.map(_run_chunk, chunks):
                    results.extend(chunk_result)
                    bar.update(len(chunk_result))
    finally:
        bar.close()
        _WORKER = None
    names = simulator.names
    if isinstance(simulator, _GlmmSimulator):
        estimates = simulator.statistics(model.crossprods, model.theta, sigma=model.sigma)
    else:
        estimates = simulator.statistics(model.objective, model.objective.start)
    extra_names: list[str] = []
    if func is not None:
        value = func(model)
        extra_est = np.atleast_1d(np.asarray(value, dtype=float))
        if isinstance(value, pd.Series):
            extra_names = [str(i) for i in value.index]
        else:
            extra_names = [f"func_{i}" for i in range(extra_est.size)]
        estimates = np.concatenate([estimates, extra_est])
    rows = np.full((int(nsim), len(names) + len(extra_names)), np.nan)
    failed = 0
    for i, (stat, extra) in enumerate(results):
        if stat is None:
            failed += 1
            continue
        rows[i, : len(names)] = stat
        if func is not None:
            rows[i, len(names) :] = np.atleast_1d(np.asarray(extra, dtype=float))
    columns = names + extra_names
    if failed:
        warn(
            f"{failed} of {nsim} bootstrap refits failed; their rows are NaN.",
            UserWarning,
        )
    return BootstrapResult(
        replicates=pd.DataFrame(rows, columns=columns),
        estimates=pd.Series(estimates, index=columns),
        n_failed=failed,
        seed=seed,
    )
