"""Metadata lint of ``ekdsl check``: what eKuiper accepts in a package but silently mishandles.

Follows ``internal/conf/load.go`` and ``internal/meta/*``. Every file is read through :class:`Contents`,
within the package's limits; a file of the wrong shape at any depth becomes a finding, never an error.
"""

from __future__ import annotations

import json
import posixpath
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple

from .errors import PackagingError
from .kinds import Kind
from .reserved import builtin_symbol, reserved_property

if TYPE_CHECKING:
    from .archive import Entry, Package
    from .findings import Report

__all__ = ["Contents", "array_defaults", "json_kind", "lint_metadata", "property_names"]

SYMBOL_DIRS = ("sources/", "sinks/", "functions/")


def json_kind(value: Any) -> str:
    """The JSON kind of a decoded value, in Go's words (``number``, ``array``, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class Contents:
    """The files of an open package by their clean path, read whole on demand; a file that cannot be
    read or decoded adds a finding to ``report`` and reads as ``None``."""

    def __init__(self, pkg: Package, report: Report) -> None:
        self.pkg = pkg
        self.report = report
        self.files: Dict[str, Entry] = {posixpath.normpath(e.name): e for e in pkg.entries
                                        if not e.is_dir and not e.link}

    def __contains__(self, path: str) -> bool:
        return path in self.files

    def get(self, path: str) -> Optional[Entry]:
        return self.files.get(path)

    def data(self, path: str, lint: bool = True) -> Optional[bytes]:
        try:
            return self.pkg.read(self.files[path])
        except PackagingError as exc:
            self.report.error(str(exc), lint=lint)
            return None

    def head(self, path: str, size: int) -> bytes:
        try:
            return self.pkg.head(self.files[path], size)
        except PackagingError:
            return b""  # reading it through reports why (Package.verify)

    def json(self, path: str) -> Any:
        data = self.data(path)
        if data is None:
            return None
        try:
            return json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            self.report.error(f"{path}: invalid JSON ({exc})", lint=True)
        except RecursionError:
            self.report.error(f"{path}: invalid JSON (nested deeper than ekdsl reads)", lint=True)
        return None

    def yaml(self, path: str) -> Optional[Dict[str, Any]]:
        import yaml

        data = self.data(path) if path in self.files else None
        if data is None:
            return None
        try:
            loaded = yaml.safe_load(data.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            self.report.error(f"{path}: invalid YAML ({exc})", lint=True)
            return None
        except RecursionError:
            self.report.error(f"{path}: invalid YAML (nested deeper than ekdsl reads)", lint=True)
            return None
        if loaded is None:
            return {}
        if not isinstance(loaded, dict) or not all(isinstance(v, dict) or v is None for v in loaded.values()):
            self.report.error(f"{path}: expected confKey sections such as 'default:' mapping to properties",
                              lint=True)
            return None
        return loaded


def lint_metadata(files: Contents, meta: Dict[str, Any], report: Report) -> None:
    """The symbol files' lint findings; ``meta`` is the checked plugin json (names are strings)."""
    _lint_builtins(meta, report)
    for src in meta["sources"]:
        _lint_source(files, src, report)
    for snk in meta["sinks"]:
        _lint_sink(files, f"sinks/{snk}.json", report)
    for fn in meta["functions"]:
        path = f"functions/{fn}.json"
        data = files.json(path) if path in files else None
        if isinstance(data, dict):
            listed = data.get("functions", [])
            if not isinstance(listed, list):
                report.error(f"{path}: 'functions' is {json_kind(listed)}, not a list (eKuiper fails to read the "
                             "file)", lint=True)
                continue
            names = [f.get("name") for f in listed if isinstance(f, dict)]
            if fn not in names:
                report.error(f"{path} describes {names or 'no function'}, not '{fn}' from the plugin json",
                             lint=True)
    declared = {f"{kind.folder}/{s}" for kind in Kind for s in meta[kind.folder]}
    for path in sorted(files.files):
        if path.startswith(SYMBOL_DIRS) and posixpath.splitext(path)[0] not in declared:
            report.warn(f"{path} belongs to no symbol declared in the plugin json")


def _lint_sink(files: Contents, path: str, report: Report) -> None:
    data = files.json(path) if path in files else None
    if not isinstance(data, dict):
        return
    if "about" not in data:
        report.error(f"not found about of {path}", lint=True)
    props = data.get("properties", [])
    if not isinstance(props, list):
        report.error(f"{path}: 'properties' must be a list for a sink (eKuiper fails to read the file)", lint=True)
        return
    _lint_defaults(path, props, report)
    names = [f.get("name") for f in props if isinstance(f, dict)]
    _lint_reserved(Kind.SINK, path, names, report)
    _lint_twice(path, names, report)


def _lint_source(files: Contents, src: str, report: Report) -> None:
    jpath, ypath = f"sources/{src}.json", f"sources/{src}.yaml"
    yaml_data = files.yaml(ypath)
    if jpath not in files:
        return
    data = files.json(jpath)
    if not isinstance(data, dict):
        return
    if "about" not in data:
        report.error(f"not found about of {jpath}", lint=True)
    props = data.get("properties")
    if not isinstance(props, dict):
        why = "json map does not have properties value" if props is None else "failed to cast to list of properties"
        report.error(f"{jpath}: 'properties' must be a map like {{\"default\": [...]}}; eKuiper fails with "
                     f"'{why}' and silently ignores {ypath}", lint=True)
        return
    for key, fields in props.items():
        if isinstance(fields, list):
            _lint_defaults(f"{jpath} properties.{key}", fields, report)
    listed = property_names(props)
    _lint_twice(jpath, listed, report)
    names = set(listed)
    _lint_reserved(Kind.SOURCE, jpath, sorted(names), report)
    for section, values in (yaml_data or {}).items():
        _lint_reserved(Kind.SOURCE, f"{ypath} section '{section}'",
                       [k for k in (values or {}) if isinstance(k, str) and k not in names], report)
        for key in (values or {}):
            if isinstance(key, str) and key != key.lower() and key not in names:
                report.warn(f"{ypath}: key '{section}.{key}' is not named in {jpath} properties.default, so "
                            f"eKuiper lower-cases it to '{key.lower()}' (ekdsl plugins match keys "
                            "case-insensitively; other runtimes do not)")


def _lint_builtins(meta: Dict[str, Any], report: Report) -> None:
    """Symbols named like eKuiper's built-ins, which eKuiper looks up first."""
    for kind in Kind:
        for name in meta[kind.folder]:
            where = builtin_symbol(kind, name)
            if where is not None:
                report.error(f"{kind} '{name}' has the name of eKuiper's built-in {kind} ({where}): eKuiper "
                             f"looks built-ins up first, so the plugin's {kind} is never reached; rename it",
                             lint=True)
            elif builtin_symbol(kind, name, optional=True) is not None:
                report.warn(f"{kind} '{name}' has the name of a built-in {kind} of eKuiper's full or edgex "
                            "builds: there the plugin's one is never reached")


def _lint_reserved(kind: Kind, path: str, names: List[Any], report: Report) -> None:
    """Property names eKuiper takes over (``ekdsl.reserved``). ``connectionSelector`` spelt so is listed to be taken
    over: a plugin with shared connections names it so that eKuiper merges a named connection's props."""
    for name in names:
        hit = reserved_property(kind, name) if isinstance(name, str) and name != "connectionSelector" else None
        if hit is not None:
            report.warn(f"{path}: property '{name}' has a name eKuiper reserves ({hit.go}): {hit.effect}; "
                        "rename the property")


def _lint_twice(path: str, names: List[Any], report: Report) -> None:
    """A property listed twice, compared ignoring case as eKuiper matches keys: one value reaches both."""
    seen: Dict[str, str] = {}
    for name in names:
        if not isinstance(name, str):
            continue
        if name.lower() not in seen:
            seen[name.lower()] = name
            continue
        first = seen[name.lower()]
        same = f"property '{name}' twice" if first == name else f"properties '{first}' and '{name}'"
        report.warn(f"{path}: lists the {same}, one key to eKuiper (it compares keys ignoring case): one value "
                    "reaches both; give each property a name of its own")


def _lint_defaults(path: str, fields: List[Any], report: Report) -> None:
    for name, default in array_defaults(fields):
        report.error(f"{path}: property '{name}' has the array default {json.dumps(default)}, which eKuiper reads "
                     "as nested fields and fails on; at boot that stops the loading of the rest of its metadata "
                     "folder (internal/meta/sinkMeta.go newField): write [] and put the real default in the "
                     "source yaml", lint=True)


def array_defaults(fields: List[Any]) -> Iterator[Tuple[Any, List[Any]]]:
    """(name, default) of each property whose array ``default`` eKuiper fails on: ``newField`` reads an array
    ``default`` as nested fields, so an array of anything but objects fails to load."""
    for f in fields:
        if not isinstance(f, dict):
            continue
        default = f.get("default")
        if isinstance(default, list):
            if all(isinstance(item, dict) for item in default):
                yield from array_defaults(default)
            else:
                yield f.get("name"), default


def property_names(element: Any) -> List[str]:
    """``extractNamesFromElement``: the names eKuiper restores the yaml key case for."""
    out: List[str] = []
    default = element.get("default") if isinstance(element, dict) else None
    if isinstance(default, (list, dict)) and default:
        for item in default if isinstance(default, list) else default.values():
            if isinstance(item, dict):
                out.extend(property_names(item))
        return out
    if isinstance(element, dict) and isinstance(element.get("name"), str):
        out.append(element["name"])
    return out
