"""Refitting a model with changes, as R's ``update()`` and ``update.formula()``.

Every fit records how it was called (:class:`FitCall`: the fitting function and its
arguments, the data included); ``update`` calls that function again with the changes.
A new formula may use R's dots: in ``". ~ . + x"`` the left ``.`` is the old response and
the right ``.`` the old right-hand side; ``- term`` removes a term (``a*b`` is expanded to
``a + b + a:b`` when a part of it is removed), so ``"~ . - (1 | g)"`` drops a random term.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from ..errors import FormulaError


@functools.cache
def _parameter_names(function: Callable[..., Any]) -> frozenset[str]:
    """A fitting function's parameters (read once: every fit records its call)."""
    return frozenset(inspect.signature(function).parameters)


@dataclass(frozen=True)
class FitCall:
    """The fitting function of a model and the arguments it was called with."""

    function: Callable[..., Any]
    arguments: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def capture(cls, function: Callable[..., Any], arguments: dict[str, Any]) -> FitCall:
        names = _parameter_names(function)
        return cls(function, {k: v for k, v in arguments.items() if k in names})

    def attach(self, model: Any) -> Any:
        model.call = self
        return model

    def refit(self, formula: str | None = None, data: Any = None, **options: Any) -> Any:
        allowed = [n for n in inspect.signature(self.function).parameters if n != "formula"]
        unknown = [k for k in options if k not in allowed]
        if unknown:
            raise TypeError(
                f"update() got options {unknown} that {self.function.__name__}() does not "
                f"take (expecting any of {allowed})."
            )
        arguments = dict(self.arguments)
        if formula is not None:
            arguments["formula"] = update_formula(arguments["formula"], formula)
        if data is not None:
            arguments["data"] = data
        arguments.update(options)
        return self.function(**arguments)


def update(model: Any, formula: str | None = None, data: Any = None, **options: Any) -> Any:
    """Refit ``model`` with a new formula (R's dots allowed), data or options, through
    the call that fitted it, as R's ``update``; DataError for a model built directly."""
    from ..errors import DataError

    if getattr(model, "call", None) is None:
        raise DataError(
            "update() needs the call that fitted the model; this model was built "
            "directly. Fit it with mm.lmer/mm.glmer/mm.lm."
        )
    return model.call.refit(formula=formula, data=data, **options)


def _split_top(text: str, separators: str) -> list[tuple[str, str]]:
    """Split at top-level separators; each piece with the separator before it."""
    pieces, depth, start, sign = [], 0, 0, "+"
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch in separators:
            pieces.append((sign, text[start:i]))
            sign, start = ch, i + 1
    pieces.append((sign, text[start:]))
    return [(s, p.strip()) for s, p in pieces if p.strip()]


def _sides(formula: str) -> tuple[str, str]:
    parts = _split_top(formula, "~")
    if len(parts) == 1 and formula.strip().startswith("~"):
        return "", parts[0][1]
    if len(parts) != 2:
        raise FormulaError(f"Expecting a formula 'y ~ terms' or '~ terms'. Got {formula!r}.")
    return parts[0][1], parts[1][1]


def _key(term: str) -> str:
    text = re.sub(r"\s+", "", term)
    if ":" in text and "(" not in text:
        return ":".join(sorted(text.split(":")))
    return text


def _expand_products(terms: list[str]) -> list[str]:
    out: list[str] = []
    for term in terms:
        parts = [p for _, p in _split_top(term, "*")]
        if len(parts) == 1:
            out.append(term)
            continue
        for size in range(1, len(parts) + 1):
            out.extend(":".join(c) for c in combinations(parts, size))
    return out


def update_formula(old: str, new: str) -> str:
    """The formula ``new`` with R's dots filled in from ``old`` (``update.formula``).

    Examples
    --------
    >>> update_formula("y ~ a + b + (1 | g)", "~ . - b")
    'y ~ a + (1 | g)'
    >>> update_formula("y ~ a + (1 | g)", "log(.) ~ . + x")
    'log(y) ~ a + (1 | g) + x'
    """
    old_lhs, old_rhs = _sides(old)
    new_lhs, new_rhs = _sides(new)
    lhs = old_lhs if not new_lhs else re.sub(r"(?<![\w.])\.(?![\w.])", old_lhs, new_lhs)
    terms: list[str] = []
    intercept: str | None = None
    for sign, piece in _split_top(new_rhs, "+-"):
        if piece == ".":
            for old_sign, old_piece in _split_top(old_rhs, "+-"):
                if old_piece in ("0", "1"):
                    intercept = old_piece if old_sign == "+" else ("0" if old_piece == "1" else "1")
                else:
                    terms.append(old_piece) if old_sign == "+" else terms.append(f"-{old_piece}")
            continue
        if piece in ("0", "1"):
            intercept = piece if sign == "+" else ("0" if piece == "1" else "1")
            continue
        if sign == "+":
            if _key(piece) not in {_key(t) for t in terms}:
                terms.append(piece)
            continue
        if _key(piece) not in {_key(t) for t in terms}:
            terms = _expand_products(terms)
        if _key(piece) not in {_key(t) for t in terms}:
            raise FormulaError(
                f"update: the term {piece!r} to remove is not in the formula {old!r}."
            )
        terms = [t for t in terms if _key(t) != _key(piece)]
    rhs_terms = [t for t in terms if not t.startswith("-")]
    if intercept is not None:  # as written in the new formula (or the old one's)
        rhs_terms = [intercept, *rhs_terms]
    rhs = " + ".join(rhs_terms) if rhs_terms else "1"
    return f"{lhs} ~ {rhs}" if lhs else f"~ {rhs}"
