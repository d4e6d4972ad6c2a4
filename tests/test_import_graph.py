"""The SDK's modules import one another without cycles.

Imports anywhere in a module count, inside functions too: a lazy import only moves a
cycle from import time to call time. ``ruff analyze graph sdk/pedrollm`` gives the
same edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pedrollm

PACKAGE = Path(pedrollm.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = ["pedrollm", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the pedrollm modules it imports."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
                if not node.level:
                    origin = node.module or ""
                # "from . import x" imports the submodule x when there is one.
                submodules = [f"{origin}.{a.name}" for a in node.names
                              if f"{origin}.{a.name}" in modules]
                targets = submodules or [origin]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_lazy_imports() -> None:
    graph = import_graph()
    assert "pedrollm.config" in graph["pedrollm.factory"]  # imported inside new_backend
    assert "pedrollm.backends" in graph["pedrollm.config_checks"]


def test_no_import_cycle_in_the_sdk() -> None:
    assert [sorted(c) for c in cycles(import_graph())] == []
