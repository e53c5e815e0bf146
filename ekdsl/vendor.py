"""Which of ekdsl's own modules a plugin package carries: those the plugin process can import.

The runtime, the public names of ``ekdsl`` and every ekdsl module they import (at module level or inside a
function, or name as a ``"module:attr"`` string), found by reading the import statements of ekdsl's
sources; and the same for each ekdsl module the plugin's own files import outside ``if __name__ ==
"__main__":``. The command line, export, lint and services stay out unless imported so; the host emulator
and the deploy tools always do. eKuiper unpacks every file of the zip at install, and fewer files install
faster.
"""

from __future__ import annotations

import ast
import os
from typing import Dict, Iterable, Iterator, Set, Union

from . import _HOME

__all__ = ["ROOTS", "imported_modules", "module_sources", "runtime_modules"]

PACKAGE = "ekdsl"
NEVER = frozenset({"host", "deploy"})  # the emulator and the deploy tools: for the developer's machine only
# What a plugin process imports by name: main.py's entry, and the modules behind `from ekdsl import X`.
ROOTS = ("ekdsl", "ekdsl.runtime", *sorted({f"ekdsl.{module}" for module in _HOME.values()}))


def _module_name(rel: str) -> str:
    """``runtime/server.py`` → ``ekdsl.runtime.server``; ``runtime/__init__.py`` → ``ekdsl.runtime``."""
    parts = [PACKAGE, *rel[:-3].split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_main_block(node: ast.AST) -> bool:
    """``if __name__ == "__main__":``, which never runs in the plugin process."""
    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def _walk(tree: ast.AST) -> Iterator[ast.AST]:
    """``ast.walk`` without what is under ``if __name__ == "__main__":``."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(child for child in ast.iter_child_nodes(node) if not _is_main_block(child))


def _targets(tree: ast.AST, package: str) -> Iterator[str]:
    """Every ekdsl module ``tree`` imports or names as ``"ekdsl.x:attr"``; ``package``: the one it lives in."""
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)  # `from . import x` may name a module
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and ":" in node.value:
            yield node.value.partition(":")[0]


def imported_modules(source: Union[str, bytes], package: str = "") -> Set[str]:
    """The ekdsl modules (and their parent packages) that the Python ``source`` imports; none if it does not
    parse. ``package``: the package ``source`` lives in (for relative imports)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    out: Set[str] = set()
    for name in _targets(tree, package):
        parts = name.split(".")
        if parts[0] == PACKAGE:
            out.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def runtime_modules(sources: Dict[str, bytes], extra_roots: Iterable[str] = ()) -> Set[str]:
    """Of ekdsl's ``sources`` (path relative to the package, ``/``-separated → contents), the paths whose modules
    the plugin process can import: the closure of :data:`ROOTS` and ``extra_roots``."""
    by_module = {_module_name(rel): rel for rel in sources
                 if rel.endswith(".py") and rel.split("/")[0] not in NEVER}
    seen: Set[str] = set()
    todo = [m for m in (*ROOTS, *extra_roots) if m in by_module]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        rel = by_module[module]
        package = module if rel.endswith("__init__.py") else module.rpartition(".")[0]
        todo.extend(m for m in imported_modules(sources[rel], package) if m in by_module and m not in seen)
    return {by_module[m] for m in seen}


def module_sources(root: str) -> Dict[str, bytes]:
    """The ``.py`` files below ``root`` (ekdsl's folder): relative path → contents."""
    out: Dict[str, bytes] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, "rb") as fh:
                    out[os.path.relpath(path, root).replace(os.sep, "/")] = fh.read()
    return out
