"""The library's imports point one way: no cycles between modules or packages, and the lower
layers (errors, domain, platforms, adapters, network, settings) import no service package.

Read statically (``ast``), so imports under ``TYPE_CHECKING`` and inside functions count too:
an arrow is an arrow even when it is lazy.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[2] / "layers" / "printflow"
# Packages (or top-level modules) that hold no service: they may import only each other.
LOWER = {
    "errors",
    "observability",
    "cold_start",
    "domain",
    "adapters",
    "net",
    "settings",
    "validators",
    "platforms",
    "signing",
}


def module_graph() -> dict[str, set[str]]:
    modules = {}
    for path in LIBRARY.rglob("*.py"):
        name = ".".join(path.relative_to(LIBRARY).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` (as a path), or [] when it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == 1:
                return [*path[path.index(successor) :], successor]
            if successor not in state and (found := visit(successor)):
                return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def package_graph() -> dict[str, set[str]]:
    packages: dict[str, set[str]] = defaultdict(set)
    for source, targets in module_graph().items():
        for target in targets:
            if package(source) != package(target) and package(source) != "printflow":
                packages[package(source)].add(package(target))
    return packages


def test_no_module_imports_itself_through_others() -> None:
    assert cycle(module_graph()) == []


def test_the_packages_form_layers() -> None:
    assert cycle(package_graph()) == []


def test_lower_layers_import_no_service_package() -> None:
    upward = {
        (source, target)
        for source, targets in package_graph().items()
        if source in LOWER
        for target in targets
        if target not in LOWER
    }
    assert upward == set()


def test_the_check_sees_a_cycle() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) == []
