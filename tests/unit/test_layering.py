"""The WebUI package's layering: no Dify imports, no import circles, no imports hidden inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "sdwebui"


def _imports() -> dict[str, list[tuple[str, bool]]]:
    """Each sdwebui module's sdwebui imports, with whether the import sits inside a function."""
    graph: dict[str, list[tuple[str, bool]]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        found: list[tuple[str, bool]] = []
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        nested = {id(n) for f in functions for n in ast.walk(f) if n is not f}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "sdwebui" and len(parts) > 1 and (PACKAGE / f"{parts[1]}.py").exists():
                    found.append((parts[1], id(node) in nested))
                elif parts[0] in ("dify_plugin", "tools", "provider"):
                    found.append((f"!{parts[0]}", id(node) in nested))
        graph[path.stem] = found
    return graph


def test_the_webui_package_imports_nothing_from_dify():
    graph = _imports()
    assert [(m, t) for m, targets in graph.items() for t, _ in targets if t.startswith("!")] == []


def test_no_import_sits_inside_a_function():
    graph = _imports()
    assert [(m, t) for m, targets in graph.items() for t, inside in targets if inside] == []


def test_the_package_has_no_import_circles():
    graph = {m: {t for t, _ in targets if t != m and not t.startswith("!")} for m, targets in _imports().items()}
    circles = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                circles.append(path[path.index(target):] + [target])
            elif len(path) < len(graph):
                visit(target, path + [target])

    for module in graph:
        visit(module, [module])
    assert circles == []
