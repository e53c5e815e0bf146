"""``ekdsl check``: the checks eKuiper's installer makes, with its own error texts, plus metadata lint.

Installer checks follow ``internal/plugin/portable/manager.go: install``,
``model.go: PluginInfo.Validate`` and ``internal/pkg/filex/zip.go: UnzipTo``;
the lint (:mod:`ekdsl.lint`) catches what eKuiper accepts but silently mishandles.
The package is read through :mod:`ekdsl.archive`, in bounded memory.
"""

from __future__ import annotations

import json
import os
import posixpath
from typing import Any, Dict, List, Optional, Set, Tuple

from .archive import DEFAULT_LIMITS, Entry, Limits, Package, open_package
from .errors import PackagingError
from .findings import Finding, Report
from .kinds import Kind
from .lint import SYMBOL_DIRS, Contents, json_kind, lint_metadata

__all__ = ["Entry", "Finding", "Report", "check_opened", "check_package", "package_name", "plugin_meta"]

_LANGS = ("go", "python")
_STRINGS = ("name", "version", "language", "executable", "virtualEnvType", "env")  # PluginMeta's fields
_LINK_TARGET = 4096


def package_name(path: str) -> str:
    """The install name eKuiper would be given for ``path``: the zip's or folder's base name."""
    base = os.path.basename(os.path.normpath(path))
    return base[:-4] if base.endswith(".zip") else base


def check_package(path: str, name: Optional[str] = None, limits: Limits = DEFAULT_LIMITS) -> Report:
    """Run every check on the package at ``path`` installed under ``name``, reading it within ``limits``."""
    with open_package(path, limits) as pkg:
        return check_opened(pkg, name or package_name(path))


def check_opened(pkg: Package, name: str) -> Report:
    """Run every check on an open package installed under ``name``."""
    report = Report(name)
    files = Contents(pkg, report)
    meta = _plugin_json(files, name, report)
    if meta is None:
        return report
    for problem in pkg.verify():
        report.error(str(problem))
    installed = _simulate_unzip(pkg, report)
    required = [f"{name}.json", meta["executable"]] + [f"sources/{s}.yaml" for s in meta["sources"]]
    for rf in required:
        if rf not in installed:
            report.error(f"missing {rf}")
    if report.ok:
        _check_executable(files, meta, name, report)
        _lint_names(meta, name, report)
        lint_metadata(files, meta, report)
        _check_install(files, meta, report)
    report.info = meta
    return report


def _check_install(files: Contents, meta: Dict[str, Any], report: Report) -> None:
    """``install.sh``, ``requirements.txt`` and ``wheels/``, by :mod:`ekdsl.deploy.checks` (which imports nothing
    of this module), loaded only for a package the installer's checks accept."""
    from .deploy.checks import check_install

    check_install(files, meta["executable"], report)


def _plugin_json(files: Contents, name: str, report: Report) -> Optional[Dict[str, Any]]:
    jname = f"{name}.json"
    found = next((e for e in files.pkg.entries if e.name == jname), None)
    if found is None:
        others = sorted(e.name for e in files.pkg.entries if "/" not in e.name.strip("/")
                        and e.name.endswith(".json") and not e.is_dir)
        stem = others[0][:-5] if others else ""
        hint = (f"; it holds {', '.join(others)}: eKuiper installs a plugin under its zip's (or folder's) name and "
                f"reads <name>.json, so name the package {stem}.zip (or the folder {stem})") if others else ""
        report.error(f"missing or invalid json file {jname}, found {len(files.pkg.entries)} files in total{hint}")
        return None
    if found.link or found.is_dir:
        report.error(f"invalid json file {jname}: it is a {'symbolic link' if found.link else 'folder'}")
        return None
    try:
        data = files.pkg.read(found)
    except PackagingError as exc:
        report.error(f"invalid json file {jname}: {exc}")
        return None
    meta, problems = plugin_meta(data, name)
    for problem in problems:
        report.error(problem)
    return meta


def plugin_meta(data: bytes, name: str) -> Tuple[Optional[Dict[str, Any]], List[str]]:
    """The plugin json's bytes as eKuiper reads them for plugin ``name`` (``json.Unmarshal`` into
    ``PluginInfo``, then ``Validate``): its fields, or ``None`` and the errors, with eKuiper's texts."""
    jname = f"{name}.json"
    try:
        raw = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return None, [f"invalid json file {jname}: {exc}"]
    except RecursionError:
        return None, [f"invalid json file {jname}: nested deeper than ekdsl reads (eKuiper: exceeded max depth "
                      "past 10000 levels)"]
    problems = _type_problems(raw, jname)
    if problems:
        return None, problems
    meta: Dict[str, Any] = {
        "name": raw.get("name", name),
        "language": raw.get("language") or "",
        "executable": raw.get("executable") or "",
        **{kind.folder: list(raw.get(kind.folder) or []) for kind in Kind},
        "version": raw.get("version") or "",
    }
    problems = _validate(meta, name)
    return (None, problems) if problems else (meta, [])


def _type_problems(raw: Any, jname: str) -> List[str]:
    """Values Go's ``json.Unmarshal`` into ``PluginInfo`` refuses, each with its path and eKuiper's text."""
    if not isinstance(raw, dict):
        kind = json_kind(raw)
        return [f"invalid json file {jname}: the top level is {kind}, not an object (eKuiper: json: cannot "
                f"unmarshal {kind} into Go value of type portable.PluginInfo)"]
    out = []
    for key in _STRINGS:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            out.append(f"invalid json file {jname}: '{key}' is {json_kind(value)}, not a string (eKuiper: json: "
                       f"cannot unmarshal {json_kind(value)} into Go struct field PluginInfo.PluginMeta.{key} of "
                       "type string)")
    for kind in Kind:
        value = raw.get(kind.folder)
        if value is not None and not isinstance(value, list):
            out.append(f"invalid json file {jname}: '{kind.folder}' is {json_kind(value)}, not a list of names "
                       f"(eKuiper: json: cannot unmarshal {json_kind(value)} into Go struct field "
                       f"PluginInfo.{kind.folder} of type []string)")
            continue
        for i, item in enumerate(value or ()):
            if not isinstance(item, str):
                out.append(f"invalid json file {jname}: '{kind.folder}[{i}]' is {json_kind(item)}, not a name "
                           f"(eKuiper: json: cannot unmarshal {json_kind(item)} into Go struct field "
                           f"PluginInfo.{kind.folder} of type string)")
    return out


def _validate(meta: Dict[str, Any], expected: str) -> List[str]:
    """``PluginInfo.Validate``: the first failing check, with eKuiper's text."""
    if meta["name"] != expected:
        return [f"invalid plugin, expect name '{expected}' but got '{meta['name']}'"]
    if not meta["language"]:
        return ["invalid plugin, missing language"]
    if not meta["executable"]:
        return ["invalid plugin, missing executable"]
    if not (meta["sources"] or meta["sinks"] or meta["functions"]):
        return ["invalid plugin, must define at lease one source, sink or function"]
    if meta["language"] not in _LANGS:
        return [f"invalid plugin, language '{meta['language']}' is not supported"]
    return []


def _lint_names(meta: Dict[str, Any], name: str, report: Report) -> None:
    """Symbol names that cannot name eKuiper's metadata files (``<folder>/<symbol>.json``)."""
    for kind in Kind:
        for symbol in meta[kind.folder]:
            if not symbol or symbol in (".", "..") or any(c in "/\\" or ord(c) < 0x20 or ord(c) == 0x7F
                                                          for c in symbol):
                report.error(f"{name}.json: {kind} name {symbol!r} cannot name a file: eKuiper reads its "
                             f"metadata from {kind.folder}/<name>.json; use letters, digits, '_' and '-'",
                             lint=True)


def _simulate_unzip(pkg: Package, report: Report) -> Set[str]:
    """Replay ``UnzipTo`` into its two roots; return the installed file names."""
    made: Dict[str, Set[str]] = {"conf": {"."}, "plugin": {"."}}
    installed: Set[str] = set()
    for e in pkg.entries:
        clean = posixpath.normpath(e.name.replace("\\", "/"))
        if clean.startswith("../") or clean == ".." or clean.startswith("/"):
            report.error(f"entry '{e.name}': path escapes from parent (eKuiper rejects it)")
            continue
        if e.link:
            target = pkg.head(e, _LINK_TARGET).decode("utf-8", "replace")
            report.error(f"entry '{e.name}' is a symbolic link (to {target!r}): package the file itself")
            continue
        root = made["conf" if clean.startswith(SYMBOL_DIRS) else "plugin"]
        target = clean if e.is_dir else posixpath.dirname(clean) or "."
        parent = posixpath.dirname(target) or "."
        if target not in root:
            if parent not in root:
                report.error(
                    f"entry '{e.name}': mkdirat {target}: no such file or directory (eKuiper creates one "
                    f"folder level per entry: add a directory entry '{parent}/' before it, as 'zip -r' does)")
                continue
            root.add(target)
        if not e.is_dir:
            installed.add(clean)
            if e.mode == 0:
                report.warn(f"entry '{e.name}' has no permission bits: eKuiper installs it unreadable "
                            "for non-root users (set external_attr = 0o100644 << 16)")
    return installed


def _check_executable(files: Contents, meta: Dict[str, Any], name: str, report: Report) -> None:
    exe = meta["executable"]
    entry = files.get(exe)
    if entry is None:
        return
    abs_exe = f"<plugins>/portable/{name}/{exe}"
    if meta["language"] == "go" and not entry.mode & 0o111:
        report.error(f"plugin executable {abs_exe} stops with error fork/exec {abs_exe}: permission denied "
                     f"(the zip entry's mode is {oct(entry.mode)}: set it to 0o755)")
    if meta["language"] == "python" and entry.mode and not entry.mode & 0o444:
        report.error(f"{exe} is not readable (mode {oct(entry.mode)}): python cannot open it")
