"""The only module that talks to formulaic.

formulaic names treatment-coded columns ``sex[T.female]``; R (and our users) write
``sexfemale``.  The renaming lives here, with everything else that depends on
formulaic's behaviour, so a formulaic upgrade touches one file.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError

_LEVEL_RE = re.compile(r"\[(?:T\.)?([^\[\]]*)\]")


def _r_factor(data: Any, *args: Any, **kwargs: Any) -> Any:
    """R's ``factor(x)``: formulaic's ``C(x)``, under R's name so columns read ``factor(x)2``."""
    from formulaic.transforms import C

    return C(data, *args, **kwargs)


#: Functions R users write that formulaic does not know, added to its evaluation context.
#: formulaic looks names up in the data first, so a column named ``log`` still wins.
R_CONTEXT: dict[str, Any] = {
    "factor": _r_factor,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "log1p": np.log1p,
    "expm1": np.expm1,
}


def _known_names() -> set[str]:
    from formulaic.transforms import TRANSFORMS

    return set(TRANSFORMS) | set(R_CONTEXT) | {"numpy", "math", "pi", "True", "False", "None"}


def r_name(name: str) -> str:
    """formulaic column name -> R's: ``sex[T.female]`` -> ``sexfemale``, ``x ** 2`` -> ``x^2``.

    Only brackets outside any call are formulaic's level labels: the list in
    ``C(sex, levels=['male', 'female'])[T.female]`` stays.
    """
    out, depth, last = [], 0, 0
    for i, ch in enumerate(name):
        if ch in "([{" and not (ch == "[" and depth == 0):
            depth += 1
        elif ch in ")]}" and not (ch == "]" and depth == 0):
            depth -= 1
        elif ch == "[" and depth == 0:
            match = _LEVEL_RE.match(name, i)
            if match:
                out.append(name[last:i] + match.group(1))
                last = match.end()
    out.append(name[last:])
    return "".join(out).replace(" ** ", "^").replace("**", "^")


@lru_cache(maxsize=256)
def _parsed(rhs: str):
    from formulaic import Formula

    return Formula(rhs)


def required_variables(expr: str) -> list[str]:
    """Data columns an expression reads (functions and modules such as ``np`` excluded)."""
    try:
        variables = _parsed(expr).required_variables
    except Exception as exc:  # any formulaic failure is a syntax problem here
        raise FormulaError(f"Cannot parse '{expr}': {exc}") from None
    return sorted(str(v) for v in variables)


_TOKEN = re.compile(r"`[^`]*`|'[^']*'|\"[^\"]*\"|[^\W\d][\w.]*|\.[^\W\d][\w.]*")


def quote_names(expr: str, columns: Any) -> str:
    """Backtick R-style names that Python would misread: ``occ.num`` (an attribute access
    in Python) becomes `` `occ.num` `` when the data have that column."""
    names = {str(c) for c in columns}

    def quote(match: re.Match) -> str:
        token = match.group(0)
        if "." in token and token[0] not in "`'\"" and token in names:
            return f"`{token}`"
        return token

    return _TOKEN.sub(quote, expr)


def _python_names(code: str, columns: set[str], known: set[str]) -> tuple[list[str], list[str]]:
    """Columns read by one formulaic factor evaluated as Python, and names found nowhere."""
    quoted: dict[str, str] = {}

    def placeholder(match: re.Match) -> str:
        key = f"_mm_quoted_{len(quoted)}"
        quoted[key] = match.group(0)[1:-1]
        return key

    code = re.sub(r"`[^`]*`", placeholder, code)
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"Cannot parse '{code.strip()}': {exc.msg}") from None
    found, unknown = [], []
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            root = node.value.id
            if root in columns or root in quoted or root in known or id(node) in called:
                continue
            unknown.append(f"{root}.{node.attr}")
            node.value.id = "_mm_seen"  # reported already as the dotted name
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            name = quoted.get(node.id, node.id)
            if node.id == "_mm_seen":
                continue
            if name in columns:
                found.append(name)
            elif id(node) in called or name in known or hasattr(builtins, name):
                continue
            else:
                unknown.append(name)
    return found, unknown


def formula_variables(expr: str, columns: Any) -> tuple[list[str], list[str]]:
    """The data columns a right-hand side reads, and the names it uses that are neither
    columns nor functions (``(found, unknown)``), derived from the parsed formula.

    formulaic's ``required_variables`` is empty for stateful transforms such as
    ``poly(x, 2)``, and reads ``occ.num`` as ``occ``: walk its factors instead.
    """
    names = {str(c) for c in columns}
    known = _known_names()
    try:
        parsed = _parsed(_r_powers(quote_names(expr, names)))
    except Exception as exc:
        raise FormulaError(f"Cannot parse '{expr}': {str(exc).splitlines()[0]}") from None
    terms = list(parsed.rhs) if hasattr(parsed, "rhs") else list(parsed)
    found: list[str] = []
    unknown: list[str] = []
    for term in terms:
        for factor in term.factors:
            method = getattr(factor.eval_method, "value", factor.eval_method)
            code = str(factor.expr)
            if method == "literal":
                continue
            if method == "lookup":
                name = code[1:-1] if code.startswith("`") and code.endswith("`") else code
                (found if name in names else unknown).append(name)
                continue
            more, missing = _python_names(code, names, known)
            found.extend(more)
            unknown.extend(missing)
    return list(dict.fromkeys(found)), list(dict.fromkeys(unknown))


def _r_powers(rhs: str) -> str:
    """R's ``^`` inside a function call (``I(age^2)``) is a power; in Python it is xor."""
    out, depth = [], 0
    for ch in rhs:
        depth += ch == "("
        depth -= ch == ")"
        out.append("**" if ch == "^" and depth > 0 else ch)
    return "".join(out)


def _poly_coded(rhs: str, ordered: set[str]) -> tuple[str, dict[str, str]]:
    """Give each ordered factor R's default ``contr.poly`` (outside calls only) and the
    renames that make its columns read ``x.L``, ``x.Q``, ``x.C``, ``x^4`` as R's."""
    if not ordered:
        return rhs, {}
    renames: dict[str, str] = {}
    out, depth, last = [], 0, 0
    for match in _TOKEN.finditer(rhs):
        before = rhs[last : match.start()]
        depth += before.count("(") - before.count(")")
        token = match.group(0)
        name = token[1:-1] if token.startswith("`") else token
        following = rhs[match.end() :].lstrip()[:1]
        out.append(before)
        if depth == 0 and name in ordered and following != "(":
            coded = f"C({token}, contr.poly)"
            renames[coded] = name
            out.append(coded)
        else:
            out.append(token)
        last = match.end()
    out.append(rhs[last:])
    return "".join(out), renames


@dataclass(frozen=True)
class FormulaicSpec:
    """formulaic's ModelSpec with R's column names and R's functions in its context: what
    encodes new data exactly as the fit (its stateful transforms keep the fit's means,
    scales and knots)."""

    spec: Any
    renames: dict[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> tuple[str, ...]:
        out = []
        for column in self.spec.column_names:
            name = str(column)
            for coded, original in self.renames.items():
                name = name.replace(coded, original)
            out.append(r_name(name))
        return tuple(out)

    def get_model_matrix(self, frame: pd.DataFrame, na_action: str = "ignore") -> Any:
        return self.spec.get_model_matrix(frame, na_action=na_action, context=R_CONTEXT)

    def __getattr__(self, name: str) -> Any:  # term_slices, encoder_state, ...
        if name == "spec":  # not set yet (copy, unpickling)
            raise AttributeError(name)
        return getattr(self.spec, name)


def _materialize(rhs: str, frame: pd.DataFrame):
    from formulaic import model_matrix

    rhs = _r_powers(quote_names(rhs, frame.columns))
    try:
        return model_matrix(rhs, frame, na_action="raise", context=R_CONTEXT)
    except FormulaError:
        raise
    except Exception as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"Could not evaluate '{rhs}' on the data: {detail}") from None


def evaluate_response(response: str, frame: pd.DataFrame) -> np.ndarray:
    """The response as floats (a column, or an expression such as ``log(y)``)."""
    if response in frame.columns:
        column = frame[response]
    else:
        matrix = _materialize(f"{response} ~ 1", frame).lhs
        if matrix.shape[1] != 1:
            raise DataError(
                f"The response '{response}' gives {matrix.shape[1]} columns; expecting one."
            )
        column = matrix.iloc[:, 0]
    if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
        column.dtype
    ):
        raise DataError(
            f"The response '{response}' is not numeric (dtype {column.dtype}). A linear mixed "
            "model needs a numeric response; use glmer() for a binary or categorical one."
        )
    return column.to_numpy(dtype=float)


def evaluate_numeric(expr: str, frame: pd.DataFrame) -> np.ndarray:
    """One numeric value per row of an expression such as ``log(exposure)`` (an offset);
    NaN where an input is missing."""
    if expr.strip() in frame.columns:
        column = frame[expr.strip()]
    else:
        from formulaic import model_matrix

        code = _r_powers(quote_names(f"0 + I({expr})", frame.columns))
        try:
            matrix = model_matrix(code, frame, na_action="ignore", context=R_CONTEXT)
        except Exception as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"Could not evaluate '{expr}' on the data: {detail}") from None
        column = matrix.iloc[:, 0]
    if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
        column.dtype
    ):
        raise DataError(f"'{expr}' is not numeric (dtype {column.dtype}).")
    return column.to_numpy(dtype=float)


@dataclass(frozen=True)
class SimpleTerm:
    """One main effect of a :class:`SimpleSpec`: a numeric column (``levels`` None) or a
    factor, treatment-coded against its first level unless ``full`` (R's coding of the
    first factor of a model without intercept)."""

    name: str
    levels: tuple[Any, ...] | None = None
    full: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        if self.levels is None:
            return (self.name,)
        kept = self.levels if self.full else self.levels[1:]
        return tuple(f"{self.name}{level}" for level in kept)

    def encode(self, frame: pd.DataFrame) -> list[np.ndarray]:
        if self.name not in frame.columns:
            raise DataError(f"newdata has no column '{self.name}'.")
        column = frame[self.name]
        if self.levels is None:
            return [pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)]
        codes = pd.Index(list(self.levels)).get_indexer(column.astype(object))
        unseen = (codes < 0) & column.notna().to_numpy()
        if unseen.any():
            raise DataError(
                f"newdata has levels of '{self.name}' the fit did not see: "
                f"{sorted(map(str, pd.unique(column[unseen])))}."
            )
        missing = codes < 0
        out = []
        for code in range(0 if self.full else 1, len(self.levels)):
            indicator = (codes == code).astype(float)
            indicator[missing] = np.nan
            out.append(indicator)
        return out


@dataclass(frozen=True)
class SimpleSpec:
    """Encoder for a right-hand side of an intercept and main effects only (numeric
    columns and factors): formulaic costs milliseconds per call, and ``(1 | g)``,
    ``(x | g)`` or ``y ~ x + sex`` need none of it.  It offers the members of formulaic's
    ModelSpec that this package uses."""

    intercept: bool
    terms: tuple[SimpleTerm, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        names = [n for term in self.terms for n in term.column_names]
        return (("Intercept",) if self.intercept else ()) + tuple(names)

    def get_model_matrix(self, frame: pd.DataFrame, na_action: str = "ignore") -> np.ndarray:
        parts = [np.ones(len(frame))] if self.intercept else []
        for term in self.terms:
            parts.extend(term.encode(frame))
        return np.column_stack(parts) if parts else np.zeros((len(frame), 0))


_SIMPLE_TEXT = re.compile(r"[A-Za-z0-9_.+\-]*")


def simple_tokens(rhs: str, columns: Any) -> tuple[bool, list[str]] | None:
    """``(intercept, column names)`` when ``rhs`` is only ``1``/``0``/``-1`` and distinct
    column names joined by ``+``; None for anything formulaic must read."""
    text = rhs.replace(" ", "")
    if not _SIMPLE_TEXT.fullmatch(text):
        return None
    intercept = True
    tokens: list[str] = []
    for sign, token in re.findall(r"([+-]?)([^+-]+)", text):
        if token == "1":
            intercept = sign != "-"
        elif token == "0" and sign != "-":
            intercept = False
        elif sign == "-" or token not in columns or token in tokens:
            return None
        else:
            tokens.append(token)
    return intercept, tokens


def _simple_spec(rhs: str, frame: pd.DataFrame) -> SimpleSpec | None:
    """A :class:`SimpleSpec` when ``rhs`` is only ``1``/``0``/``-1``, numeric columns and
    factors (pandas Categoricals whose every level occurs, labels without brackets)."""
    parsed = simple_tokens(rhs, frame.columns)
    if parsed is None:
        return None
    intercept, tokens = parsed
    terms: list[SimpleTerm] = []
    full_coding_left = not intercept  # R codes the first factor fully without intercept
    for token in tokens:
        column = frame[token]
        if isinstance(column.dtype, pd.CategoricalDtype):
            if column.cat.ordered:  # R codes ordered factors with contr.poly
                return None
            levels = tuple(column.cat.categories)
            counts = np.bincount(column.cat.codes[column.cat.codes >= 0], minlength=len(levels))
            if (
                not levels
                or np.any(counts == 0)
                or any("[" in str(v) or "]" in str(v) for v in levels)
            ):
                return None
            terms.append(SimpleTerm(token, levels, full_coding_left))
            full_coding_left = False
        elif pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
            column.dtype
        ):
            terms.append(SimpleTerm(token))
        else:
            return None
    return SimpleSpec(intercept, tuple(terms))


def fixed_matrix(rhs: str, frame: pd.DataFrame) -> tuple[np.ndarray, list[str], Any]:
    """Fixed-effects matrix with R-style names, and the spec that encodes new data alike."""
    simple = _simple_spec(rhs, frame)
    if simple is not None:
        return simple.get_model_matrix(frame), list(simple.column_names), simple
    ordered = {
        str(name)
        for name in frame.columns
        if isinstance(frame[name].dtype, pd.CategoricalDtype) and frame[name].cat.ordered
    }
    coded, renames = _poly_coded(rhs, ordered)
    matrix = _materialize(coded, frame)
    spec = FormulaicSpec(matrix.model_spec, renames)
    return np.asarray(matrix, dtype=float), list(spec.column_names), spec


def random_matrix(expr: str, frame: pd.DataFrame) -> tuple[np.ndarray, list[str], Any]:
    """A bar term's left-hand side matrix; lme4 names its intercept ``(Intercept)``."""
    values, names, spec = fixed_matrix(expr, frame)
    names = ["(Intercept)" if n == "Intercept" else n for n in names]
    return values, names, spec


def encode(model_spec: Any, frame: pd.DataFrame) -> np.ndarray:
    """Encode new data exactly as the fit did (same levels, same columns)."""
    try:
        return np.asarray(model_spec.get_model_matrix(frame, na_action="ignore"), dtype=float)
    except Exception as exc:
        raise DataError(f"Could not encode the new data as the fit did: {exc}") from None


@dataclass(frozen=True)
class FixedTerm:
    """One term of a fixed-effects formula, as R's ``terms()`` describes it.

    Attributes
    ----------
    label : str
        ``"Variety:N"``; ``"1"`` for the intercept.
    variables : tuple of str
        The term's variables (formulaic's factor expressions, e.g. ``"np.log(x)"``).
    numeric : tuple of bool
        Whether each variable is numeric (R's ``dataClasses == "numeric"``), else a factor.
    columns : tuple of str
        The term's columns in R's names (before any rank-deficient column is dropped).
    """

    label: str
    variables: tuple[str, ...]
    numeric: tuple[bool, ...]
    columns: tuple[str, ...]


def fixed_terms(model_spec: Any) -> list[FixedTerm]:
    """The terms of a fixed-effects spec, in column order (the intercept, if any, first)."""
    if isinstance(model_spec, SimpleSpec):
        out = [FixedTerm("1", (), (), ("Intercept",))] if model_spec.intercept else []
        return out + [
            FixedTerm(t.name, (t.name,), (t.levels is None,), t.column_names)
            for t in model_spec.terms
        ]
    names = [r_name(str(c)) for c in model_spec.column_names]
    out = []
    for term, columns in model_spec.term_slices.items():
        variables = tuple(str(f.expr) for f in term.factors if str(f.expr) != "1")
        kinds = [model_spec.encoder_state.get(v, (None,))[0] for v in variables]
        numeric = tuple(getattr(k, "value", k) != "categorical" for k in kinds)
        out.append(FixedTerm(str(term), variables, numeric, tuple(names[columns])))
    return out


def full_coding(variable: str, frame: pd.DataFrame) -> np.ndarray:
    """A variable's columns without contrasts: a factor as one indicator per level (R's
    ``model.matrix(~ 0 + f)``), a numeric variable as its value(s)."""
    return np.asarray(_materialize(f"0 + {variable}", frame), dtype=float)
