"""Minimization of the profiled deviance on its exact gradient: L-BFGS-B in coordinates
scaled by one probe of the curvature, ended when it stalls in the value's rounding, and
the convergence check's Hessian from differences of the gradient."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .optimize import Control, OptSummary


def minimize_with_gradient(
    func_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    lower: np.ndarray,
    control: Control,
    value_only: Callable[[np.ndarray], float] | None = None,
) -> OptSummary:
    """Minimize with an exact gradient: L-BFGS-B (scipy) subject to ``x >= lower``.

    Parameters
    ----------
    func_and_gradient : callable
        θ -> (value, gradient); a non-positive-definite θ may raise ``LinAlgError``.
    x0 : array
        Starting point, moved inside the bounds first.
    lower : array
        Lower bounds (``-inf`` for none).
    control : Control
        ``maxeval`` caps the evaluations; the search stops when the projected gradient
        is below 1e-9 of the start's deviance (at least 1e-4) or a step improves the
        value by less than ``1e-14`` relative.  The gradient's rounding floor grows with
        the deviance: InstEval's (2.4e5) is ~1e-4, where an absolute 1e-4 left
        L-BFGS-B 17 line-search evaluations in the rounding after 13 that reached the
        optimum (to 1e-11) with one BLAS thread.
    value_only : callable, optional
        θ -> value, cheaper than ``func_and_gradient``: one value down the start's
        gradient gives the curvature along it (:func:`_first_step`), and the search runs
        in coordinates scaled so that L-BFGS-B's first step, of unit length, is the
        Newton step along that line.  Without it the first step has unit length in θ,
        which on InstEval went to a deviance 4,600 above the start and back.

    Returns
    -------
    OptSummary
        With ``gradient`` at ``final``.
    """
    from scipy.optimize import minimize as scipy_minimize

    x0 = np.maximum(np.asarray(x0, dtype=float), lower)

    def evaluate(x: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            return func_and_gradient(x)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(x)

    at_start = evaluate(x0)  # its value scales the gradient tolerance
    if not np.isfinite(at_start[0]):
        raise FloatingPointError("The deviance is not finite at the starting values.")
    scale = 1.0  # the search runs on z = x / scale
    if value_only is not None:
        scale = _first_step(value_only, x0, lower, *at_start)
    search = _ScaledSearch(evaluate, x0, at_start, scale, probed=value_only is not None)
    bounds = [(lo / scale if np.isfinite(lo) else None, None) for lo in lower]
    try:
        result = scipy_minimize(
            search,
            search.z0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={
                "maxfun": control.maxeval,
                "ftol": 1e-14,
                "gtol": scale * max(1e-4, 1e-9 * abs(search.start_value)),
                "maxcor": 20,
            },
        )
        success, message, evaluations = result.success, str(result.message), result.nfev
    except _Stalled:
        success, message, evaluations = True, "stalled in the value's rounding", search.count
    summary = OptSummary(
        initial=x0,
        lower=np.asarray(lower, dtype=float),
        final=search.best_x,
        objective=float(search.best_value),
        evaluations=search.count,
        optimizer="scipy L-BFGS-B (exact gradient)",
        return_code="SUCCESS" if success else message,
        ftol_rel=1e-14,
        xtol_abs=0.0,
        gradient=search.best_gradient,
    )
    if not success and evaluations >= control.maxeval:
        summary.return_code = "MAXEVAL_REACHED"
        summary.messages.append(f"maximum number of evaluations ({control.maxeval}) reached")
    return summary


class _ScaledSearch:
    """The function L-BFGS-B calls: on z = x / scale, keeping the best point seen,
    counting evaluations (the start's is reused), and raising :class:`_Stalled` after
    :data:`_STALL_EVALUATIONS` evaluations in a row that stay in the best value's
    rounding."""

    def __init__(
        self,
        evaluate: Callable[[np.ndarray], tuple[float, np.ndarray]],
        x0: np.ndarray,
        at_start: tuple[float, np.ndarray],
        scale: float,
        probed: bool,
    ):
        self.evaluate, self.x0, self.at_start, self.scale = evaluate, x0, at_start, scale
        self.z0 = x0 / scale
        self.count = 2 if probed else 1  # the start, and the probe of the first step
        self.best_value, self.best_x, self.best_gradient = at_start[0], x0.copy(), at_start[1]
        self.start_value = float(at_start[0])
        magnitude = max(1.0, abs(self.start_value))
        self.rounding, self.band = _STALL_FTOL * magnitude, _STALL_BAND * magnitude
        self.stalled = 0

    def __call__(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        if np.array_equal(z, self.z0):
            return self.at_start[0], self.at_start[1] * self.scale
        x = z * self.scale
        self.count += 1
        value, grad = self.evaluate(x)
        if not np.isfinite(value):
            # outside the positive-definite region: a value above the start sends the
            # line search back, as BOBYQA's start-value substitute does
            return abs(self.start_value) * 10 + 1e10, -np.sign(z - self.z0)
        near = abs(value - self.best_value) <= self.band
        self.stalled = self.stalled + 1 if near and value > self.best_value - self.rounding else 0
        if value < self.best_value:
            self.best_value, self.best_x, self.best_gradient = value, np.array(x), np.array(grad)
        if self.stalled >= _STALL_EVALUATIONS:
            raise _Stalled
        return value, grad * self.scale


class _Stalled(Exception):
    """Raised inside L-BFGS-B's evaluations to end a search that no longer gains."""


#: a gradient search ends after this many evaluations in a row within
#: :data:`_STALL_BAND` of the best value (relative) that do not improve it by more than
#: :data:`_STALL_FTOL`: its line search at the optimum could otherwise spend dozens of
#: evaluations in the value's rounding (InstEval: 30); a trial far above the best (a line
#: search backing off) does not count
_STALL_EVALUATIONS, _STALL_FTOL, _STALL_BAND = 2, 1e-14, 1e-12

#: the probe of :func:`_first_step` goes this far along −g, relative to |x₀| (at least
#: :data:`_PROBE_FLOOR`)
_PROBE_SHARE, _PROBE_FLOOR = 0.1, 1e-2


def _first_step(
    value_only: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    f0: float,
    g0: np.ndarray,
) -> float:
    """The Newton step's length along −g₀ from a parabola through f₀, its slope −|g₀| and
    one value a probe's length down the line (1.0, L-BFGS-B's own first step, when the
    line is not convex there or the probe leaves the bounds or the positive-definite set).
    """
    norm = float(np.linalg.norm(g0))
    if not norm > 0:
        return 1.0
    probe = max(_PROBE_SHARE * float(np.linalg.norm(x0)), _PROBE_FLOOR)
    x = x0 - probe * g0 / norm
    if np.any(x < lower):
        return 1.0
    try:
        value = value_only(x)
    except np.linalg.LinAlgError:
        return 1.0
    curvature = 2.0 * (value - f0 + norm * probe) / probe**2
    if not (np.isfinite(curvature) and curvature > 0):
        return 1.0
    return norm / curvature


def gradient_derivatives(
    gradient: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    lower: np.ndarray,
    grad: np.ndarray | None = None,
    delta: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian for the convergence check from an exact gradient: the
    Hessian by central differences of the gradient (forward next to a bound), 2 n
    gradients where :func:`finite_difference_derivatives` takes 2 n² + 1 values."""
    n = x.size
    g0 = gradient(x) if grad is None else grad
    hess = np.zeros((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = delta
        if x[i] - delta < lower[i]:
            hess[:, i] = (gradient(x + e) - g0) / delta
        else:
            hess[:, i] = (gradient(x + e) - gradient(x - e)) / (2 * delta)
    return g0, 0.5 * (hess + hess.T)
