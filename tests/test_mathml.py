"""The LaTeX → MathML converter on every equation to_latex writes, and its refusals."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from mixedmodels.toolbox.latex import _LINK_LHS
from mixedmodels.toolbox.mathml import LatexConversionError, latex_to_mathml


def _tree(mathml: str) -> ET.Element:
    return ET.fromstring(mathml)  # well-formed XML, not just tag soup


def _visible_text(root: ET.Element) -> str:
    annotation = root.find("./semantics/annotation")
    return "".join(
        text
        for element in root.iter()
        if element is not annotation
        for text in [element.text]
        if text
    )


def test_every_seed_equation_converts(seed_models):
    for name, model in seed_models.items():
        latex = model.to_latex()
        root = _tree(latex_to_mathml(latex))
        assert root.tag == "math" and root.get("display") == "block", name
        assert root.find("./semantics/annotation").text == latex
        shown = _visible_text(root)
        assert "\\" not in shown and "{" not in shown, name
        # every grouping factor's "for g j = 1, ..., J" line survives
        for group in model.ngroups:
            assert f"for {group} " in shown, (name, group)


def test_structure_of_the_random_slope_equation(seed_models):
    root = _tree(latex_to_mathml(seed_models["gpa_mixed2"].to_latex()))
    outer = root.find("./semantics/mtable")
    assert outer.get("columnalign") == "right left"
    assert len(outer.findall("./mtr")) == 2  # response line, random-effects line
    # the 2 x 2 covariance matrix: σ² on the diagonal, ρ off it
    matrices = [t for t in root.iter("mtable") if t.get("columnalign") == "center center"]
    assert len(matrices) == 1
    cells = [list(td.iter("mi"))[0].text for td in matrices[0].iter("mtd")]
    assert cells == ["σ", "ρ", "ρ", "σ"]
    assert root.findall(".//mo[@stretchy='true']")  # \left( ... \right) fences stretch


@pytest.mark.parametrize("link", sorted(_LINK_LHS))
def test_every_link_form_converts(link):
    lhs = _LINK_LHS[link].format(m="\\mu_{i}")
    root = _tree(
        latex_to_mathml(
            f"$$\n\\begin{{aligned}}\n  {lhs} &= \\alpha_{{j[i]}}\n\\end{{aligned}}\n$$"
        )
    )
    assert "\\" not in _visible_text(root)


def test_escapes_and_text_spacing():
    root = _tree(latex_to_mathml(r"\operatorname{ward\_type\ A}_{i} \text{ for x }", display=False))
    assert root.get("display") == "inline"
    names = [mi.text for mi in root.iter("mi")]
    assert "ward_type A" in names
    assert root.find(".//mtext").text == "\u00a0for x\u00a0"  # edge spaces kept


@pytest.mark.parametrize(
    ("latex", "message"),
    [
        (r"\mathbb{R}", r"\mathbb is not supported"),
        (r"\begin{pmatrix} a \end{pmatrix}", "pmatrix environment"),
        (r"x_{1", "expected '}'"),
        (r"x_1_2", "double subscript"),
        (r"\left( x", r"expected '\\right'"),
    ],
)
def test_unsupported_latex_is_refused_by_name(latex, message):
    with pytest.raises(LatexConversionError, match=re.escape(message)):
        latex_to_mathml(latex)
