"""mixedmodels.lmm.optimize: bounds of minimize and the refit step rule."""

from __future__ import annotations

import numpy as np
import pytest

from mixedmodels.errors import ConvergenceWarning
from mixedmodels.lmm.optimize import (
    REFIT_CONTROL,
    Control,
    check_convergence,
    minimize,
    relative_step,
)


def _bowl(x: np.ndarray) -> float:
    return float(np.sum((x - np.array([3.0, -2.0])) ** 2))


def test_minimize_respects_upper_and_lower_bounds():
    lower, upper = np.array([0.0, -1.0]), np.array([1.0, np.inf])
    opt = minimize(_bowl, np.array([0.5, 0.0]), lower, REFIT_CONTROL, upper=upper)
    np.testing.assert_allclose(opt.final, [1.0, -1.0], atol=1e-7)
    assert opt.objective == pytest.approx(_bowl(opt.final))
    # without upper bounds the first coordinate reaches the minimum at 3
    free = minimize(_bowl, np.array([0.5, 0.0]), lower, Control())
    np.testing.assert_allclose(free.final, [3.0, -1.0], atol=1e-6)


def test_minimize_moves_the_start_inside_the_bounds():
    lower, upper = np.zeros(2), np.ones(2)
    opt = minimize(_bowl, np.array([5.0, -5.0]), lower, REFIT_CONTROL, upper=upper)
    np.testing.assert_array_equal(opt.initial, [1.0, 0.0])
    np.testing.assert_allclose(opt.final, [1.0, 0.0], atol=1e-7)


def test_minimize_refuses_a_non_finite_start():
    with pytest.raises(FloatingPointError, match="not finite at the starting values"):
        minimize(lambda x: np.nan, np.zeros(1), np.zeros(1), Control())


def test_relative_step_stays_within_half_the_room():
    x0 = np.array([0.0, 5.0, 0.9, 0.0])
    lower = np.array([0.0, 0.0, -1.0, 0.0])
    upper = np.array([np.inf, np.inf, 1.0, 0.0])
    step = relative_step(x0, lower, upper)
    # 0.02 floor; 10% of 5; capped at half the room to the farther bound (0.95); no room
    np.testing.assert_allclose(step, [0.02, 0.5, 0.09, 0.02])


def test_a_deviance_infinite_beside_the_optimum_fails_the_convergence_check():
    # f is finite only for x >= 0 and least at its edge: the finite differences there meet
    # +inf, which must not pass as a small gradient
    def func(x):
        return float(x[0] ** 2 + 1.0) if x[0] >= 0 else np.inf

    opt = minimize(func, np.array([1.0]), np.array([-np.inf]), Control())
    assert abs(opt.final[0]) < 1e-3
    with pytest.warns(ConvergenceWarning, match="not finite next to the estimate"):
        assert not check_convergence(func, opt)
