"""The deviance function of a design and its minimization over θ, lme4's ``mkLmerDevfun``
and ``optimizeLmer``: the stages between :func:`~mixedmodels.lmer_design` and the fitted
model, public so that a user can optimize the deviance with anything.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np

from .._threads import blas_threads_for
from ..frontend.design_types import Design
from . import compiled_search
from .crossed_kernel import scalar_terms_kernel, supports_scalar_terms_kernel
from .crossprods import CrossProducts
from .deviance import (
    _single_term_kernel,
    _SingleTermKernel,
    compiled_deviance,
    deviance,
    has_compiled_deviance,
)
from .gradient import deviance_and_gradient, supports_gradient
from .gradient_search import gradient_derivatives, minimize_with_gradient
from .optimize import (
    Control,
    OptSummary,
    boundary_mask,
    check_convergence,
    escape_boundary,
    minimize,
    settle_correlations_at_limit,
)


def deviance_function(
    design: Design, reml: bool = True
) -> tuple[Callable[[np.ndarray], float], CrossProducts]:
    """The profiled deviance as a function of θ (lme4's ``mkLmerDevfun``).

    Returns the function and the cross-products it closes over.
    """
    cp = CrossProducts.build(design.y, design.X, design.terms, design.weights, design.offset)
    if any(t.structure != "us" for t in design.terms):
        # glmmTMB-style terms sharing a grouping factor: the same deviance on merged,
        # block-diagonal terms (see mixedmodels.lmm.structured); the model keeps cp's terms
        from ..lmm.structured import merged_crossprods

        merged = merged_crossprods(cp, design.y, design.X, design.weights, design.offset)
        if merged is not None:
            return _profiled_deviance(merged, reml), cp
    return _profiled_deviance(cp, reml), cp


def _profiled_deviance(cp: CrossProducts, reml: bool) -> Callable[[np.ndarray], float]:
    """``deviance(cp, θ, reml)`` as a function of θ; where a compiled kernel fits the
    model, the kernel bound to its arrays once, so that an evaluation is one call (the
    same call ``deviance`` makes, without its dispatch on every evaluation)."""
    compiled = compiled_deviance(cp, reml)
    if compiled is None:
        return lambda theta: deviance(cp, theta, reml)
    return compiled


def optimize_deviance(
    func: Callable[[np.ndarray], float],
    cp: CrossProducts,
    reml: bool,
    control: Control,
    nobs: int,
) -> tuple[OptSummary, bool]:
    """Minimize the profiled deviance over θ (the gradient path where it pays), with the
    restarts off a bound; the optimizer's summary and whether the fit converged."""
    calc = control.wants_derivatives("lmer", nobs)
    searched = _compiled_search(cp, reml, control, calc)
    if searched is not None:
        return searched
    # a compiled deviance calls no BLAS: switching its threads would cost ~30 µs a fit
    threads = nullcontext() if has_compiled_deviance(cp) else blas_threads_for(cp)
    with threads:
        if control.optimizer == "bobyqa" and _gradient_pays(cp):
            opt, derivatives = _fit_with_gradient(cp, reml, control, calc)
            exact = False
        else:
            opt = minimize(func, cp.initial_theta(), cp.lower_bounds(), control, pure=True)
            # minimize's objective, and that of a restart escape_boundary keeps, is
            # func(final); a correlation settled at its limit has a value of its own search
            opt = escape_boundary(func, opt, control)
            settled = settle_correlations_at_limit(func, opt, _correlation_indices(cp), control)
            exact, opt = settled is opt, settled
            derivatives = None
        converged = (
            check_convergence(func, opt, derivatives=derivatives, objective_is_exact=exact)
            if calc
            else opt.return_code != "MAXEVAL_REACHED"
        )
    return opt, converged


def _compiled_search(
    cp: CrossProducts, reml: bool, control: Control, calc: bool
) -> tuple[OptSummary, bool] | None:
    """θ̂ by the compiled quasi-Newton search on the exact gradient
    (:mod:`.compiled_search`) for a one-term model or scalar terms with a small dense
    tail, with the convergence check's Hessian from gradient differences; None, for
    BOBYQA's path, unless the search converged inside the bounds, off lme4's singular
    tolerance.

    Measured (2 cores, idle): sleepstudy ``(Days | Subject)`` 21 gradients against 62
    BOBYQA evaluations and 19 for the check; the same optimum, 1e-9 lower."""
    if control.optimizer != "bobyqa" or control != Control(calc_derivs=control.calc_derivs):
        return None
    kernel: Any = _single_term_kernel(cp)
    if kernel is not None and not kernel.compiled:
        return None
    if kernel is None:
        kernel = scalar_terms_kernel(cp)
        if kernel is None:
            return None
    lower = cp.lower_bounds()
    initial = cp.initial_theta()
    theta, value, gradient, evaluations, status = kernel.search(initial, lower, reml)
    # a singular fit, on its bound or converging towards it, is BOBYQA's, with restarts
    if status != compiled_search.CONVERGED or boundary_mask(theta, lower).any():
        return None
    opt = OptSummary(
        initial=initial, lower=lower, final=theta, objective=value, evaluations=evaluations,
        optimizer="compiled BFGS (exact gradient)", return_code="SUCCESS",
        ftol_rel=0.0, xtol_abs=0.0, gradient=gradient,
    )  # fmt: skip
    if not calc:
        return opt, True
    derivatives = gradient, kernel.hessian(theta, lower, reml)
    return opt, check_convergence(kernel.profiled(reml), opt, derivatives=derivatives)


def _correlation_indices(cp: CrossProducts) -> list[int]:
    """Positions in θ of the structured terms' unconstrained correlations (cs, ar1, toep)."""
    out: list[int] = []
    for structure, part in zip(cp.structures, cp.theta_slices, strict=True):
        n_sd = getattr(structure, "n_sd", None)
        if n_sd is not None and structure.k > 1:
            out.extend(range(part.start + n_sd, part.stop))
    return out


def _gradient_pays(cp: CrossProducts) -> bool:
    """Whether L-BFGS-B on the exact gradient beats BOBYQA for this model: scalar terms,
    a dense tail and at least three θ.  A gradient costs 2-3 deviances (the tail's
    inverse), so it pays only where BOBYQA needs many evaluations.  Measured side by side
    (2 cores, shared): InstEval (3 θ) 105 BOBYQA evaluations against ~22 gradients, about
    half the time; with two θ BOBYQA needs 30-38 and stays faster (500k crossed 28
    against 35, 8.5 s against 4.8 s; Chem97).  A small tail (pupils) has the compiled
    search first (:func:`_compiled_search`); when that refuses (a θ near its bound),
    BOBYQA's compiled evaluations cost less than these numpy gradients."""
    if supports_scalar_terms_kernel(cp):
        return False
    return supports_gradient(cp) and cp.q2 > 0 and cp.n_theta >= 3


def _fit_with_gradient(
    cp: CrossProducts, reml: bool, control: Control, calc: bool
) -> tuple[Any, tuple[np.ndarray, np.ndarray] | None]:
    """θ̂ by L-BFGS-B on the exact gradient, restarted off a bound as BOBYQA's fits are,
    and the convergence check's derivatives from gradient differences."""

    def func_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return deviance_and_gradient(cp, theta, reml)

    lower = cp.lower_bounds()
    start = separate_term_start(cp, reml)
    opt = minimize_with_gradient(
        func_and_gradient, start, lower, control, lambda theta: deviance(cp, theta, reml)
    )
    opt = _probe_off_bound(func_and_gradient, opt, control)
    derivatives = None
    if calc:
        derivatives = gradient_derivatives(
            lambda theta: func_and_gradient(theta)[1], opt.final, lower
        )
    return opt, derivatives


#: the starts of :func:`separate_term_start` are kept inside [floor, ceiling]: off the
#: bound, where the even deviance's zero slope would hold L-BFGS-B, and where a term alone
#: ran to the end of its bracket, lme4's start instead
_START_FLOOR, _START_CEILING = 0.05, 10.0


def separate_term_start(cp: CrossProducts, reml: bool) -> np.ndarray:
    """A start for θ of scalar terms: each term's relative SD fitted alone, with the
    fixed effects (the profiled deviance of ``y ~ X + (1 | term)`` from the term's own
    blocks, a golden-section search of a few dozen one-term deviances: ~2 ms on InstEval).
    The L-BFGS-B path's start; BOBYQA keeps lme4's θ = 1, from which its trust region
    starts wide (from this start it stopped short on a flat valley, see
    tests/test_lmm_gradient.py).

    Alone, a term's SD is relative to a residual that holds the other terms' variance,
    so the start is below the estimate but near it: InstEval's L-BFGS-B took 12 gradients
    from it where it took 22 from lme4's θ = 1 (same optimum, 2e-9 lower), each ~80 ms."""
    n = cp.n
    diagonal = cp.A22.diagonal()
    blocks = [(cp.A11[:, 0, 0], cp.C1[:, 0, :])]
    for index in range(1, len(cp.terms)):
        part = slice(cp.tail_offsets[index - 1], cp.tail_offsets[index])
        blocks.append((diagonal[part], cp.C2[part]))
    start = cp.initial_theta().copy()
    for index, (a, C) in enumerate(blocks):
        kernel = _SingleTermKernel.of_blocks(a[:, None, None], C[:, None, :], cp.XyXy, n)

        def alone(t: float, kernel: _SingleTermKernel = kernel) -> float:
            return kernel.value(np.array([t]), reml)

        found = _golden_section(alone, 0.0, _START_CEILING, 1e-3)
        if found < 0.99 * _START_CEILING and np.isfinite(alone(found)):
            start[index] = max(found, _START_FLOOR)
    return start


def _golden_section(
    func: Callable[[float], float], low: float, high: float, tolerance: float
) -> float:
    """The minimizer of a unimodal ``func`` on [low, high] to ``tolerance`` by golden
    section (no scipy.optimize import: ~30 MB of a process that needs none of it).

    Examples
    --------
    >>> round(float(_golden_section(lambda t: (t - 0.3) ** 2, 0.0, 10.0, 1e-6)), 5)
    0.3
    """
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = func(c), func(d)
    while b - a > tolerance:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = func(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = func(d)
    return float(a + b) / 2.0


#: how far off a bound the gradient path looks for a descent direction
_PROBE = 1e-3


def _probe_off_bound(
    func_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
    summary: Any,
    control: Control,
) -> Any:
    """Restarts of a gradient search that ended with a relative SD on its bound.

    The deviance is even in each scalar θ_j, so its gradient vanishes at θ_j = 0 and
    L-BFGS-B can stop there although the deviance falls off the bound (Chem97 ended
    at θ_lea = 0, 0.25 above the optimum at 0.054).  One gradient at θ_j = 1e-3 per such
    coordinate tells: a negative slope (or a lower value) restarts the search there,
    a fraction of the evaluations BOBYQA's restarts took (``optimize.escape_boundary``).
    """
    for _ in range(len(summary.final)):
        on_bound = np.flatnonzero(boundary_mask(summary.final, summary.lower))
        moved = None
        for j in on_bound:
            trial = summary.final.copy()
            trial[j] = summary.lower[j] + _PROBE
            value, grad = func_and_gradient(trial)
            summary.evaluations += 1
            if grad[j] < 0 or value < summary.objective:
                moved = trial
                break
        if moved is None:
            return summary
        restart = minimize_with_gradient(func_and_gradient, moved, summary.lower, control)
        if restart.objective > summary.objective:
            summary.evaluations += restart.evaluations
            return summary
        restart.evaluations += summary.evaluations
        restart.initial = summary.initial
        restart.optimizer = f"{summary.optimizer}, restarted off the bound"
        summary = restart
    return summary
