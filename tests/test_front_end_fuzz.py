"""Property test of the whole front end: random formulas over random frames, edge cases
included, raise nothing but MixedModelsError subclasses (warnings are allowed)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mixedmodels as mm
from mixedmodels.errors import MixedModelsError

COLUMNS = ["y", "x", "z", "g", "h", "f", "occ.num", "when", "C", "flag", "obj", "ordered"]


def _frame(draw) -> pd.DataFrame:
    n = draw(st.integers(min_value=1, max_value=40))
    seed = draw(st.integers(min_value=0, max_value=2**16))
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n) * draw(st.sampled_from([1.0, 1e6, 0.0])),
            "z": rng.integers(0, 3, n).astype(float),
            "g": rng.integers(0, draw(st.integers(1, 8)), n).astype(str),
            "h": pd.Categorical(rng.choice(["a", "b", "c"], n)),
            "f": rng.choice(["u", "v"], n),
            "occ.num": np.arange(n, dtype=float),
            "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(n), unit="D"),
            "C": rng.normal(size=n),
            "flag": rng.integers(0, 2, n).astype(bool),
            "obj": pd.Series(rng.integers(0, 4, n), dtype=object),
            "ordered": pd.Categorical(
                rng.choice(["lo", "mid", "hi"], n), categories=["lo", "mid", "hi"], ordered=True
            ),
        }
    )
    for name in draw(st.lists(st.sampled_from(COLUMNS), max_size=3)):
        column = frame[name].astype(object)  # missing values (object: any dtype takes None)
        column.iloc[: draw(st.integers(0, n))] = None
        frame[name] = column
    if draw(st.booleans()):
        frame["y"] = draw(st.sampled_from([0.0, 1.0]))  # a constant response
    if draw(st.booleans()):
        frame["y01"] = (frame["y"] > 0).astype(float)
    return frame


FIXED = st.sampled_from(
    [
        "x",
        "z",
        "f",
        "h",
        "flag",
        "obj",
        "ordered",
        "occ.num",
        "`occ.num`",
        "when",
        "C",
        "poly(z, 2)",
        "scale(x)",
        "center(x)",
        "factor(z)",
        "log(x)",
        "I(x^2)",
        "x:f",
        "x*h",
        "offset(z)",
        "C(f, levels=['v', 'u'])",
        "nothing",
        "bs(x, df=3)",
        "0",
        "1",
    ]
)
RANDOM = st.sampled_from(
    ["(1 | g)", "(x | g)", "(1 | g/f)", "(0 + x | h)", "(x || g)", "(scale(x) | g)", "(1 | élève)"]
)


@st.composite
def cases(draw):
    frame = _frame(draw)
    terms = draw(st.lists(FIXED, min_size=0, max_size=3))
    random = draw(st.lists(RANDOM, min_size=0, max_size=2))
    response = draw(st.sampled_from(["y", "y01", "log(y)", "missing_response"]))
    formula = f"{response} ~ " + " + ".join(terms + random or ["1"])
    kind = draw(st.sampled_from(["lmer", "glmer", "lm"]))
    options = {}
    if draw(st.booleans()):
        options["weights"] = draw(
            st.sampled_from([np.zeros(len(frame)), np.ones(len(frame)), "z", "nothing"])
        )
    if draw(st.booleans()):
        options["na_action"] = draw(st.sampled_from(["omit", "exclude", "fail", "drop"]))
    return frame, formula, kind, options


def _fit(frame, formula, kind, options):
    if kind == "lm":
        options.pop("weights", None) if isinstance(options.get("weights"), str) else None
        return mm.lm(formula, frame, **options)
    # a bounded optimizer keeps each example quick: the property is about errors, not optima
    control = {"maxeval": 300}
    if kind == "glmer":
        return mm.glmer(formula, frame, family="binomial", control=control, **options)
    return mm.lmer(formula, frame, control=control, **options)


@pytest.mark.slow
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_the_front_end_raises_only_mixedmodels_errors(case):
    frame, formula, kind, options = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = _fit(frame, formula, kind, options)
            model.predict(frame.head(3))
            model.fitted()
        except MixedModelsError:
            pass
