"""The fast encoder of main-effects formulas (no formulaic) against formulaic itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixedmodels.errors import DataError
from mixedmodels.frontend import _formulaic_compat as fc
from mixedmodels.frontend.design import _prepare_frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 60
    raw = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "sex": rng.choice(["male", "female"], n),
            "grade": rng.choice(["b", "a", "c"], n),
            "k": rng.integers(0, 3, n),
            "flag": rng.integers(0, 2, n).astype(bool),
        }
    )
    return _prepare_frame(raw, set())


@pytest.mark.parametrize(
    "rhs",
    ["1 + x", "x + sex", "sex + x + grade", "0 + sex + grade", "0 + x + grade + sex", "grade - 1"],
)
def test_main_effects_encode_as_formulaic_does(rhs, frame):
    fast = fc._simple_spec(rhs, frame)
    assert fast is not None
    reference = fc._materialize(rhs, frame)
    names = [fc.r_name(str(c)) for c in reference.columns]
    assert list(fast.column_names) == names
    np.testing.assert_array_equal(fast.get_model_matrix(frame), np.asarray(reference, float))
    terms = fc.fixed_terms(fast)
    assert [t.columns for t in terms] == [t.columns for t in fc.fixed_terms(reference.model_spec)]
    assert [t.numeric for t in terms] == [t.numeric for t in fc.fixed_terms(reference.model_spec)]


@pytest.mark.parametrize("rhs", ["x * sex", "x:sex", "np.log(x + 3)", "flag + x"])
def test_other_formulas_go_to_formulaic(rhs, frame):
    if rhs == "flag + x":  # a logical column is a factor with levels FALSE/TRUE: fast too
        spec = fc._simple_spec(rhs, frame)
        assert spec is not None and spec.column_names == ("Intercept", "flagTRUE", "x")
        return
    assert fc._simple_spec(rhs, frame) is None


def test_new_data_with_an_unseen_level_is_refused(frame):
    spec = fc._simple_spec("x + grade", frame)
    new = pd.DataFrame({"x": [0.1, 0.2], "grade": ["a", "z"]})
    with pytest.raises(DataError, match="did not see"):
        spec.get_model_matrix(new)
    missing = spec.get_model_matrix(pd.DataFrame({"x": [0.1], "grade": [None]}))
    assert np.isnan(missing[0, 2:]).all()
