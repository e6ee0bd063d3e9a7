"""The package's import graph: no cycles, and imports point down the pipeline only.

Every import counts, wherever it is written: at module level, inside a function (a lazy
import is still a dependency, only a later one) and under ``TYPE_CHECKING`` (the layers
below name what the layers above build through :mod:`mixedmodels._protocols`).  Importing
``a.b`` also runs ``a/__init__.py``; that implicit edge is not counted (a package's
``__init__`` may import its own modules), an explicit ``from . import x`` is.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mixedmodels"

#: the pipeline, top to bottom: a module may import its own package and any package below
#: it, never one above.  ``None`` marks the private helpers every layer may use.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "__main__", "cli", "demo"),
    ("fitting",),
    ("scale",),
    ("models",),
    ("toolbox",),
    ("inference",),
    ("glmm",),
    ("residual",),
    ("lmm",),
    ("frontend",),
    ("datasets",),
    ("errors", "_protocols", "_progress", "_threads", "_warnings"),
)
RANK = {name: depth for depth, names in enumerate(LAYERS) for name in names}


def _module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


MODULES = _module_names()


def _imports(name: str, path: Path) -> set[str]:
    """The package modules ``name`` imports (dotted, relative to ``mixedmodels``)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
            elif node.module == "mixedmodels" or (node.module or "").startswith("mixedmodels."):
                base = []
                node = ast.ImportFrom(node.module[len("mixedmodels") + 1 :] or None, node.names)
            else:
                continue
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{target}.{alias.name}" if target else alias.name
                out.add(full if full in MODULES else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mixedmodels."):
                    out.add(alias.name[len("mixedmodels.") :])
    out.discard(name)
    return {m for m in out if m in MODULES}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(name: str) -> int:
    top = name.split(".")[0] if name else "__init__"
    return RANK[top]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_sees_every_kind_of_import():
    """Module-level, lazy (in a function) and TYPE_CHECKING imports are all edges."""
    assert "lmm.devfun" in GRAPH["fitting.lmer"]  # module level
    assert "scale.lmer" in GRAPH["fitting.lmer"]  # inside lmer()
    assert "_protocols" in GRAPH["inference.profile"]  # under TYPE_CHECKING
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_has_a_layer():
    assert all(_layer(name) >= 0 for name in MODULES)


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


def test_imports_point_down_the_pipeline():
    upward = sorted(
        f"{name or 'mixedmodels'} -> {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if _layer(target) < _layer(name)
    )
    assert upward == []
