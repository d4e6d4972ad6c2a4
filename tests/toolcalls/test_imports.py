"""The toolcalls package imports one way: formats on the engine, the registry on the formats."""

from __future__ import annotations

import ast
from pathlib import Path

import pedrollm.toolcalls

PACKAGE = Path(pedrollm.toolcalls.__file__).parent
PREFIX = "pedrollm.toolcalls."


def imports_inside_package() -> dict[str, set[str]]:
    """Each module's imports of sibling modules, at any depth (lazy imports included)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        name = path.stem
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    # ``from .x import y`` and ``from . import x``
                    found.add(module.split(".")[0]) if module else found.update(
                        a.name for a in node.names
                    )
                elif module == "pedrollm.toolcalls":
                    found.update(a.name for a in node.names)
                elif module.startswith(PREFIX):
                    found.add(module[len(PREFIX) :].split(".")[0])
            elif isinstance(node, ast.Import):
                found.update(
                    a.name[len(PREFIX) :].split(".")[0] for a in node.names
                    if a.name.startswith(PREFIX)
                )
        graph[name] = {m for m in found if (PACKAGE / f"{m}.py").exists() and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_no_module_of_the_package_imports_back_into_itself() -> None:
    graph = imports_inside_package()
    assert "registry" in graph["streaming"]
    # __init__ re-exports everything, so only the modules below it are checked.
    del graph["__init__"]
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def test_the_cycle_check_finds_a_cycle_when_there_is_one() -> None:
    assert find_cycle({"engine": {"registry"}, "registry": {"hermes"}, "hermes": {"engine"}}) == [
        "engine", "registry", "hermes", "engine",
    ]
