"""lme4 formula syntax: the seed's table 20.9, expansions, and errors with positions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixedmodels import FormulaError
from mixedmodels.frontend.formula import parse_formula


def terms(formula: str) -> list[tuple[str, str]]:
    return [(t.expr, t.group) for t in parse_formula(formula).random]


@pytest.mark.parametrize(
    ("formula", "fixed", "expected"),
    [
        ("y ~ x + (1|group)", "x", [("1", "group")]),
        ("y ~ x + (x|group)", "x", [("x", "group")]),
        ("y ~ x + (1+x|group)", "x", [("1+x", "group")]),
        ("y ~ x + (0+x|group)", "x", [("0+x", "group")]),
        ("y ~ x + (-1+x|group)", "x", [("-1+x", "group")]),
        ("y ~ x + (1|group) + (0+x|group)", "x", [("1", "group"), ("0+x", "group")]),
        ("y ~ x + (x||group)", "x", [("1", "group"), ("0 + x", "group")]),
        ("y ~ x + (1|site/block)", "x", [("1", "site"), ("1", "block:site")]),
        ("y ~ site + (1|site:block)", "site", [("1", "site:block")]),
        ("y ~ x + (x|site/block)", "x", [("x", "site"), ("x", "block:site")]),
        ("y ~ (x1|site) + (x2|block)", "1", [("x1", "site"), ("x2", "block")]),
        ("y ~ x*site + (x|site:block)", "x*site", [("x", "site:block")]),
        ("y ~ (1|group1) + (1|group2)", "1", [("1", "group1"), ("1", "group2")]),
        ("y ~ X + (1 + X|Subject) + (1|Item)", "X", [("1 + X", "Subject"), ("1", "Item")]),
        ("y ~ x + (0 + f | g)", "x", [("0 + f", "g")]),
        ("y ~ 0 + x + (1|g)", "0 + x", [("1", "g")]),
        ("y ~ x - 1 + (1|g)", "x - 1", [("1", "g")]),
        ("log(y) ~ I(x**2) + np.log(z) + (1|g)", "I(x**2) + np.log(z)", [("1", "g")]),
        ("y ~ (1|a/b/c)", "1", [("1", "a"), ("1", "b:a"), ("1", "c:b:a")]),
    ],
)
def test_random_effects_syntax(formula, fixed, expected):
    spec = parse_formula(formula)
    assert spec.fixed == fixed
    assert terms(formula) == expected


def test_double_bar_without_intercept_and_factors():
    assert terms("y ~ (0 + x + z || g)") == [("0 + x", "g"), ("0 + z", "g")]


def test_nested_factors_are_recorded():
    spec = parse_formula("y ~ (1 | hospital/ward)")
    assert [t.factors for t in spec.random] == [("hospital",), ("ward", "hospital")]


def test_covariance_structure_wrappers():
    spec = parse_formula("y ~ x + diag(1 + x | g) + us(1 | h)")
    assert [t.structure for t in spec.random] == ["diag", "us"]


@pytest.mark.parametrize(
    ("formula", "message", "position"),
    [
        ("y ~ x + (1|g", "Unclosed '\\('", 8),
        ("y ~ x + 1|g", "must be in parentheses", 9),
        ("y x", "No '~'", 3),
        ("y ~ x ~ z", "More than one '~'", 6),
        ("y ~ x + (1|)", "Missing grouping factor", 11),
        ("y ~ x + (|g)", "Nothing before", 9),
        ("y ~ x +", "Empty term", 7),
        ("y ~ x + (1|g|h)", "Only one", 12),
        ("y ~ x + (1|g+h)", "must be column names", 11),
        ("y ~ x)", "Unmatched", 5),
        ("y ~ x - (1|g)", "cannot be subtracted", 8),
    ],
)
def test_syntax_errors_point_at_the_problem(formula, message, position):
    with pytest.raises(FormulaError, match=message) as info:
        parse_formula(formula)
    assert info.value.position == position
    assert "^" in str(info.value)


def test_non_string_formula():
    with pytest.raises(FormulaError, match="must be a string"):
        parse_formula(3)  # type: ignore[arg-type]


ALPHABET = list("yxg~+-*:/|()01 ") + ["||", "(1|g)", "x", "I(", "**", "np.log(", "^"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ALPHABET), min_size=0, max_size=14).map("".join))
def test_random_strings_parse_or_raise_formula_error(text):
    try:
        spec = parse_formula(text)
    except FormulaError:
        return
    assert spec.text == text
    assert spec.fixed


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_arbitrary_text_parses_or_raises_formula_error(text):
    try:
        parse_formula(text)
    except FormulaError:
        pass
