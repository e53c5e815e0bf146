"""Which of ekdsl's own modules a plugin package carries: those the plugin process can import.

The runtime, the public names of ``ekdsl`` and every ekdsl module they import (at module level or inside a
function, or name as a ``"module:attr"`` string), found by reading the import statements of ekdsl's
sources; and the same for each ekdsl module the plugin's own files import outside ``if __name__ ==
"__main__":``. The command line, export, lint and services stay out unless imported so; the host emulator
and the deploy tools always do. eKuiper unpacks every file of the zip at install, and fewer files install
faster.

Reading every module's syntax tree takes half a second, so ``imports.json`` beside this file keeps what each
module imports with the CRC-32 of the source it was read from, and the CRC-32 of this file (the rules it was read
by): a module whose source still has its CRC is not read again, any other is, and a table read by other rules is
not used at all (an out-of-date table costs time, never a wrong package). :func:`write_table` writes it; a test
fails while it is out of date, that is after any edit of a module of ekdsl.
"""

from __future__ import annotations

import ast
import json
import os
import zlib
from typing import Dict, Iterable, Iterator, List, Optional, Set, Union

from . import _HOME

__all__ = ["ROOTS", "TABLE", "import_table", "imported_modules", "module_sources", "runtime_modules",
           "write_table"]

PACKAGE = "ekdsl"
NEVER = frozenset({"host", "deploy"})  # the emulator and the deploy tools: for the developer's machine only
# What a plugin process imports by name: main.py's entry, and the modules behind `from ekdsl import X`.
ROOTS = ("ekdsl", "ekdsl.runtime", *sorted({f"ekdsl.{module}" for module in _HOME.values()}))
TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imports.json")


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


def _carriable(sources: Dict[str, bytes]) -> Dict[str, str]:
    """Module name → path, in path order, of the modules of ``sources`` that a plugin may carry."""
    return {_module_name(rel): rel for rel in sorted(sources) if rel.endswith(".py") and rel.split("/")[0] not in NEVER}


def _read_imports(module: str, rel: str, source: bytes) -> Set[str]:
    """The ekdsl modules that ``module`` (at path ``rel``) imports, read from its syntax tree."""
    return imported_modules(source, module if rel.endswith("__init__.py") else module.rpartition(".")[0])


def _rules() -> int:
    """The CRC-32 of this file: the rules a table was read by (other rules, other imports)."""
    try:
        with open(os.path.abspath(__file__), "rb") as fh:
            return zlib.crc32(fh.read())
    except OSError:
        return -1  # no table is trusted


def _module_imports(sources: Dict[str, bytes]) -> Dict[str, Dict[str, Union[int, List[str]]]]:
    return {rel: {"crc": zlib.crc32(sources[rel]), "imports": sorted(_read_imports(module, rel, sources[rel]))}
            for module, rel in _carriable(sources).items()}


def import_table(sources: Dict[str, bytes]) -> Dict[str, object]:
    """``rules``: the CRC-32 of the rules below; ``modules``: for each module of ``sources`` (as
    :func:`runtime_modules` takes them) that a plugin may carry, the CRC-32 of its source and the ekdsl modules it
    imports (read from its syntax tree)."""
    return {"rules": _rules(), "modules": _module_imports(sources)}


def _load_table(path: str) -> Dict[str, object]:
    """The ``modules`` of the table at ``path`` if it was read by these rules; else nothing."""
    try:
        with open(path, encoding="utf-8") as fh:
            table = json.load(fh)
    except (OSError, ValueError):
        return {}
    if not isinstance(table, dict) or table.get("rules") != _rules() or not isinstance(table.get("modules"), dict):
        return {}
    return dict(table["modules"])


def _known_imports(entry: object, source: bytes) -> Optional[List[str]]:
    """A table entry's imports when it was read from ``source`` (its CRC) and is well formed."""
    if not isinstance(entry, dict) or entry.get("crc") != zlib.crc32(source):
        return None
    imports = entry.get("imports")
    if not isinstance(imports, list) or not all(isinstance(m, str) for m in imports):
        return None
    return imports


def runtime_modules(sources: Dict[str, bytes], extra_roots: Iterable[str] = (), table: str = "") -> Set[str]:
    """Of ekdsl's ``sources`` (path relative to the package, ``/``-separated → contents), the paths whose modules
    the plugin process can import: the closure of :data:`ROOTS` and ``extra_roots``. ``table``: an
    :func:`import_table` written as JSON, whose entries stand for the modules whose source has their CRC."""
    known = _load_table(table) if table else {}
    by_module = _carriable(sources)
    seen: Set[str] = set()
    todo = [m for m in (*ROOTS, *extra_roots) if m in by_module]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        rel = by_module[module]
        imports: Optional[Iterable[str]] = _known_imports(known.get(rel), sources[rel])
        if imports is None:
            imports = _read_imports(module, rel, sources[rel])
        todo.extend(m for m in imports if m in by_module and m not in seen)
    return {by_module[m] for m in seen}


def write_table(root: str = "", path: str = "") -> str:
    """Write the :func:`import_table` of ekdsl's sources below ``root`` (this package) to ``path``
    (:data:`TABLE`); return the path."""
    root = root or os.path.dirname(TABLE)
    path = path or TABLE
    modules = _module_imports(module_sources(root))
    rows = [f"{json.dumps(rel)}: {json.dumps(entry, sort_keys=True)}" for rel, entry in modules.items()]
    text = f'{{"rules": {_rules()},\n"modules": {{\n' + ",\n".join(rows) + "\n}}\n"  # a module a line
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


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
