"""The plain-column design path against the general one, column for column.

``build_design`` reads a formula made only of plain numeric and factor columns as numpy
arrays (``design._plain_design``); everything else goes through ``_general_design``
(formulaic, pandas).  Both must give the same design: names, values, contrasts, level
order, missing-value handling, warnings, the model frame and the encoders of new data.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from mixedmodels.errors import DataError
from mixedmodels.frontend import design as dz
from mixedmodels.frontend.formula import parse_formula

pytestmark = pytest.mark.filterwarnings("ignore::mixedmodels.errors.MissingDataWarning")


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(13)
    n = 240
    x = rng.normal(size=n)
    x[[3, 50]] = np.nan
    grade = pd.Categorical(
        rng.choice(["b", "a", "c"], n), categories=["c", "b", "a", "unused"], ordered=False
    )
    grade[[7]] = np.nan
    site = rng.choice(["North", "south", "East", "east", "West"], n).astype(object)
    site[11] = None
    return pd.DataFrame(
        {
            "y": 1.0 + x + rng.normal(size=n),
            "count": rng.poisson(3.0, n),
            "x": x,
            "z": rng.normal(size=n),
            "k": rng.integers(0, 4, n),
            "grade": grade,
            "sex": pd.Series(rng.choice(["male", "female"], n), dtype="string"),
            "site": site,
            "g": rng.integers(10, 40, n),
            "h": pd.Categorical(rng.choice([f"h{i}" for i in range(12)], n)),
            "gf": rng.choice([1.5, 2.5, 3.5, 4.5, 5.5, 6.5, np.nan], n),
            "w": rng.uniform(0.5, 2.0, n),
            "occ.num": rng.normal(size=n),
            "flag": rng.integers(0, 2, n).astype(bool),
            "level": pd.Categorical(rng.choice(["lo", "mid", "hi"], n), ordered=True),
            "bracket": rng.choice(["a[1]", "b[2]"], n),
        },
        index=pd.RangeIndex(100, 100 + n),
    )


PLAIN = [
    "y ~ x + (1 | g)",
    "y ~ x + (x | g)",
    "y ~ 1 + x + z + (1 + x | h)",
    "y ~ x + grade + (1 | g)",
    "y ~ grade + sex + x + (1 | site)",
    "y ~ 0 + grade + sex + (1 | g)",
    "y ~ -1 + sex + grade + x + (1 | h)",
    "y ~ x + (1 | g) + (1 | h)",
    "y ~ x + (1 | g/h)",
    "y ~ x + (1 | g:site)",
    "y ~ z + (0 + x | g) + (1 | g)",
    "y ~ z + (x || g)",
    "y ~ k + (1 | gf)",
    "y ~ x + (0 + grade | h)",
    "y ~ x + (1 + sex | g)",
    "count ~ x + k + (1 | site)",
    "y ~ occ.num + (1 | g)",
    "y ~ 1 + (1 | h)",
    "y ~ x + diag(1 + x | g)",
]

GENERAL = [
    "y ~ x * z + (1 | g)",
    "y ~ x:z + (1 | g)",
    "y ~ log(count + 1) + (1 | g)",
    "y ~ flag + x + (1 | g)",
    "y ~ level + (1 | g)",
    "y ~ bracket + (1 | g)",
    "log(y + 10) ~ x + (1 | g)",
    "y ~ x + (1 | flag)",
    "y ~ x + z + x + (1 | g)",
]


def _designs(formula, data, **kwargs):
    spec = parse_formula(formula)
    frame = dz.as_dataframe(data)
    options = {"weights": None, "offset": None, "na_action": "omit", "response": None}
    options.update(kwargs)
    with warnings.catch_warnings(record=True) as plain_warnings:
        warnings.simplefilter("always")
        plain = dz._plain_design(spec, frame, **options)
    with warnings.catch_warnings(record=True) as general_warnings:
        warnings.simplefilter("always")
        general = dz._general_design(spec, frame, **options)
    assert [(w.category, str(w.message)) for w in plain_warnings] == [
        (w.category, str(w.message)) for w in general_warnings
    ]
    return plain, general


def _same(plain, general, data):
    np.testing.assert_array_equal(plain.y, general.y)
    assert plain.X.shape == general.X.shape
    np.testing.assert_array_equal(plain.X, general.X)
    assert plain.fixed_names == general.fixed_names
    assert plain.dropped_columns == general.dropped_columns
    assert plain.n_dropped_na == general.n_dropped_na
    np.testing.assert_array_equal(plain.kept_rows, general.kept_rows)
    pd.testing.assert_index_equal(plain.row_index, general.row_index)
    for a, b in ((plain.weights, general.weights), (plain.offset, general.offset)):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)
    assert len(plain.terms) == len(general.terms)
    new = data.iloc[[0, 5, 9, 20]]
    for a, b in zip(plain.terms, general.terms, strict=True):
        assert (a.group, a.columns, a.structure, a.expr, a.factors) == (
            b.group,
            b.columns,
            b.structure,
            b.expr,
            b.factors,
        )
        np.testing.assert_array_equal(a.codes, b.codes)
        assert a.codes.dtype == b.codes.dtype
        assert list(a.levels) == list(b.levels)
        np.testing.assert_array_equal(a.matrix, b.matrix)
        for first, second in zip(a.encode_rows(new), b.encode_rows(new), strict=True):
            np.testing.assert_array_equal(first, second)
    assert list(plain.fixed_model_spec.column_names) == list(general.fixed_model_spec.column_names)
    np.testing.assert_array_equal(plain.encode_fixed(new), general.encode_fixed(new))
    pd.testing.assert_frame_equal(plain.frame, general.frame)


@pytest.mark.parametrize("formula", PLAIN)
def test_plain_formulas_give_the_general_design(formula, data):
    plain, general = _designs(formula, data)
    assert plain is not None, "this formula should take the plain path"
    _same(plain, general, data)


@pytest.mark.parametrize("formula", GENERAL)
def test_other_formulas_take_the_general_path(formula, data):
    spec = parse_formula(formula)
    assert dz._plain_design(spec, data, None, None, "omit", None) is None


def test_weights_offset_and_a_given_response_as_glmer_passes_them(data):
    binary = np.array((data["y"] > 1).astype(float))
    binary[[4, 8]] = np.nan
    weights = data["w"].to_numpy().copy()
    weights[15] = np.nan
    for kwargs in (
        {"weights": "w"},
        {"weights": weights, "offset": "z"},
        {"response": binary, "weights": weights},
        {"offset": data["z"].to_numpy()},
    ):
        plain, general = _designs("y ~ x + grade + (1 | h)", data, **kwargs)
        assert plain is not None
        _same(plain, general, data)
    plain, general = _designs("y ~ x + offset(z) + (1 | h)", data.drop(columns="site"))
    assert plain is not None  # offset() of a plain column
    _same(plain, general, data)


def test_exclude_pads_as_the_general_path(data):
    plain, general = _designs("y ~ x + (1 | site)", data, na_action="exclude")
    assert plain is not None and plain.n_dropped_na > 0
    _same(plain, general, data)
    values = np.arange(plain.nobs, dtype=float)
    np.testing.assert_array_equal(plain.pad(values), general.pad(values))


def test_rank_deficient_columns_are_dropped_alike(data):
    frame = data.assign(x2=2.0 * data["x"])
    plain, general = _designs("y ~ x + x2 + (1 | g)", frame)
    assert plain is not None and plain.dropped_columns == ("x2",)
    _same(plain, general, frame)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x": np.inf}, "infinite"),
        ({"y": np.nan}, "na_action='fail'"),
    ],
)
def test_errors_are_the_general_paths(change, message, data):
    frame = data.copy()
    for name, value in change.items():
        frame.loc[frame.index[2], name] = value
    spec = parse_formula("y ~ x + (1 | g)")
    with pytest.raises(DataError, match=message):
        dz.build_design(spec, frame, na_action="fail" if "fail" in message else "omit")


def test_negative_weights_are_refused(data):
    spec = parse_formula("y ~ x + (1 | g)")
    with pytest.raises(DataError, match="non-negative"):
        dz.build_design(spec, data, weights=-data["w"].to_numpy())


def test_the_model_frame_does_not_follow_later_edits_of_the_data(data):
    frame = data.copy()
    design = dz.build_design(parse_formula("y ~ z + (1 | g)"), frame)
    before = frame["z"].iloc[0]
    frame.loc[frame.index[0], "z"] = 1e6
    frame["y"] = 0.0
    assert design.frame["z"].iloc[0] == before
    assert design.X[0, 1] == before
    assert design.frame["y"].iloc[1] != 0.0


def test_the_model_frame_of_a_read_csv_frame_does_not_follow_later_edits(tmp_path):
    """A frame as read_csv makes it (one block per column kind): the view the plain path
    keeps is protected by copy-on-write only while the Series it came from lives."""
    import gc

    rng = np.random.default_rng(14)
    path = tmp_path / "rows.csv"
    pd.DataFrame(
        {"y": rng.normal(size=60), "days": np.tile(np.arange(6), 10),
         "g": np.repeat(np.arange(10), 6)}
    ).to_csv(path, index=False)  # fmt: skip
    frame = pd.read_csv(path)
    design = dz.build_design(parse_formula("y ~ days + (1 | g)"), frame)
    gc.collect()
    frame.loc[0, "days"] = -1000
    frame.loc[0, "y"] = -1000.0
    assert design.frame["days"].iloc[0] == 0
    assert design.frame["y"].iloc[0] != -1000.0


def test_a_fit_on_the_plain_path_pickles_before_and_after_its_frame_is_read(data):
    import pickle

    import mixedmodels as mm

    model = mm.lmer("y ~ x + grade + (1 | h)", data)
    clone = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(clone.design.frame, model.design.frame)
    again = pickle.loads(pickle.dumps(model))  # the frame is built now: a DataFrame
    pd.testing.assert_frame_equal(again.design.frame, model.design.frame)
    assert again.loglik == model.loglik
