"""The package's import graph: its modules depend on each other one way.

Every import counts, wherever it is written: at module level, inside a function (a lazy import is still a
dependency) or under ``TYPE_CHECKING`` (mypy and readers follow it). A cycle makes a module impossible to read,
test or load on its own; the few left are listed below, and none may join them.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, FrozenSet, List, Set

import ekdsl

PACKAGE = Path(ekdsl.__file__).parent

# Cycles still in the package. Break one, and remove it here; add none.
KNOWN: Set[FrozenSet[str]] = {
    frozenset({"ekdsl.state.locate", "ekdsl.state.redis_backend", "ekdsl.state.sqlite_backend", "ekdsl.state.store"}),
    frozenset({"ekdsl.context", "ekdsl.state", "ekdsl.state.api"}),
    # the package's open_socket imports an implementation, which takes Socket and its errors from the package
    frozenset({"ekdsl.transport", "ekdsl.transport.dialer", "ekdsl.transport.listener", "ekdsl.transport.native",
               "ekdsl.transport.nng", "ekdsl.transport.stream"}),
    frozenset({"ekdsl.deploy.layout", "ekdsl.package"}),
}


def _modules() -> Dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("ekdsl", *path.relative_to(PACKAGE).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph() -> Dict[str, Set[str]]:
    """Each module of the package → the modules of the package it imports."""
    modules = _modules()
    graph: Dict[str, Set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    head = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(head + ([node.module] if node.module else []))
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    if target in modules:
                        deps.add(target)
                    elif base in modules:
                        deps.add(base)
        graph[name] = deps - {name}
    return graph


def _reachable(graph: Dict[str, Set[str]], start: str) -> Set[str]:
    seen: Set[str] = set()
    todo = [start]
    while todo:
        for dep in graph[todo.pop()] - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def cycles(graph: Dict[str, Set[str]]) -> List[FrozenSet[str]]:
    """The groups of modules that each reach every other one of their group through imports."""
    reach = {name: _reachable(graph, name) for name in graph}
    groups = {frozenset({name} | {dep for dep in reach[name] if name in reach[dep]}) for name in graph}
    return [group for group in groups if len(group) > 1]


def test_the_graph_reads_every_kind_of_import() -> None:
    graph = import_graph()
    assert "ekdsl.deploy.checks" in graph["ekdsl.checks"]  # inside a function
    assert "ekdsl.findings" in graph["ekdsl.lint"]  # under TYPE_CHECKING
    assert "ekdsl.transport" in graph["ekdsl.transport.native"]  # from . import ...
    assert "ekdsl.kinds" in graph["ekdsl.introspect"]  # from .kinds import ...


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set()}
    assert sorted(map(sorted, cycles(graph))) == [["a", "b", "c"], ["d", "e"]]


def test_no_new_import_cycle() -> None:
    new = [sorted(c) for c in cycles(import_graph()) if c not in KNOWN]
    assert not new, f"modules that import each other (make the dependency go one way): {new}"


def test_known_cycles_are_still_there() -> None:
    found = set(cycles(import_graph()))
    gone = [sorted(c) for c in KNOWN if c not in found]
    assert not gone, f"these no longer form a cycle: remove them from KNOWN: {gone}"


def test_checks_depend_one_way() -> None:
    graph = import_graph()
    assert "ekdsl.checks" not in graph["ekdsl.deploy.checks"]
    assert "ekdsl.checks" not in graph["ekdsl.lint"]
