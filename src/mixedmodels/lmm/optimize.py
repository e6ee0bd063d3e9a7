"""Optimization of the profiled deviance: nlopt BOBYQA with lme4's bounds, and the
convergence and singularity checks lme4 makes after the fit."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._warnings import warn
from ..errors import ConvergenceWarning, OptionError, SingularFitWarning

#: lme4's ``isSingular`` tolerance on bounded θ.
SINGULAR_TOLERANCE = 1e-4
#: lme4's ``check.conv.grad`` tolerance.
GRADIENT_TOLERANCE = 2e-3


@dataclass
class OptSummary:
    """What the optimizer did: enough to inspect, save and restore a fit without refitting."""

    initial: np.ndarray
    lower: np.ndarray
    final: np.ndarray
    objective: float
    evaluations: int
    optimizer: str
    return_code: str
    ftol_rel: float
    xtol_abs: float
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None
    messages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Control:
    """Optimizer settings (``control=`` of :func:`mixedmodels.lmer`).

    Attributes
    ----------
    optimizer : str
        ``"bobyqa"`` (nlopt LN_BOBYQA, default) or ``"nelder_mead"``.
    ftol_rel, ftol_abs, xtol_abs : float
        Stopping tolerances.
    maxeval : int
    calc_derivs : bool or None
        Gradient and Hessian at the optimum for the convergence check (and, in glmer, for
        the covariance of β̂, as lme4's ``vcov``). ``None``: always in glmer, as lme4's
        ``calc.derivs = TRUE``; in lmer and the residual-structure fits, where they only
        check convergence, when there are fewer than 10,000 observations.
    """

    optimizer: str = "bobyqa"
    ftol_rel: float = 1e-12
    ftol_abs: float = 1e-10
    xtol_abs: float = 1e-10
    maxeval: int = 100_000
    calc_derivs: bool | None = None

    @classmethod
    def from_any(cls, control: Any) -> Control:
        """A :class:`Control` from None (the defaults), a Control, or a dict of its fields
        (lme4's ``lmerControl(...)`` as keyword options); an unknown key is refused."""
        if control is None:
            return cls()
        if isinstance(control, Control):
            return control
        if isinstance(control, dict):
            unknown = set(control) - set(cls.__dataclass_fields__)
            if unknown:
                raise OptionError(
                    f"Unknown control option(s) {sorted(unknown)}. Expecting any of "
                    f"{sorted(cls.__dataclass_fields__)}."
                )
            return cls(**control)
        raise OptionError(f"control must be a dict or Control. Got {type(control).__name__}.")

    def wants_derivatives(self, kind: str, nobs: int) -> bool:
        """Whether to compute the gradient and Hessian at the optimum: ``calc_derivs`` if
        set, else the one default of every fit (see the class docstring).

        Parameters
        ----------
        kind : {"lmer", "glmer"}
            ``"lmer"`` for lmer and the residual-structure fits, ``"glmer"`` for glmer.
        nobs : int
            Number of observations of the fit.

        Examples
        --------
        >>> control = Control()
        >>> control.wants_derivatives("lmer", 20_000), control.wants_derivatives("glmer", 20_000)
        (False, True)
        """
        if self.calc_derivs is not None:
            return bool(self.calc_derivs)
        if kind == "glmer":  # the Hessian is the covariance of β̂, as lme4's calc.derivs
            return True
        return nobs < _DERIVATIVES_MAX_NOBS  # lmer: only the convergence check needs them


#: lmer checks convergence with derivatives below this many observations (their finite
#: differences cost 2 θ² deviances, which only the check needs)
_DERIVATIVES_MAX_NOBS = 10_000


_ALGORITHMS = {"bobyqa": "LN_BOBYQA", "nelder_mead": "LN_NELDERMEAD"}

#: lme4's ``nloptwrap`` defaults, used for refits from an estimate (profiles, bootstrap):
#: absolute tolerances of 1e-8 on x and f, no relative one.
REFIT_CONTROL = Control(ftol_rel=0.0, ftol_abs=1e-8, xtol_abs=1e-8)


def relative_step(x0: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """First BOBYQA step for a search started at an estimate (profile and bootstrap refits).

    Parameters
    ----------
    x0 : array
        The estimate (moved inside the bounds first).
    lower, upper : array
        Bounds; infinite for none.

    Returns
    -------
    array
        10% of each coordinate (at least 0.02), at most half the distance to the farther
        bound, to pass as :func:`minimize`'s ``initial_step``.
    """
    x0 = np.clip(np.asarray(x0, dtype=float), lower, upper)
    return _within_bounds(np.maximum(0.1 * np.abs(x0), 0.02), x0, lower, upper)


def _within_bounds(
    step: np.ndarray, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """Cap a first step at half the distance to the farther bound (BOBYQA refuses steps
    wider than its box allows); a coordinate with no room keeps 0.02."""
    room = np.maximum(upper - x0, x0 - lower)
    step = np.minimum(step, np.where(np.isfinite(room), 0.5 * room, step))
    return np.where(step > 0, step, 0.02)


def _nlopt_code_name(code: int) -> str:
    """nlopt's name of a return code (the code itself when it has none here)."""
    import nlopt

    names = {
        nlopt.SUCCESS: "SUCCESS",
        nlopt.STOPVAL_REACHED: "STOPVAL_REACHED",
        nlopt.FTOL_REACHED: "FTOL_REACHED",
        nlopt.XTOL_REACHED: "XTOL_REACHED",
        nlopt.MAXEVAL_REACHED: "MAXEVAL_REACHED",
        nlopt.MAXTIME_REACHED: "MAXTIME_REACHED",
        nlopt.ROUNDOFF_LIMITED: "ROUNDOFF_LIMITED",
    }
    return names.get(code, str(code))


class _Objective:
    """nlopt's objective: ``func``, counted, with a failed factorization mid-search
    returning the start value (so that BOBYQA's quadratic model survives; an inf would
    poison it).  With ``pure`` (``func`` a function of θ alone) the start value and the
    lowest value are kept with θ's bytes, so that BOBYQA's first point (the start
    again) and the end point (the lowest) are not evaluated twice: the same numbers,
    one factorization fewer each."""

    def __init__(self, func: Callable[[np.ndarray], float], x0: np.ndarray, pure: bool):
        self.func = func
        self.pure = pure
        self.count = 0
        self.start = x0.tobytes() if pure else None
        self.start_value = self.best_value = func(x0)
        self.best = self.start

    def __call__(self, x: np.ndarray, grad: np.ndarray) -> float:
        self.count += 1
        if self.count == 1 and self.pure and x.tobytes() == self.start:
            value = self.start_value
        else:
            value = self.func(x)
        if self.pure and value < self.best_value:
            self.best_value, self.best = value, x.tobytes()
        return value if math.isfinite(value) else self.start_value

    def value_at(self, x: np.ndarray) -> float:
        """``func(x)``, from memory when ``pure`` and x is the lowest point seen."""
        return self.best_value if self.pure and x.tobytes() == self.best else self.func(x)


def minimize(
    func: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    control: Control,
    initial_step: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    pure: bool = False,
) -> OptSummary:
    """Minimize ``func`` from ``x0`` subject to ``lower <= x <= upper`` with nlopt.

    Parameters
    ----------
    func : callable
        The objective; a non-finite value counts as the starting value, so BOBYQA's
        quadratic model survives a failed evaluation.
    x0 : array
        Starting point, moved inside the bounds first.
    lower, upper : array
        Bounds (``-inf``/``inf`` for none); no upper bounds by default.
    control : Control
        Algorithm and stopping tolerances.
    initial_step : array, optional
        First step per coordinate; 0.75 by default (θ starts at the identity), capped
        at half the room to the farther bound when there are upper bounds.
        :func:`relative_step` suits a refit started at an estimate.
    pure : bool, default False
        Whether ``func`` is a function of θ alone (the LMM's profiled deviance; not
        PIRLS, which starts from the previous evaluation's modes and leaves them at the
        last point): the start and the end point are then not evaluated twice.

    Returns
    -------
    OptSummary
        ``final`` inside the bounds and ``objective = func(final)``.
    """
    import nlopt

    if control.optimizer not in _ALGORITHMS:
        raise OptionError(
            f"optimizer: expecting one of {set(_ALGORITHMS)}. Got {control.optimizer!r}."
        )
    finite_lower = np.where(np.isfinite(lower), lower, -np.inf)
    finite_upper = np.full(np.size(x0), np.inf) if upper is None else np.asarray(upper, float)
    finite_upper = np.where(np.isfinite(finite_upper), finite_upper, np.inf)
    x0 = np.clip(np.asarray(x0, dtype=float), finite_lower, finite_upper)
    n = x0.size
    objective = _Objective(func, x0, pure)
    if not np.isfinite(objective.start_value):
        raise FloatingPointError("The deviance is not finite at the starting values.")
    algorithm = _ALGORITHMS[control.optimizer]
    opt = nlopt.opt(getattr(nlopt, algorithm), n)
    opt.set_min_objective(objective)
    opt.set_lower_bounds(finite_lower)
    if upper is not None:
        opt.set_upper_bounds(finite_upper)
    opt.set_ftol_rel(control.ftol_rel)
    opt.set_ftol_abs(control.ftol_abs)
    opt.set_xtol_abs(control.xtol_abs)
    opt.set_maxeval(control.maxeval)
    if initial_step is None:
        # a step of 0.75 from θ = identity explores relative SDs of 0.25 to 1.75 first
        initial_step = np.full(n, 0.75)
    if upper is not None:
        initial_step = _within_bounds(initial_step, x0, finite_lower, finite_upper)
    opt.set_initial_step(initial_step)
    try:
        x = opt.optimize(x0)
        code = opt.last_optimize_result()
    except nlopt.RoundoffLimited:
        x = opt.last_optimum_x() if hasattr(opt, "last_optimum_x") else x0
        code = nlopt.ROUNDOFF_LIMITED
    x = np.clip(np.asarray(x, dtype=float), finite_lower, finite_upper)
    summary = OptSummary(
        initial=x0,
        lower=np.asarray(lower, dtype=float),
        final=x,
        objective=objective.value_at(x),
        evaluations=objective.count,
        optimizer=f"nlopt {algorithm}",
        return_code=_nlopt_code_name(code),
        ftol_rel=control.ftol_rel,
        xtol_abs=control.xtol_abs,
    )
    if code == nlopt.MAXEVAL_REACHED:
        summary.messages.append(f"maximum number of evaluations ({control.maxeval}) reached")
    return summary


#: the searches from escape_boundary's other starts stop at this relative tolerance: they
#: only tell which basin is lowest, and the lowest is then polished at the fit's own
ROUGH_FTOL_REL = 1e-6
#: a rough search ending within this (relative) of the best deviance is polished
ROUGH_MARGIN = 1e-4


def escape_boundary(
    func: Callable[[np.ndarray], float], summary: OptSummary, control: Control
) -> OptSummary:
    """Restarts for a search that ended with θ on a bound (a singular fit), keeping the
    lowest deviance: from the end point itself (lme4's ``restart_edge``, here whatever
    the sign of the gradient off the bound), and, when θ has unbounded entries (the
    correlations of vector terms), from the identity with those entries at +0.5 and at
    −0.5.  A singular random slope has rank-one optima in several basins (the intercept's
    SD at 0, or a ±1 correlation); one start from the identity finds one of them, and
    on random designs lme4's different first step found a lower one in 2 of 60.

    The restarts cost a fraction of the fit: the one from the end point starts with a
    first step of 10% of each θ (:func:`relative_step`), the ones from the identity stop
    at a relative tolerance of 1e-6, and only the lowest of those, when it comes within
    1e-4 of the best deviance, is polished from where it stopped.  The chapter's glmmTMB
    ar1 model (real gpa data, ML): a fit of 83 evaluations and restarts of ~226 (30 from
    the end point, the rough ones and the polish); its BOBYQA converges slowly along the
    near-flat correlation, so restarts stay costlier than the fit in evaluations, at
    ~0.1 ms each (compiled: ``_kernels.block_term_deviance``), 0.04-0.05 s in all.

    Parameters
    ----------
    func : callable
    summary : OptSummary
        The search to check.
    control : Control

    Returns
    -------
    OptSummary
        ``summary`` itself when θ is inside the bounds or no restart does better;
        otherwise the best restart, with the evaluations of all counted.
    """
    lower = summary.lower
    if not boundary_mask(summary.final, lower).any():
        return summary
    no_upper = np.full(lower.size, np.inf)
    best, evaluations = summary, summary.evaluations

    def search(start: np.ndarray, settings: Control, polish: bool) -> OptSummary | None:
        nonlocal evaluations
        step = relative_step(start, lower, no_upper) if polish else None
        try:
            trial = minimize(func, start, lower, settings, initial_step=step)
        except FloatingPointError:
            return None
        evaluations += trial.evaluations
        return trial

    def keep(trial: OptSummary | None) -> None:
        nonlocal best
        if trial is not None and trial.objective < best.objective - 1e-10 * max(
            1.0, abs(best.objective)
        ):
            best = trial

    keep(search(summary.final, control, polish=True))
    unbounded = ~np.isfinite(lower)
    if unbounded.any():
        rough_control = dataclasses.replace(control, ftol_rel=ROUGH_FTOL_REL, xtol_abs=1e-8)
        rough = [
            search(np.where(unbounded, sign * 0.5, 1.0), rough_control, polish=False)
            for sign in (1.0, -1.0)
        ]
        rough = [trial for trial in rough if trial is not None]
        if rough:
            lowest = min(rough, key=lambda trial: trial.objective)
            if lowest.objective < best.objective + ROUGH_MARGIN * max(1.0, abs(best.objective)):
                keep(search(lowest.final, control, polish=True))
    if best is not summary:
        best.initial = summary.initial
        best.messages = summary.messages + best.messages
        best.optimizer = f"{summary.optimizer}, restarted off the bound by {best.optimizer}"
    best.evaluations = evaluations
    return best


#: |x| beyond which an unconstrained correlation x (ρ = x/√(1 + x²), |ρ| > 0.99) is
#: tried at its limit: there dρ/dx ~ x⁻³, so the search stalls short of ρ = ±1
_NEAR_LIMIT = 7.0
#: where the limit is put: 1 − |ρ| = 5e-13, the bound itself to display precision
_AT_LIMIT = 1e6


def settle_correlations_at_limit(
    func: Callable[[np.ndarray], float],
    summary: OptSummary,
    indices: Sequence[int],
    control: Control,
) -> OptSummary:
    """Move unconstrained correlation parameters that stalled near ±1 onto the limit.

    A structured term's correlation (glmmTMB's ``cs``, ``ar1``, ``toep``) is optimized
    through x with ρ = x/√(1 + x²); near |ρ| = 1 the deviance is flat in x, and BOBYQA
    stops with ρ = 0.9997 when ρ → 1 is lower still (a rank-one covariance, lme4's
    singular fit for a correlation).  For each of ``indices`` with |x| > 7 the search is
    repeated with x held at ±1e6 (|ρ| = 1 − 5e-13) and the other parameters free; the
    lower deviance is kept, as lme4 sets parameters within ``boundary.tol`` of a bound to
    the bound when that is better.

    Examples
    --------
    >>> f = lambda x: (1.0 - x[1] / np.sqrt(1.0 + x[1] ** 2)) + (x[0] - 2.0) ** 2
    >>> x = np.array([2.0, 40.0])
    >>> stalled = OptSummary(x, np.full(2, -np.inf), x, f(x), 10, "test", "FTOL_REACHED",
    ...                      1e-12, 1e-10)
    >>> settled = settle_correlations_at_limit(f, stalled, [1], Control())
    >>> bool(settled.final[1] == 1e6 and settled.objective < stalled.objective)
    True
    """
    best = summary
    for j in indices:
        x = best.final
        if not abs(x[j]) > _NEAR_LIMIT:
            continue
        held = float(np.sign(x[j]) * _AT_LIMIT)
        free = np.array([i for i in range(x.size) if i != j])

        def sub(z: np.ndarray, j: int = j, held: float = held, free: np.ndarray = free) -> float:
            full = np.empty(free.size + 1)
            full[free], full[j] = z, held
            return func(full)

        try:
            trial = minimize(sub, x[free], best.lower[free], control, relative_step(
                x[free], best.lower[free], np.full(free.size, np.inf)))  # fmt: skip
        except FloatingPointError:
            continue
        best.evaluations += trial.evaluations
        if trial.objective < best.objective:
            final = np.empty(x.size)
            final[free], final[j] = trial.final, held
            best = dataclasses.replace(
                best,
                final=final,
                objective=trial.objective,
                optimizer=f"{best.optimizer}, correlation {j} at its limit",
            )
    return best


def finite_difference_derivatives(
    func: Callable[[np.ndarray], float],
    x: np.ndarray,
    lower: np.ndarray,
    delta: float = 1e-4,
    value: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient and Hessian (lme4's ``deriv12``), staying inside bounds;
    ``value`` is ``func(x)`` when the caller has it."""
    n = x.size
    f0 = func(x) if value is None else value
    grad = np.zeros(n)
    hess = np.zeros((n, n))
    steps = np.full(n, delta)
    forward_only = x - steps < lower
    for i in range(n):
        e = np.zeros(n)
        e[i] = steps[i]
        fp = func(x + e)
        if forward_only[i]:
            fpp = func(x + 2 * e)
            grad[i] = (-3 * f0 + 4 * fp - fpp) / (2 * steps[i])
            hess[i, i] = (f0 - 2 * fp + fpp) / steps[i] ** 2
        else:
            fm = func(x - e)
            grad[i] = (fp - fm) / (2 * steps[i])
            hess[i, i] = (fp - 2 * f0 + fm) / steps[i] ** 2
    for i in range(n):
        for j in range(i):
            ei = np.zeros(n)
            ej = np.zeros(n)
            ei[i] = steps[i]
            ej[j] = steps[j]
            if forward_only[i] or forward_only[j]:
                value = (func(x + ei + ej) - func(x + ei) - func(x + ej) + f0) / (
                    steps[i] * steps[j]
                )
            else:
                value = (
                    func(x + ei + ej) - func(x + ei - ej) - func(x - ei + ej) + func(x - ei - ej)
                ) / (4 * steps[i] * steps[j])
            hess[i, j] = hess[j, i] = value
    return grad, hess


def boundary_mask(theta: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """θ on (or within lme4's singular tolerance of) a finite lower bound (an infinite
    bound leaves an infinite difference, which compares False, as a NaN θ does)."""
    return np.subtract(theta, lower) < SINGULAR_TOLERANCE


#: a gradient entry above this at the end of a search restarts it (:func:`restart_on_slope`)
SLOPE_TOLERANCE = 1e-4


def restart_on_slope(
    func: Callable[[np.ndarray], float],
    summary: OptSummary,
    control: Control,
    max_restarts: int = 2,
) -> OptSummary:
    """Restarts from the end point while the deviance still slopes there.

    BOBYQA stops on its relative tolerance when its trust region has shrunk, which on a
    long flat valley is before the minimum: a residual variance function's parameter
    whose optimum is at the end of an unbounded scale (VarConstPower's ``const`` → 0 as
    log const → −∞) left the deviance 1e-5 above nlme's, with a gradient of 0.03.  A new
    search from there starts with a full trust region.  Each restart costs a central
    gradient (2 evaluations per free parameter) and the search; the lowest deviance is
    kept, with every evaluation counted.

    Examples
    --------
    >>> import numpy as np
    >>> f = lambda x: float((x[0] - 1.0) ** 2 + 1e-3 * x[1] ** 2)
    >>> start = minimize(f, np.array([0.0, 3.0]), np.array([-np.inf, -np.inf]), Control())
    >>> bool(restart_on_slope(f, start, Control()).objective <= start.objective)
    True
    """
    best = summary
    for _ in range(max_restarts):
        x = best.final
        free = ~boundary_mask(x, best.lower)
        step = 1e-5 * np.maximum(1.0, np.abs(x))
        slope = 0.0
        for i in np.flatnonzero(free & np.isfinite(x)):
            e = np.zeros_like(x)
            e[i] = step[i]
            slope = max(slope, abs(func(x + e) - func(x - e)) / (2.0 * step[i]))
        evaluations = best.evaluations + 2 * int(np.count_nonzero(free))
        if not slope > SLOPE_TOLERANCE:
            return dataclasses.replace(best, evaluations=evaluations)
        upper = np.full(x.size, np.inf)
        again = minimize(func, x, best.lower, control, relative_step(x, best.lower, upper))
        improved = again.objective < best.objective
        chosen = again if improved else best
        best = dataclasses.replace(
            chosen, initial=summary.initial, evaluations=evaluations + again.evaluations
        )
        if not improved:
            return best
    return best


def check_convergence(
    func: Callable[[np.ndarray], float],
    summary: OptSummary,
    *,
    derivatives: tuple[np.ndarray, np.ndarray] | None = None,
    objective_is_exact: bool = False,
) -> bool:
    """lme4's post-fit checks: scaled gradient below 2e-3 and a positive-definite Hessian
    (on the parameters not at a bound).  Warns and returns False on failure.

    ``derivatives`` (gradient, Hessian) at ``summary.final`` replaces the finite
    differences of ``func`` when the caller has better ones; ``objective_is_exact`` says
    that ``summary.objective`` is ``func(summary.final)`` itself (the differences are then
    centred on it without evaluating it again)."""
    x = summary.final
    if derivatives is None:
        value = summary.objective if objective_is_exact else None
        grad, hess = finite_difference_derivatives(func, x, summary.lower, value=value)
    else:
        grad, hess = derivatives
    summary.gradient, summary.hessian = grad, hess
    free = ~boundary_mask(x, summary.lower)
    ok = True
    if summary.return_code == "MAXEVAL_REACHED":
        ok = False
    # (numpy's fancy indexing and checked linear algebra cost more than the check itself
    # on a fit of a few θ: the whole arrays when nothing is on a bound, LAPACK directly)
    g, H = (grad, hess) if free.all() else (grad[free], hess[np.ix_(free, free)])
    if free.any() and not (np.isfinite(g).all() and np.isfinite(H).all()):
        # a NaN gradient compares False with every tolerance: say so rather than pass
        bad = np.flatnonzero(free & ~np.isfinite(grad))
        summary.messages.append(
            "The deviance is not finite next to the estimate"
            + (f" (parameter(s) {', '.join(str(int(i) + 1) for i in bad)})" if bad.size else "")
            + ": convergence could not be checked and the fit may have stopped at an edge of "
            "its feasible region. Check the model's parameters and the data's range."
        )
        ok = False
    elif free.any():
        try:
            scaled = _cholesky_scaled(H, g)
            worst = float(np.max(np.minimum(np.abs(scaled), np.abs(g))))
        except np.linalg.LinAlgError:
            eigen = np.linalg.eigvalsh(H)
            summary.messages.append(
                f"Hessian is not positive definite (smallest eigenvalue {eigen.min():.3g}): "
                "the model may be over-parameterized."
            )
            worst = float(np.max(np.abs(g)))
            ok = False
        if worst > GRADIENT_TOLERANCE:
            summary.messages.append(
                f"Model failed to converge with max|grad| = {worst:.3g} (tol = "
                f"{GRADIENT_TOLERANCE}). Try rescaling predictors, a simpler random-effects "
                "structure, or control={'optimizer': 'nelder_mead'}."
            )
            ok = False
    for message in summary.messages:
        warn(message, ConvergenceWarning)
    return ok


def _cholesky_scaled(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """L⁻¹g for the lower Cholesky factor L of H (lme4's scaled gradient); LinAlgError
    when H is not positive definite."""
    from scipy.linalg.lapack import dpotrf, dtrtrs

    L, info = dpotrf(H, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("Hessian is not positive definite")
    scaled, _ = dtrtrs(L, g, lower=1)
    return scaled


#: a relative SD (random-effect SD over the residual SD) above this is a residual SD of
#: (almost) nothing: :func:`warn_if_residual_vanishes`
VANISHING_RESIDUAL = 1e5


def warn_if_residual_vanishes(theta: np.ndarray, lower: np.ndarray) -> bool:
    """Warn (``ConvergenceWarning``, with the figure) when a random-effect SD is more than
    :data:`VANISHING_RESIDUAL` residual SDs: the fixed and random effects then reproduce
    the response, the residual SD is estimated as ~0, and the standard errors and tests
    built on it mean nothing (a response of group means fitted with ``(1 | group)``).
    Only the entries with a finite lower bound are read (relative SDs; correlation
    parameters of structured terms are on their own scale).

    Examples
    --------
    >>> import numpy as np, warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_if_residual_vanishes(np.array([4.5e6]), np.zeros(1))
    True
    >>> "reproduce the response" in str(caught[0].message)
    True
    """
    scales = np.abs(np.asarray(theta)[np.isfinite(lower)])
    largest = float(scales.max()) if scales.size else 0.0
    if not largest > VANISHING_RESIDUAL:
        return False
    warn(
        f"The residual SD is estimated as {1.0 / largest:.2g} of the largest random-effect "
        "SD: the fixed and random effects reproduce the response (almost) exactly, so "
        "the residual variance, the standard errors and the tests are not meaningful. "
        "Check that the response is not computed from the predictors or the groups (for "
        "example group means), or drop the random-effects term that reproduces it.",
        ConvergenceWarning,
    )
    return True


def warn_if_singular(theta: np.ndarray, lower: np.ndarray) -> bool:
    """Warn (``SingularFitWarning``, with the figures) when θ is on a bound, as lme4 does."""
    on_bound = boundary_mask(theta, lower)
    if on_bound.any():
        figures = ", ".join(f"{v:.3g}" for v in theta[on_bound])
        warn(
            "boundary (singular) fit: a random-effect variance is estimated as zero or a "
            f"correlation as ±1 (relative SDs {figures}). Consider simplifying the "
            "random-effects structure.",
            SingularFitWarning,
        )
    return bool(on_bound.any())
