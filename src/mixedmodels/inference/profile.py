"""Likelihood profiles and profile confidence intervals, as lme4's ``profile.merMod``.

lme4 profiles the *ML* deviance (a REML fit is refitted by ML first, in ``devfun2``):

- a variance parameter (an SD, a correlation or σ, on lme4's SD/correlation scale) is
  fixed on a grid and the deviance is minimized over the other variance parameters, β
  profiled out by penalized least squares;
- a fixed effect β_j is fixed by moving ``x_j β_j`` into the offset and minimizing the
  profiled ML deviance over θ.  Here that model's cross-products are a linear map of the
  full model's, so no pass over the rows is needed.

ζ = sign(value − estimate) √(deviance − minimum).  The grid is stepped as lme4's
``fillmat``/``nextpar`` do (ζ steps of ``cutoff / 8``, until |ζ| passes
``cutoff = √χ²₀.₉₉(#parameters)`` or a bound is met), the ζ trace is interpolated by a
natural cubic spline and inverted as splines' ``backSpline``, so the intervals agree
with lme4's ``confint(method = "profile")``.  A trace that turns back far from the
estimate is read off its monotone branch through the estimate, the ends refined by refits
(:func:`interval_from_trace`), where lme4 gives NaN or interpolates linearly over the turn.

That walk is model-independent (:class:`Profiler`); a model class supplies only the
refit with one parameter held fixed: :class:`LmmProfiler` here, and
:class:`~.glmm_profile.GlmmProfiler` for glmer fits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import interpolate, stats

from .._progress import progress_bar
from .._warnings import warn
from ..errors import MixedModelsError, ProfileWarning, refuse

if TYPE_CHECKING:  # pragma: no cover
    from .._protocols import MixedModel as LinearMixedModel


@dataclasses.dataclass
class _Trace:
    name: str
    rows: np.ndarray  # (m, 1 + nptot): zeta then all parameters, sorted by the parameter


def _next_value(
    prev: np.ndarray, last: np.ndarray, col: int, delta: float, lower: float, upper: float
) -> float:
    """lme4's ``nextpar``: step so that ζ changes by about ``delta``."""
    num = last[col] - prev[col]
    denom = last[0] - prev[0]
    minstep = 1e-6
    if not np.isfinite(denom) or denom == 0:
        warn(
            "Last two rows have identical or NA zeta values: using minstep",
            ProfileWarning,
        )
        step = minstep
    else:
        step = delta * num / denom
        if step < 0:
            warn("unexpected decrease in profile: using minstep", ProfileWarning)
            step = minstep
        elif abs(step) > abs(10.0 * num):  # lme4's maxmult = 10
            step = abs(10.0 * num)
    return float(min(upper, max(lower, last[col] + np.sign(num) * step)))


def _fill(
    first: np.ndarray,
    second: np.ndarray,
    col: int,
    lower: float,
    upper: float,
    zeta_at: Callable[[float, np.ndarray, np.ndarray], np.ndarray],
    delta: float,
    cutoff: float,
    maxpts: int,
) -> list[np.ndarray]:
    """lme4's ``fillmat``: walk away from the estimate until |ζ| > cutoff or a bound.

    A point whose |ζ| exceeds that of the next one was a refit that stopped short of
    the profile (a local minimum on a ridge): it is refitted once from the next point's
    parameters and kept if that finds a lower deviance."""
    rows = [first, second]
    while len(rows) < maxpts:
        last = rows[-1]
        z = abs(last[0])
        if not (lower < last[col] < upper) or (np.isfinite(z) and z > cutoff):
            break
        if not np.isfinite(z):
            break
        value = _next_value(rows[-2], last, col, delta, lower, upper)
        new = zeta_at(value, rows[-2], last)
        if len(rows) > 2 and np.isfinite(new[0]) and abs(new[0]) < z:
            retry = zeta_at(last[col], new, new)
            if np.isfinite(retry[0]) and abs(retry[0]) < z:
                rows[-1] = retry
        rows.append(new)
    return rows


class Profiler:
    """The model-independent part of a likelihood profile (lme4's ``profile.merMod``).

    A subclass says how to refit the model with one parameter held fixed
    (:meth:`refit`) and where the first step away from the estimate goes
    (:meth:`first_value`); this class walks the grid, turns deviances into ζ and
    collects the traces.

    Attributes
    ----------
    names : list of str
        Every parameter on the profile scale: the variance parameters (SDs,
        correlations and, for linear models, σ), then the fixed effects.
    nvp : int
        Number of variance parameters (the first ``nvp`` names).
    opt : ndarray
        The estimates on that scale.
    lower, upper : ndarray
        Bounds of each parameter.
    base : float
        The ML (or Laplace/AGQ) deviance at the estimates.
    """

    def __init__(
        self,
        names: Sequence[str],
        nvp: int,
        opt: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        base: float,
        alphamax: float = 0.01,
        maxpts: int = 100,
    ):
        self.names = list(names)
        self.nvp = nvp
        self.nptot = len(self.names)
        self.opt = np.asarray(opt, dtype=float)
        self.lower = np.asarray(lower, dtype=float)
        self.upper = np.asarray(upper, dtype=float)
        self.base = float(base)
        #: the bound an interval reports when its walk ended on ``lower``: ``lower``
        #: itself, except σ's, whose walk stops at the floor where the deviance can still
        #: be computed and whose interval then reaches 0 (see LmmProfiler)
        self.reported_lower = self.lower.copy()
        self.maxpts = maxpts
        self.cutoff = float(np.sqrt(stats.chi2.ppf(1.0 - alphamax, self.nptot)))
        self.delta = self.cutoff / 8.0

    # -- what a model class provides -----------------------------------------------------
    def refit(self, index: int, value: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        """Minimum deviance with parameter ``index`` held at ``value``, and every
        parameter at that minimum.  ``start`` is the neighbouring point of the trace
        (ζ first, then the parameters), from which the refit may be warm-started.
        Raises FloatingPointError when the deviance cannot be evaluated."""
        raise NotImplementedError

    def first_value(self, index: int) -> float:
        """The first value stepped to from the estimate."""
        raise NotImplementedError

    def start_for(self, index: int, value: float, prev: np.ndarray, last: np.ndarray) -> np.ndarray:
        """Where the refit at ``value`` starts: the last point of the trace (lme4's
        ``startmethod = "prev"``); ``prev`` is the point before it."""
        return last

    # -- one point of a profile ----------------------------------------------------------
    def zeta_at(self, index: int, value: float, start: np.ndarray) -> np.ndarray:
        """One row of a trace: ζ, then every parameter at the refit."""
        try:
            fval, pars = self.refit(index, value, start)
        except FloatingPointError:
            return np.full(1 + self.nptot, np.nan)
        zeta = np.sign(value - self.opt[index]) * np.sqrt(self._devdiff(fval))
        return np.concatenate([[zeta], pars])

    def _devdiff(self, fval: float) -> float:
        devdiff = fval - self.base
        if devdiff < -1e-6 * max(1.0, abs(self.base)):
            raise MixedModelsError(
                f"Profiling found a lower deviance ({fval:.6f}) than the fit "
                f"({self.base:.6f}): the fit had not converged; refit with tighter tolerances."
            )
        return max(0.0, devdiff)

    # -- a whole profile -----------------------------------------------------------------
    def trace(self, index: int) -> _Trace:
        """The ζ trace of parameter ``index`` (position in :attr:`names`)."""
        col = 1 + index
        center = np.concatenate([[0.0], self.opt])
        lower, upper = self.lower[index], self.upper[index]

        def zeta_at(value: float, prev: np.ndarray, last: np.ndarray) -> np.ndarray:
            return self.zeta_at(index, value, self.start_for(index, value, prev, last))

        first = zeta_at(self.first_value(index), center, center)
        args = (col, lower, upper, zeta_at, self.delta, self.cutoff, self.maxpts)
        up = _fill(center, first, *args)
        down = _fill(first, center, *args) if self.opt[index] > lower else [first, center]
        rows = np.unique(np.array(up + down[2:]), axis=0)
        rows = rows[np.argsort(rows[:, col], kind="stable")]
        return _Trace(self.names[index], rows)


class LmmProfiler(Profiler):
    """Profiles of a linear mixed model on its objective's ML deviance
    (:meth:`~mixedmodels.models.objective.LmmObjective.refit`): the SD/correlation scale of each
    covariance structure, σ included, β profiled out for the variance parameters and
    moved into the offset for the fixed effects; a residual structure's parameters are
    re-optimized at every point (the data whitened by them)."""

    def __init__(self, model: LinearMixedModel, alphamax: float = 0.01, maxpts: int = 100):
        self.model = model
        self.objective = model.objective
        from ..residual.structures import unidentified_correlation

        why = unidentified_correlation(self.objective.residual, self.objective.crossprods.terms)
        if why is not None:
            raise refuse(
                "lmer fit whose residual correlation repeats its random intercept",
                "profile intervals",
                "the model without the random intercept (the correlation structure already "
                "holds the within-group covariance), or CorAR1, whose correlations decay",
                why,
            )
        params = self.objective.parameters()
        ml_x = self.objective._ml_estimate()
        base = self.objective.deviance(ml_x, reml=False)
        self.se_ml = np.sqrt(np.diag(self.objective.ml().solution(ml_x).vcov_unscaled))
        self.se_ml *= params.estimate[params.n_variance - 1]  # σ of the ML fit
        super().__init__(
            names=params.names,
            nvp=params.n_variance,
            opt=params.estimate,
            lower=params.lower,
            upper=params.upper,
            base=base,
            alphamax=alphamax,
            maxpts=maxpts,
        )
        # σ's profile walks down to the floor where the ML deviance is still computed
        # (objective._SIGMA_FLOOR, far below any σ of interest); reaching it within the
        # cutoff, the deviance is within it all the way to σ = 0 (V = σ²I + ZΣZ' is smooth
        # in σ² there), so that end of the interval is 0
        self.reported_lower[self.nvp - 1] = 0.0
        check, _ = self.objective.ml_deviance_sdcor(self.opt[: self.nvp])
        if not abs(check - base) <= 1e-5 * max(1.0, abs(base)):
            raise MixedModelsError(
                "Profiling over both the residual SD and the fixed effects is not numerically "
                f"consistent with the fit (deviance {check:.6f} vs {base:.6f})."
            )

    def first_value(self, index: int) -> float:
        estimate = self.opt[index]
        if index < self.nvp:
            # inside the bounds: a correlation of 0.9997 steps to its bound 1, not past it
            value = 0.001 if estimate == 0 else estimate * 1.01
            return float(np.clip(value, self.lower[index], self.upper[index]))
        return estimate + self.delta * self.se_ml[index - self.nvp]

    def refit(self, index: int, value: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        return self.objective.refit({self.names[index]: value}, start[1 : 1 + self.nvp])


def _natural_spline_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return interpolate.CubicSpline(x, y, bc_type="natural")(x, 1)


def back_spline(values: np.ndarray, zeta: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """ζ → value: splines' ``backSpline`` of the natural interpolating spline value → ζ.

    Raises ValueError when the trace is not monotone or too short for a cubic spline.
    """
    keep = np.isfinite(values) & np.isfinite(zeta)
    x, y = values[keep], zeta[keep]
    if x.size < 4 or np.any(np.diff(x) <= 0):
        raise ValueError("need at least 4 distinct points")
    slopes = _natural_spline_slopes(x, y)
    adiff = np.diff(y)
    if np.all(adiff < 0):
        reverse = True
    elif np.all(adiff > 0):
        reverse = False
    else:
        raise ValueError("spline must be monotone")
    kdiff = np.diff(x)
    nk = x.size
    b = np.zeros((nk, 4))
    b[:, 0] = x
    b[:, 1] = 1.0 / slopes
    for i in range(nk - 1):
        a = np.array([[adiff[i] ** 2, adiff[i] ** 3], [2 * adiff[i], 3 * adiff[i] ** 2]])
        rhs = np.array([kdiff[i] - adiff[i] * b[i, 1], b[i + 1, 1] - b[i, 1]])
        b[i, 2:4] = np.linalg.solve(a, rhs)
    b[nk - 1, 1:] = np.nan
    if nk > 2:
        b[0, 3] = b[nk - 2, 3] = 0.0
        a = np.array([[adiff[0], adiff[0] ** 2], [1.0, 2 * adiff[0]]])
        b[0, 1:3] = np.linalg.solve(a, np.array([kdiff[0], 1.0 / slopes[1]]))
        b[nk - 2, 2] = (kdiff[-1] - adiff[-1] * b[nk - 2, 1]) / adiff[-1] ** 2
    if b[0, 2] > 0:
        b[0, 2] = 0.0
        b[0, 1] = kdiff[0] / adiff[0]
    if b[nk - 2, 2] < 0:
        b[nk - 2, 2] = 0.0
        b[nk - 2, 1] = kdiff[-1] / adiff[-1]
    knots = y
    if reverse:
        knots, b = knots[::-1], b[::-1]

    def predict(z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        # R's cut(): intervals (k_i, k_{i+1}], the first knot itself in the first interval
        i = np.searchsorted(knots, z, side="left") - 1
        i = np.where(z == knots[0], 0, i)
        inside = (i >= 0) & (i < knots.size - 1)
        i = np.clip(i, 0, knots.size - 2)
        d = z - knots[i]
        out = ((b[i, 3] * d + b[i, 2]) * d + b[i, 1]) * d + b[i, 0]
        return np.where(inside, out, np.nan)

    return predict


def monotone_branch(values: np.ndarray, zeta: np.ndarray) -> np.ndarray:
    """Positions of the trace's monotone branch through the estimate (ζ = 0).

    The trace is sorted by value; from the point nearest ζ = 0 the branch extends in
    each direction while ζ keeps moving away from 0.  Far from the estimate a profile
    can turn back (a refit that meets a plateau where an SD reaches 0 and a correlation
    is no longer identified); the points beyond the turn are not on the branch.
    """
    ok = np.flatnonzero(np.isfinite(values) & np.isfinite(zeta))
    if ok.size == 0:
        return ok
    z = zeta[ok]
    centre = int(np.argmin(np.abs(z)))
    lo = centre
    while lo > 0 and z[lo - 1] < z[lo]:
        lo -= 1
    hi = centre
    while hi < z.size - 1 and z[hi + 1] > z[hi]:
        hi += 1
    return ok[lo : hi + 1]


# Interval ends refined on a turning trace: until the deviance is within this of
# minimum + z² (the self-consistency check asks for 1e-4).
_END_DEVIANCE_TOL = 1e-5
_END_MAX_REFITS = 12


def _refine_end(
    target: float,
    guess: float,
    branch: np.ndarray,
    col: int,
    zeta_at: Callable[[float, np.ndarray], np.ndarray],
) -> float:
    """The value on the branch where ζ = ``target``, by bracketed secant steps from ``guess``.

    ``branch`` holds the trace rows of the monotone branch (ζ increasing with the value);
    each new refit starts from the nearest point already computed.
    """
    below = [r for r in branch if r[0] < target]
    above = [r for r in branch if r[0] > target]
    if not below or not above:
        return float("nan")
    a = max(below, key=lambda r: r[col])  # the bracket: ζ(a) < target < ζ(b)
    b = min(above, key=lambda r: r[col])
    value = guess if a[col] < guess < b[col] else np.nan  # NaN: start by a secant step
    for _ in range(_END_MAX_REFITS):
        if not np.isfinite(value):
            # secant between the bracket ends
            value = a[col] + (target - a[0]) * (b[col] - a[col]) / (b[0] - a[0])
        start = min((a, b), key=lambda r: abs(r[col] - value))
        row = zeta_at(value, start)
        if not np.isfinite(row[0]):
            return float("nan")
        if abs(row[0] ** 2 - target**2) < _END_DEVIANCE_TOL:
            return float(value)
        if row[0] < target:
            a = row
        else:
            b = row
        value = np.nan
    return float("nan")


def _verified_ends(
    rows: np.ndarray,
    col: int,
    zeta: np.ndarray,
    ends: np.ndarray,
    zeta_at: Callable[[float, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Each end read off the spline checked by a refit there, and refined by
    :func:`_refine_end` until the deviance is the minimum + z² (NaN ends stay NaN)."""
    rows = rows[np.isfinite(rows[:, 0]) & np.isfinite(rows[:, col])]
    return np.array(
        [
            _refine_end(target, guess, rows, col, zeta_at) if np.isfinite(guess) else guess
            for target, guess in zip(zeta, ends, strict=True)
        ]
    )


def interval_from_trace(
    trace: _Trace,
    col: int,
    zeta: np.ndarray,
    bounds: tuple[float, float],
    zeta_at: Callable[[float, np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """The values where the trace reaches ``zeta`` (lme4's ``confint.thpr``).

    An end the trace does not reach is the parameter's bound when the profile ran into
    that bound (an SD of 0, a correlation of ±1), else NaN with a :class:`ProfileWarning`.

    A trace that is not monotone as a whole is read off its monotone branch through the
    estimate (:func:`monotone_branch`), where lme4 gives up or interpolates linearly over
    the turn.  With ``zeta_at`` (value, start row → trace row, a refit), every end is
    then checked by a refit and refined until the deviance there is the minimum + z² to
    1e-5: the spline is only as good as the grid, which has few points near a turn or a
    kink (a refit that reaches another regime, such as σ at its floor with the residual
    variance taken up by a structured term); a smooth profile's end passes at once.
    """
    values, z = trace.rows[:, col], trace.rows[:, 0]
    turned = False
    try:
        result = back_spline(values, z)(zeta)
    except (ValueError, np.linalg.LinAlgError):
        ok = np.isfinite(values) & np.isfinite(z)
        if ok.any() and np.any(np.diff(z[ok]) < -0.01):
            on_branch = monotone_branch(values, z)
            values, z = values[on_branch], z[on_branch]
            turned = True
        else:
            on_branch = np.flatnonzero(ok)
            if ok.sum() >= 4:
                warn(
                    f"bad spline fit for {trace.name}: falling back to linear interpolation",
                    ProfileWarning,
                )
        try:
            result = back_spline(values, z)(zeta)
        except (ValueError, np.linalg.LinAlgError):
            zs, vs = z, values
            inside = (zeta >= zs.min()) & (zeta <= zs.max()) if zs.size else zeta != zeta
            result = np.where(inside, np.interp(zeta, zs, vs) if zs.size else np.nan, np.nan)
    result = np.array(result, dtype=float)
    if zeta_at is not None:
        rows = trace.rows[on_branch] if turned else trace.rows
        result = _verified_ends(rows, col, zeta, result, zeta_at)
    for side, bound, hit in (
        (0, bounds[0], values.size and np.nanmin(values) <= bounds[0]),
        (1, bounds[1], values.size and np.nanmax(values) >= bounds[1]),
    ):
        if np.isnan(result[side]):
            if hit:
                result[side] = bound
            else:
                warn(
                    f"The profile of {trace.name} did not reach zeta = {zeta[side]:.3g} "
                    f"on the {'lower' if side == 0 else 'upper'} side"
                    + (" before it turned back" if turned else "")
                    + ": that bound is NaN. The likelihood is too flat in that direction "
                    "(increase maxpts, or use method='boot').",
                    ProfileWarning,
                )
    return result


def select_parameters(names: Sequence[str], nvp: int, parm: object) -> list[int]:
    """Positions selected by ``parm``: None (all), names, positions, "theta_" or "beta_"."""
    if parm is None:
        return list(range(len(names)))
    items = [parm] if isinstance(parm, str | int) else list(parm)  # type: ignore[arg-type]
    chosen: list[int] = []
    for item in items:
        if item == "theta_":
            chosen.extend(range(nvp))
        elif item == "beta_":
            chosen.extend(range(nvp, len(names)))
        elif isinstance(item, int | np.integer):
            if not 0 <= int(item) < len(names):
                raise ValueError(
                    f"parm: position {item} is out of range; the model has {len(names)} "
                    f"parameters ({', '.join(names)})."
                )
            chosen.append(int(item))
        elif item in names:
            chosen.append(list(names).index(item))
        else:
            raise ValueError(
                f"parm: unknown parameter {item!r}. Expecting any of {list(names)}, "
                "'theta_' or 'beta_'."
            )
    return sorted(set(chosen))


def _traces(profiler: Profiler, which: list[int], progress: bool | None) -> Iterator[_Trace]:
    """The traces of the selected parameters, one progress-bar step each."""
    with progress_bar(progress, total=len(which), desc="profile", unit="parameter") as bar:
        for index in which:
            bar.set_postfix_str(_display_name(profiler.names[index]), refresh=False)
            yield profiler.trace(index)
            bar.update(1)


def profile_table(
    profiler: Profiler, which: list[int], progress: bool | None = None
) -> pd.DataFrame:
    """Tidy traces: parameter, value, zeta, then every parameter's value along the trace."""
    frames = []
    for index, trace in zip(which, _traces(profiler, which, progress), strict=True):
        frame = pd.DataFrame(trace.rows[:, 1:], columns=profiler.names)
        frame.insert(0, "zeta", trace.rows[:, 0])
        frame.insert(0, "value", trace.rows[:, 1 + index])
        frame.insert(0, "parameter", profiler.names[index])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def profile_confint(
    profiler: Profiler, parm: object = None, level: float = 0.95, progress: bool | None = None
) -> pd.DataFrame:
    """Profile intervals for the selected parameters of a model's profiler (see ``confint``
    and :func:`~.profilers.make_profiler`)."""
    which = select_parameters(profiler.names, profiler.nvp, parm)
    alpha = (1.0 - level) / 2.0
    zeta = stats.norm.ppf([alpha, 1.0 - alpha])
    # intervals need the traces only a little past ±z (the spline's shape there and a
    # bracket for the refit that checks each end), not to lme4's plotting cutoff: two
    # steps past, the step itself unchanged
    profiler.cutoff = min(profiler.cutoff, float(np.max(np.abs(zeta))) + 2.0 * profiler.delta)
    rows = []
    for index, trace in zip(which, _traces(profiler, which, progress), strict=True):
        bounds = (profiler.lower[index], profiler.upper[index])

        def zeta_at(value: float, start: np.ndarray, index: int = index) -> np.ndarray:
            return profiler.zeta_at(index, value, start)

        ends = interval_from_trace(trace, 1 + index, zeta, bounds, zeta_at)
        if ends[0] == bounds[0]:
            ends[0] = profiler.reported_lower[index]
        rows.append(ends)
    names = [_display_name(profiler.names[i]) for i in which]
    return pd.DataFrame(np.array(rows), index=names, columns=["lower", "upper"])


def _display_name(name: str) -> str:
    return "Intercept" if name == "(Intercept)" else name
