"""The house rules of the source tree: modules and functions small enough to read.

A module holds one responsibility in at most 800 lines; a function does one nameable
thing in at most 100 lines, its docstring included (a long numpydoc docstring stays; the
code moves into named helpers).  Lines are counted as the file has them, docstrings and
comments too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mixedmodels"

MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 100

#: functions allowed to be longer, each with the reason it cannot be split (none today)
ALLOWED_LONG_FUNCTIONS: dict[str, str] = {}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def test_the_walk_finds_the_package():
    names = {_name(path) for path in _modules()}
    assert {"__init__.py", "lmm/deviance.py", "frontend/design.py"} <= names


def test_no_module_is_over_800_lines():
    long = {
        _name(path): lines
        for path in _modules()
        if (lines := path.read_text().count("\n")) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_over_100_lines():
    long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                where = f"{_name(path)}:{node.name}"
                if lines > MAX_FUNCTION_LINES and where not in ALLOWED_LONG_FUNCTIONS:
                    long[where] = lines
    assert long == {}
