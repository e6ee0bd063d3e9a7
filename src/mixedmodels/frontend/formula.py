"""lme4 formula syntax -> :class:`ModelSpec`.

formulaic cannot parse ``(1 | g)`` (its ``|`` separates formula parts), so the bar
syntax is handled here, as lme4 moved it into ``reformulas``: the random-effects
terms are found, ``||`` and ``/`` are expanded, and only the fixed part and each
bar's left-hand side are handed to formulaic later (see :mod:`mixedmodels.frontend.design`).

Examples
--------
>>> from mixedmodels.frontend.formula import parse_formula
>>> spec = parse_formula("y ~ x + (x || g) + (1 | site/block)")
>>> spec.fixed
'x'
>>> [(t.expr, t.group) for t in spec.random]
[('1', 'g'), ('0 + x', 'g'), ('1', 'site'), ('1', 'block:site')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..errors import FormulaError

#: glmmTMB covariance-structure wrappers recognised around a bar term.
COVARIANCE_STRUCTURES = ("us", "diag", "cs", "ar1", "toep")
_SUPPORTED_STRUCTURES = COVARIANCE_STRUCTURES

# R names: letters (any script), digits, '_' and '.', not starting with a digit; or backticked
_NAME = r"(?:(?:[^\W\d]|\.)[\w.]*|`[^`]+`)"
_OFFSET_RE = re.compile(r"^\s*offset\s*\((.*)\)\s*$", re.S)
_GROUP_RE = re.compile(rf"^\s*{_NAME}\s*(?:[:/]\s*{_NAME}\s*)*$")
_OPEN = "([{"
_CLOSE = ")]}"


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | group)`` after expansion.

    Attributes
    ----------
    expr : str
        Left-hand side of the bar, a formula right-hand side such as ``"1 + occasion"``.
    group : str
        The grouping expression with nesting expanded, e.g. ``"hospital:ward"``.
    factors : tuple of str
        Columns whose interaction defines the groups, e.g. ``("hospital", "ward")``.
    structure : str
        Covariance structure of the term: ``"us"`` (unstructured, lme4's), or glmmTMB's
        ``"diag"``, ``"cs"``, ``"ar1"`` or ``"toep"`` (see :mod:`mixedmodels.lmm.covariance`).
    """

    expr: str
    group: str
    factors: tuple[str, ...]
    structure: str = "us"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed mixed-model formula.

    Attributes
    ----------
    text : str
        The formula as given.
    response : str
        Left-hand side expression (``""`` when absent).
    fixed : str
        Fixed-effects right-hand side for formulaic (``"1"`` when only bars were given).
    random : tuple of RandomTerm
        Random-effects terms in formula order, ``||`` and ``/`` expanded.
    offsets : tuple of str
        The expressions of the formula's ``offset(...)`` terms, taken out of ``fixed``.
    """

    text: str
    response: str
    fixed: str
    random: tuple[RandomTerm, ...]
    offsets: tuple[str, ...] = ()

    @property
    def has_random(self) -> bool:
        return bool(self.random)


def _scan_depths(text: str, offset: int, formula: str) -> list[int]:
    """Nesting depth before each character; raise on unbalanced brackets."""
    depths = []
    stack: list[tuple[str, int]] = []
    in_quote: str | None = None
    for i, ch in enumerate(text):
        depths.append(len(stack))
        if in_quote:
            if ch == in_quote:
                in_quote = None
            continue
        if ch in "`'\"":
            in_quote = ch
        elif ch in _OPEN:
            stack.append((ch, i))
        elif ch in _CLOSE:
            if not stack:
                raise FormulaError(f"Unmatched '{ch}'.", formula, offset + i)
            opener, _ = stack.pop()
            if _OPEN.index(opener) != _CLOSE.index(ch):
                raise FormulaError(f"'{opener}' closed by '{ch}'.", formula, offset + i)
    if in_quote:
        raise FormulaError(f"Unclosed quote {in_quote}.", formula, offset + len(text))
    if stack:
        raise FormulaError(
            f"Unclosed '{stack[-1][0]}': add the matching closing bracket.",
            formula,
            offset + stack[-1][1],
        )
    return depths


def _split_top(text: str, depths: list[int]) -> list[tuple[str, str, int]]:
    """Split at depth-0 ``+``/``-`` into (sign, term, start offset) triples."""
    parts: list[tuple[str, str, int]] = []
    sign, start = "+", 0
    for i, ch in enumerate(text):
        if depths[i] != 0 or ch not in "+-":
            continue
        before = text[start:i].strip()
        if not before:  # a sign leading the next term
            if ch == "-":
                sign = "-" if sign == "+" else "+"
            start = i + 1
            continue
        if before[-1] in "*:/^~%,=<>|":  # unary sign inside the term, e.g. x:-1
            continue
        parts.append((sign, text[start:i], start))
        sign, start = ch, i + 1
    parts.append((sign, text[start:], start))
    return parts


def _bar_position(text: str, depths: list[int]) -> int | None:
    for i, ch in enumerate(text):
        if ch == "|" and depths[i] == 0:
            return i
    return None


def _expand_group(group: str, formula: str, offset: int) -> list[tuple[str, tuple[str, ...]]]:
    group = group.strip()
    if not group:
        raise FormulaError(
            "Missing grouping factor after '|': write e.g. (1 | subject).", formula, offset
        )
    if not _GROUP_RE.match(group):
        raise FormulaError(
            f"Grouping factor '{group}' must be column names joined by ':' (interaction)"
            " or '/' (nesting).",
            formula,
            offset,
        )
    nested = [piece.strip() for piece in group.split("/")]
    expanded = []
    for depth in range(1, len(nested) + 1):
        # lme4 names the nested factor inner-first: (1 | batch/cask) gives "cask:batch"
        names: list[str] = []
        for piece in reversed(nested[:depth]):
            names.extend(n.strip().strip("`") for n in piece.split(":"))
        expanded.append((":".join(names), tuple(names)))
    return expanded


def _split_double_bar(expr: str, formula: str, offset: int) -> list[str]:
    """``(x || g)``: intercept and each term of ``x`` get their own uncorrelated term."""
    depths = _scan_depths(expr, offset, formula)
    intercept = True
    terms: list[str] = []
    for sign, term, _ in _split_top(expr, depths):
        term = term.strip()
        if term in ("0", "-1") or (sign == "-" and term == "1"):
            intercept = False
        elif term == "1":
            intercept = True
        elif term:
            if sign == "-":
                raise FormulaError(
                    "Removing terms with '-' inside '||' is not supported.", formula, offset
                )
            terms.append(term)
    return (["1"] if intercept else []) + [f"0 + {t}" for t in terms]


def _check_formulaic(rhs: str, formula: str, offset: int) -> None:
    """Let formulaic parse a right-hand side now so that syntax errors surface as ours."""
    from formulaic import Formula

    try:
        parsed = Formula(rhs)
        if hasattr(parsed, "lhs") or "|" in str(parsed):
            raise ValueError("unexpected formula part")
    except FormulaError:
        raise
    except Exception as exc:  # formulaic raises several types; they all mean bad syntax here
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FormulaError(f"Cannot parse '{rhs.strip()}': {detail}", formula, offset) from None


def parse_formula(formula: str) -> ModelSpec:
    """Parse an lme4-style model formula.

    Parameters
    ----------
    formula : str
        ``response ~ fixed terms + (expr | group) + ...`` with lme4's random-effects
        syntax: ``(1|g)``, ``(x|g)``, ``(0 + x|g)``, ``(x||g)``, ``(1|a/b)``,
        ``(1|a:b)``, and glmmTMB's ``us(x|g)`` / ``diag(x|g)`` wrappers.

    Returns
    -------
    ModelSpec

    Raises
    ------
    FormulaError
        With the position of the problem.

    Examples
    --------
    >>> parse_formula("gpa ~ occasion + (1 + occasion | student)").random[0].expr
    '1 + occasion'
    """
    if not isinstance(formula, str):
        raise FormulaError(f"The formula must be a string. Got {type(formula).__name__}.")
    return _parse_formula(formula)


@lru_cache(maxsize=512)
def _parse_formula(formula: str) -> ModelSpec:
    """The parse itself, cached: a formula is parsed once per process."""
    response, rhs, rhs_offset, rhs_depths = _split_tilde(formula)
    fixed_parts: list[str] = []
    offsets: list[str] = []
    random: list[RandomTerm] = []
    for sign, term, start in _split_top(rhs, [d for d in rhs_depths]):
        position = rhs_offset + start + (len(term) - len(term.lstrip()))
        stripped = term.strip()
        if not stripped:
            raise FormulaError("Empty term: a '+' or '-' has nothing beside it.", formula, position)
        structure, inner, inner_offset, bar = _find_bar(stripped, position, formula)
        if bar is None:
            offset = _fixed_term(sign, stripped, structure, formula, position)
            if offset is not None:
                offsets.append(offset)
            else:
                fixed_parts.append(f"{'-' if sign == '-' else '+'} {stripped}")
            continue
        if sign == "-":
            raise FormulaError("A random-effects term cannot be subtracted.", formula, position)
        random.extend(_random_terms(structure, inner, inner_offset, bar, formula, position))
    return ModelSpec(
        text=formula,
        response=response,
        fixed=_fixed_text(fixed_parts),
        random=tuple(random),
        offsets=tuple(offsets),
    )


def _split_tilde(formula: str) -> tuple[str, str, int, list[int]]:
    """The response, the right-hand side, where it starts and its bracket depths; the
    errors of a formula without (or with more than one) top-level '~'."""
    if not formula.strip():
        raise FormulaError("The formula is empty: write e.g. 'y ~ x + (1 | g)'.")
    depths = _scan_depths(formula, 0, formula)
    tildes = [i for i, ch in enumerate(formula) if ch == "~" and depths[i] == 0]
    if not tildes:
        raise FormulaError(
            "No '~' in the formula: write 'response ~ predictors'.", formula, len(formula)
        )
    if len(tildes) > 1:
        raise FormulaError("More than one '~' in the formula.", formula, tildes[1])
    tilde = tildes[0]
    response = formula[:tilde].strip()
    rhs_offset = tilde + 1
    rhs = formula[rhs_offset:]
    if not rhs.strip():
        raise FormulaError("Nothing after '~': add predictors or 1.", formula, len(formula))
    if response:
        _check_formulaic(response, formula, 0)
    return response, rhs, rhs_offset, depths[rhs_offset:]


def _find_bar(
    stripped: str, position: int, formula: str
) -> tuple[str | None, str | None, int, int | None]:
    """A term's covariance-structure wrapper (or None), the text inside its brackets (or
    None), where that starts, and the position of its '|' there (None: no random term)."""
    structure = None
    inner = None
    inner_offset = position
    match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)$", stripped, re.S)
    if stripped.startswith("(") and stripped.endswith(")"):
        local = _scan_depths(stripped, position, formula)
        if all(d > 0 for d in local[1:]):  # one bracket pair wraps the whole term
            inner, inner_offset = stripped[1:-1], position + 1
    elif match and match.group(1) in COVARIANCE_STRUCTURES:
        structure = match.group(1)
        inner = match.group(2)
        inner_offset = position + stripped.index("(") + 1
    if inner is not None:
        inner_depths = _scan_depths(inner, inner_offset, formula)
        bar = _bar_position(inner, inner_depths)
    else:
        bar = None
    return structure, inner, inner_offset, bar


def _fixed_term(
    sign: str, stripped: str, structure: str | None, formula: str, position: int
) -> str | None:
    """Check a term without a random-effects bar: the offset's expression for an
    ``offset(...)`` term, None for a fixed-effects term."""
    term_depths = _scan_depths(stripped, position, formula)
    loose_bar = _bar_position(stripped, term_depths)
    if loose_bar is not None:
        raise FormulaError(
            "A random-effects term must be in parentheses: write (expr | group).",
            formula,
            position + loose_bar,
        )
    if structure is not None:
        raise FormulaError(
            f"'{structure}(...)' needs a random-effects term inside: {structure}(x | g).",
            formula,
            position,
        )
    offset_match = _OFFSET_RE.match(stripped)
    if offset_match:
        if sign == "-":
            raise FormulaError("An offset cannot be subtracted.", formula, position)
        _check_formulaic(offset_match.group(1), formula, position)
        return _normalise(offset_match.group(1))
    _check_formulaic(stripped, formula, position)
    return None


def _random_terms(
    structure: str | None, inner: str, inner_offset: int, bar: int, formula: str, position: int
) -> list[RandomTerm]:
    """The random-effects terms of one bracketed ``(expr | group)`` (``||`` and ``/``
    expanded into several)."""
    structure = structure or "us"
    if structure not in _SUPPORTED_STRUCTURES:
        raise FormulaError(
            f"Covariance structure '{structure}' is not supported yet. Expecting one of "
            f"{set(_SUPPORTED_STRUCTURES)}.",
            formula,
            position,
        )
    double = bar + 1 < len(inner) and inner[bar + 1] == "|"
    lhs = inner[:bar]
    group_text = inner[bar + (2 if double else 1) :]
    group_offset = inner_offset + bar + (2 if double else 1)
    if "|" in group_text:
        raise FormulaError(
            "Only one '|' per random-effects term.",
            formula,
            group_offset + group_text.index("|"),
        )
    if not lhs.strip():
        raise FormulaError(
            "Nothing before '|': write (1 | g) for a random intercept.", formula, inner_offset
        )
    _check_formulaic(lhs, formula, inner_offset)
    groups = _expand_group(group_text, formula, group_offset)
    exprs = _split_double_bar(lhs, formula, inner_offset) if double else [lhs.strip()]
    if not exprs:
        raise FormulaError("The term has no random effects.", formula, inner_offset)
    return [
        RandomTerm(_normalise(expr), group, factors, structure)
        for group, factors in groups
        for expr in exprs
    ]


def _fixed_text(fixed_parts: list[str]) -> str:
    """The fixed-effects formula from its signed terms (``1`` when there are none)."""
    fixed = " ".join(fixed_parts).strip()
    if fixed.startswith("+ "):
        fixed = fixed[2:]
    if not fixed:
        fixed = "1"
    elif fixed.startswith("- "):
        fixed = "1 " + fixed
    return fixed


def _normalise(expr: str) -> str:
    return re.sub(r"\s+", " ", expr.strip())
