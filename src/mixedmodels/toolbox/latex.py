"""The model equation in LaTeX, in equatiomatic's form (``extract_eq`` on an lmer fit).

The layout follows equatiomatic's output for ``lmerMod`` (Gelman & Hill's notation), so the
seed's equation is reproduced character for character:

* the response distribution ``y_i ~ N(α_{j[i]} + β_1(x), σ²)``, with the linear predictor
  inline for up to three predictors and on its own ``μ`` line beyond;
* a coefficient that varies by group gets the group's index ``j[i]`` (crossed and nested
  factors get ``k[i]``, ``l[i]``, ...: ``α_{j[i],k[i]}``);
* one distribution per grouping factor: a normal for a random intercept alone, a
  multivariate normal with the covariance matrix (σ² on the diagonal, ρ off it; 0 for
  uncorrelated terms such as ``||``) when slopes vary too.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

_INDEX_LETTERS = "jklmnopqrstuvwxyz"
#: equatiomatic puts the linear predictor on its own μ line beyond this many predictors
_INLINE_MAX = 3


def _escape(text: str) -> str:
    return re.sub(r"([_%&#$])", r"\\\1", text).replace(" ", "\\ ")


def _operatorname(text: str) -> str:
    return f"\\operatorname{{{_escape(text)}}}"


def _variable(name: str, frame: pd.DataFrame | None) -> str:
    """``sexfemale`` → ``\\operatorname{sex}_{\\operatorname{female}}``; ``a:b`` → ``a × b``."""
    parts = []
    for part in name.split(":"):
        rendered = _operatorname(part)
        if frame is not None:
            for column in sorted(frame.columns, key=len, reverse=True):
                if part.startswith(column) and part != column:
                    values = frame[column]
                    if not pd.api.types.is_numeric_dtype(values) or isinstance(
                        values.dtype, pd.CategoricalDtype
                    ):
                        level = part[len(column) :]
                        rendered = f"{_operatorname(column)}_{{{_operatorname(level)}}}"
                        break
        parts.append(rendered)
    return " \\times ".join(parts)


def _column_vector(entries: list[str]) -> str:
    rows = " \\\\\n".join(f"      &{e}" for e in entries)
    return (
        "\\left(\n"
        "  \\begin{array}{c} \n"
        "    \\begin{aligned}\n"
        f"{rows}\n"
        "    \\end{aligned}\n"
        "  \\end{array}\n"
        "\\right)"
    )


def _covariance_matrix(symbols: list[str], correlated: list[list[bool]]) -> str:
    lines = []
    for a, row_symbol in enumerate(symbols):
        cells = []
        for b, column_symbol in enumerate(symbols):
            if a == b:
                cells.append(f"\\sigma^2_{{{row_symbol}}}")
            elif correlated[a][b]:
                cells.append(f"\\rho_{{{row_symbol}{column_symbol}}}")
            else:
                cells.append("0")
        lines.append("     " + " & ".join(cells))
    body = " \\\\ \n".join(lines)
    return (
        f"\\left(\n  \\begin{{array}}{{{'c' * len(symbols)}}}\n{body}\n  \\end{{array}}\n\\right)"
    )


_LINK_LHS = {
    "logit": "\\log\\left[\\frac{{\\hat{{{m}}}}}{{1 - \\hat{{{m}}}}} \\right]",
    "probit": "\\Phi^{{-1}}(\\hat{{{m}}})",
    "cloglog": "\\log(-\\log(1 - \\hat{{{m}}}))",
    "log": "\\log({m})",
    "identity": "{m}",
    "inverse": "1 / {m}",
    "1/mu^2": "1 / {m}^{{2}}",
    "sqrt": "\\sqrt{{{m}}}",
}


def _glmm_lines(model: Any, family: Any, linear: str) -> list[str]:
    """equatiomatic's first two lines for a glmer fit: the response distribution and the
    link of its mean set equal to the linear predictor."""
    from ..frontend.formula import parse_formula

    response_text = parse_formula(model.formula).response
    response = _operatorname(response_text)
    level = getattr(model, "success_level", None)
    success = f" = {_operatorname(level)}" if level else ""
    distribution = family.latex_distribution(response, success, model.sigma**2)
    if distribution is None:
        from ..errors import refuse

        raise refuse(
            f"{family.name} glmer fit", "to_latex", "m.summary()", "equatiomatic has no form"
        )
    text, mean = distribution
    first = f"  {response}_{{i}}  &\\sim {text}"
    template = _LINK_LHS.get(family.link.name, "g({m})")
    return [first, f"    {template.format(m=mean)} &={linear}"]


def to_latex(model: Any) -> str:
    """The equation of a fitted mixed model, as equatiomatic's ``extract_eq``.

    Parameters
    ----------
    model : LinearMixedModel

    Returns
    -------
    str
        LaTeX source wrapped in ``$$ ... $$`` with an ``aligned`` environment.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> print(m.to_latex())
    $$
    \\begin{aligned}
      \\operatorname{gpa}_{i}  &\\sim N \\left(\\alpha_{j[i]} + \\beta_{1}(\\operatorname{occasion}), \\sigma^2 \\right) \\\\
        \\alpha_{j}  &\\sim N \\left(\\mu_{\\alpha_{j}}, \\sigma^2_{\\alpha_{j}} \\right)
        \\text{, for student j = 1,} \\dots \\text{,J}
    \\end{aligned}
    $$
    """  # noqa: E501
    design = model.design
    frame = design.frame
    fixed = list(design.fixed_names)
    crossprods = getattr(model, "crossprods", None)  # an lm has no random-effects terms
    terms = list(crossprods.terms) if crossprods is not None else []
    order = list(getattr(crossprods, "order", range(len(terms))))
    # grouping factors in formula order; terms sharing a factor form one block
    by_position = sorted(range(len(terms)), key=lambda i: order[i])
    groups = _grouping_factors(terms, by_position)
    letter = {g: _INDEX_LETTERS[n] for n, g in enumerate(groups)}
    symbols, varying, blocks = _coefficient_symbols(fixed, terms, by_position, groups)

    def subscript_in_predictor(name: str) -> str:
        index = ",".join(f"{letter[g]}[i]" for g in varying.get(name, []))
        if symbols[name] == "\\alpha":
            return f"\\alpha_{{{index}}}" if index else "\\alpha"
        return f"{symbols[name]}{index}}}"

    predictors = []
    for name in fixed:
        if name == "Intercept":
            predictors.append(subscript_in_predictor(name))
        else:
            predictors.append(f"{subscript_in_predictor(name)}({_variable(name, frame)})")
    linear = " + ".join(predictors) if predictors else "0"
    response = _operatorname(design.spec.response)
    n_predictors = len([n for n in fixed if n != "Intercept"])
    family = getattr(model, "family", None)
    if family is not None:
        lines = _glmm_lines(model, family, linear)
    elif n_predictors <= _INLINE_MAX:
        lines = [f"  {response}_{{i}}  &\\sim N \\left({linear}, \\sigma^2 \\right)"]
    else:
        lines = [
            f"  {response}_{{i}}  &\\sim N \\left(\\mu, \\sigma^2 \\right)",
            f"    \\mu &={linear}",
        ]

    pieces = _random_effect_blocks(groups, blocks, letter, symbols)
    body = " \\\\\n".join(lines)
    for is_vector, text in pieces:
        body += (" \\\\    \n" if is_vector else " \\\\\n") + text
    return f"$$\n\\begin{{aligned}}\n{body}\n\\end{{aligned}}\n$$"


def _grouping_factors(terms: list, by_position: list[int]) -> list[str]:
    """The grouping factors in formula order (terms sharing a factor form one block)."""
    groups: list[str] = []
    for i in by_position:
        if terms[i].group not in groups:
            groups.append(terms[i].group)
    if len(groups) > len(_INDEX_LETTERS):
        raise ValueError(f"to_latex supports up to {len(_INDEX_LETTERS)} grouping factors.")
    return groups


def _coefficient_symbols(
    fixed: list[str], terms: list, by_position: list[int], groups: list[str]
) -> tuple[dict[str, str], dict[str, list[str]], dict[str, list[tuple[str, int]]]]:
    """The symbol of every coefficient (α for the intercept, β_1.. for the fixed effects,
    then β for random slopes without a fixed counterpart, appended to ``fixed``), the
    grouping factors each varies over, and each factor's (coefficient, term id) block."""
    symbols: dict[str, str] = {}
    number = 0
    for name in fixed:
        if name == "Intercept":
            symbols[name] = "\\alpha"
        else:
            number += 1
            symbols[name] = f"\\beta_{{{number}"
    varying: dict[str, list[str]] = {}  # coefficient → grouping factors it varies over
    blocks: dict[str, list[tuple[str, int]]] = {g: [] for g in groups}  # (coef, term id)
    for i in by_position:
        term = terms[i]
        for column in term.columns:
            name = "Intercept" if column == "(Intercept)" else column
            if name not in symbols:
                number += 1
                symbols[name] = f"\\beta_{{{number}"
                fixed.append(name)
            varying.setdefault(name, []).append(term.group)
            blocks[term.group].append((name, i))
    return symbols, varying, blocks


def _symbol_in_block(symbols: dict[str, str], letter: dict[str, str], name: str, group: str) -> str:
    """A coefficient's symbol indexed by one grouping factor's letter."""
    if symbols[name] == "\\alpha":
        return f"\\alpha_{{{letter[group]}}}"
    return f"{symbols[name]}{letter[group]}}}"


def _random_effect_blocks(
    groups: list[str],
    blocks: dict[str, list[tuple[str, int]]],
    letter: dict[str, str],
    symbols: dict[str, str],
) -> list[tuple[bool, str]]:
    """One line per grouping factor: the distribution of its random effects (a scalar
    normal, or a multivariate normal of the vector with its covariance matrix)."""
    pieces = []
    for group in groups:
        members = blocks[group]
        g = letter[group]
        label = group.replace("_", "\\_")
        footer = f"    \\text{{, for {label} {g} = 1,}} \\dots \\text{{,{g.upper()}}}"
        if len(members) == 1:
            symbol = _symbol_in_block(symbols, letter, members[0][0], group)
            pieces.append(
                (
                    False,
                    f"    {symbol}  &\\sim N \\left(\\mu_{{{symbol}}}, "
                    f"\\sigma^2_{{{symbol}}} \\right)\n{footer}",
                )
            )
            continue
        block_symbols = [_symbol_in_block(symbols, letter, name, group) for name, _ in members]
        term_ids = [i for _, i in members]
        correlated = [[a == b for b in term_ids] for a in term_ids]
        means = ["\\mu_{" + s + "}" for s in block_symbols]
        text = (
            f"{_column_vector(block_symbols)}\n"
            f"  &\\sim N \\left(\n"
            f"{_column_vector(means)}\n"
            ", \n"
            f"{_covariance_matrix(block_symbols, correlated)}\n"
            " \\right)\n"
            f"{footer}"
        )
        pieces.append((True, text))

    return pieces
