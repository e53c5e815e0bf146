"""``ekdsl check``: the checks eKuiper's installer makes, with its own error texts, plus metadata lint.

Installer checks follow ``internal/plugin/portable/manager.go: install``,
``model.go: PluginInfo.Validate`` and ``internal/pkg/filex/zip.go: UnzipTo``;
the lint catches what eKuiper accepts but silently mishandles
(``internal/conf/load.go``, ``internal/meta/*``).
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set

from .errors import PackagingError
from .kinds import Kind
from .reserved import builtin_symbol, reserved_property

__all__ = ["Entry", "Finding", "Report", "check_package", "read_entries"]

_LANGS = ("go", "python")
_SYMBOL_DIRS = ("sources/", "sinks/", "functions/")


@dataclass(frozen=True)
class Entry:
    """One member of a package, as eKuiper's unzip sees it."""

    name: str
    is_dir: bool
    mode: int  # permission bits, as Go's zip FileHeader.Mode() gives them
    data: bytes = b""
    link: bool = False  # a symbolic link (its data is the target)


@dataclass(frozen=True)
class Finding:
    level: str  # "error" | "warning"
    message: str
    lint: bool = False  # False: eKuiper's installer refuses the package; True: it installs, but misbehaves

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


@dataclass
class Report:
    """The result of checking one package."""

    name: str
    findings: List[Finding] = field(default_factory=list)
    info: Dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(f.level == "error" for f in self.findings)

    def error(self, message: str, lint: bool = False) -> None:
        self.findings.append(Finding("error", message, lint))

    def warn(self, message: str) -> None:
        self.findings.append(Finding("warning", message, True))


def _zip_mode(info: zipfile.ZipInfo) -> int:
    """Go's ``FileHeader.Mode()`` permission bits for a zip entry."""
    if info.create_system in (3, 19):  # Unix, macOS
        return (info.external_attr >> 16) & 0o7777
    if info.create_system in (0, 11, 14):  # FAT, NTFS, VFAT
        if info.external_attr & 0x10:
            return 0o777
        return 0o444 if info.external_attr & 0x01 else 0o666
    return 0


def read_entries(path: str) -> List[Entry]:
    """The entries of a zip (in archive order) or of a directory (walked in sorted order)."""
    if os.path.isdir(path):
        return _dir_entries(path)
    if not os.path.isfile(path):
        raise PackagingError(f"no such package: {path} (give a plugin .zip or an exported folder)", path)
    try:
        with zipfile.ZipFile(path) as zf:
            return [Entry(i.filename, i.is_dir(), _zip_mode(i), b"" if i.is_dir() else zf.read(i),
                          i.create_system in (3, 19) and stat.S_ISLNK(i.external_attr >> 16))
                    for i in zf.infolist()]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise PackagingError(f"{path} is not a readable zip file ({exc})", path) from exc


def _dir_entries(root: str) -> List[Entry]:
    out: List[Entry] = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
        if rel != ".":
            out.append(Entry(rel + "/", True, stat.S_IMODE(os.stat(folder).st_mode)))
        for name in sorted(names):
            full = os.path.join(folder, name)
            arc = name if rel == "." else f"{rel}/{name}"
            if os.path.islink(full):
                out.append(Entry(arc, False, 0o777, os.readlink(full).encode(), link=True))
                continue
            with open(full, "rb") as fh:
                out.append(Entry(arc, False, stat.S_IMODE(os.stat(full).st_mode), fh.read()))
    return out


def package_name(path: str) -> str:
    """The install name eKuiper would be given for ``path``: the zip's or folder's base name."""
    base = os.path.basename(os.path.normpath(path))
    return base[:-4] if base.endswith(".zip") else base


def check_package(path: str, name: Optional[str] = None) -> Report:
    """Run every check on the package at ``path`` installed under ``name``."""
    name = name or package_name(path)
    entries = read_entries(path)
    report = Report(name)
    meta = _plugin_json(entries, name, report)
    if meta is None:
        return report
    installed = _simulate_unzip(entries, report)
    required = [f"{name}.json", meta["executable"]] + [f"sources/{s}.yaml" for s in meta["sources"]]
    for rf in required:
        if rf not in installed:
            report.error(f"missing {rf}")
    if report.ok:
        _check_executable(entries, meta, name, report)
        _lint_metadata(entries, meta, report)
        from .deploy.checks import check_install  # install.sh, requirements.txt, wheels/

        check_install(entries, meta["executable"], report)
    report.info = meta
    return report


def _plugin_json(entries: List[Entry], name: str, report: Report) -> Optional[Dict[str, Any]]:
    jname = f"{name}.json"
    found = next((e for e in entries if e.name == jname), None)
    if found is None:
        report.error(f"missing or invalid json file {jname}, found {len(entries)} files in total")
        return None
    try:
        raw = json.loads(found.data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        report.error(f"invalid json file {jname}: {exc}")
        return None
    if not isinstance(raw, dict):
        report.error(f"invalid json file {jname}: expected a JSON object")
        return None
    meta: Dict[str, Any] = {
        "name": raw.get("name", name),
        "language": raw.get("language") or "",
        "executable": raw.get("executable") or "",
        **{kind.folder: list(raw.get(kind.folder) or []) for kind in Kind},
        "version": raw.get("version", ""),
    }
    for msg in _validate(meta, name):
        report.error(msg)
        return None
    return meta


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


def _simulate_unzip(entries: List[Entry], report: Report) -> Set[str]:
    """Replay ``UnzipTo`` into its two roots; return the installed file names."""
    made: Dict[str, Set[str]] = {"conf": {"."}, "plugin": {"."}}
    installed: Set[str] = set()
    for e in entries:
        clean = posixpath.normpath(e.name.replace("\\", "/"))
        if clean.startswith("../") or clean == ".." or clean.startswith("/"):
            report.error(f"entry '{e.name}': path escapes from parent (eKuiper rejects it)")
            continue
        if e.link:
            report.error(f"entry '{e.name}' is a symbolic link (to {e.data.decode('utf-8', 'replace')!r}): "
                         "package the file itself")
            continue
        root = made["conf" if clean.startswith(_SYMBOL_DIRS) else "plugin"]
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


def _check_executable(entries: List[Entry], meta: Dict[str, Any], name: str, report: Report) -> None:
    exe = meta["executable"]
    entry = next((e for e in entries if posixpath.normpath(e.name) == exe and not e.is_dir), None)
    if entry is None:
        return
    abs_exe = f"<plugins>/portable/{name}/{exe}"
    if meta["language"] == "go" and not entry.mode & 0o111:
        report.error(f"plugin executable {abs_exe} stops with error fork/exec {abs_exe}: permission denied "
                     f"(the zip entry's mode is {oct(entry.mode)}: set it to 0o755)")
    if meta["language"] == "python" and entry.mode and not entry.mode & 0o444:
        report.error(f"{exe} is not readable (mode {oct(entry.mode)}): python cannot open it")


def _load_json(entries: Dict[str, Entry], path: str, report: Report) -> Optional[Any]:
    try:
        return json.loads(entries[path].data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        report.error(f"{path}: invalid JSON ({exc})", lint=True)
        return None


def _lint_metadata(entries: List[Entry], meta: Dict[str, Any], report: Report) -> None:
    by_name = {posixpath.normpath(e.name): e for e in entries if not e.is_dir}
    _lint_builtins(meta, report)
    for src in meta["sources"]:
        _lint_source(by_name, src, report)
    for snk in meta["sinks"]:
        path = f"sinks/{snk}.json"
        data = _load_json(by_name, path, report) if path in by_name else None
        if isinstance(data, dict):
            if "about" not in data:
                report.error(f"not found about of {path}", lint=True)
            props = data.get("properties", [])
            if not isinstance(props, list):
                report.error(f"{path}: 'properties' must be a list for a sink (eKuiper fails to read the file)",
                             lint=True)
            else:
                _lint_defaults(path, props, report)
                _lint_reserved(Kind.SINK, path, [f.get("name") for f in props if isinstance(f, dict)], report)
    for fn in meta["functions"]:
        path = f"functions/{fn}.json"
        data = _load_json(by_name, path, report) if path in by_name else None
        if isinstance(data, dict):
            names = [f.get("name") for f in data.get("functions", []) if isinstance(f, dict)]
            if fn not in names:
                report.error(f"{path} describes {names or 'no function'}, not '{fn}' from the plugin json",
                             lint=True)
    declared = {f"{kind.folder}/{s}" for kind in Kind for s in meta[kind.folder]}
    for path in sorted(by_name):
        if path.startswith(_SYMBOL_DIRS) and posixpath.splitext(path)[0] not in declared:
            report.warn(f"{path} belongs to no symbol declared in the plugin json")


def _lint_source(by_name: Dict[str, Entry], src: str, report: Report) -> None:
    jpath, ypath = f"sources/{src}.json", f"sources/{src}.yaml"
    yaml_data = _yaml(by_name, ypath, report)
    if jpath not in by_name:
        return
    data = _load_json(by_name, jpath, report)
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
    names = set(_names(props))
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
            if not isinstance(name, str):
                continue
            where = builtin_symbol(kind, name)
            if where is not None:
                report.error(f"{kind} '{name}' has the name of eKuiper's built-in {kind} ({where}): eKuiper "
                             f"looks built-ins up first, so the plugin's {kind} is never reached; rename it",
                             lint=True)
            elif builtin_symbol(kind, name, optional=True) is not None:
                report.warn(f"{kind} '{name}' has the name of a built-in {kind} of eKuiper's full or edgex "
                            "builds: there the plugin's one is never reached")


def _lint_reserved(kind: Kind, path: str, names: List[Any], report: Report) -> None:
    """Property names eKuiper takes over (``ekdsl.reserved``)."""
    for name in names:
        hit = reserved_property(kind, name) if isinstance(name, str) else None
        if hit is not None:
            report.warn(f"{path}: property '{name}' has a name eKuiper reserves ({hit.go}): {hit.effect}; "
                        "rename the property")


def _lint_defaults(path: str, fields: List[Any], report: Report) -> None:
    """``newField`` reads an array ``default`` as nested fields: an array of scalars fails to load."""
    for f in fields:
        if not isinstance(f, dict):
            continue
        default = f.get("default")
        if isinstance(default, list):
            if all(isinstance(item, dict) for item in default):
                _lint_defaults(path, default, report)
            else:
                report.error(f"{path}: property '{f.get('name')}' has the array default {json.dumps(default)}, "
                             "which eKuiper reads as nested fields and fails on; at boot that stops the loading "
                             "of the rest of its metadata folder (internal/meta/sinkMeta.go newField): write [] "
                             "and put the real default in the source yaml", lint=True)


def _names(element: Any) -> List[str]:
    """``extractNamesFromElement``: the names eKuiper restores the yaml key case for."""
    out: List[str] = []
    default = element.get("default") if isinstance(element, dict) else None
    if isinstance(default, (list, dict)) and default:
        for item in default if isinstance(default, list) else default.values():
            if isinstance(item, dict):
                out.extend(_names(item))
        return out
    if isinstance(element, dict) and isinstance(element.get("name"), str):
        out.append(element["name"])
    return out


def _yaml(by_name: Dict[str, Entry], path: str, report: Report) -> Optional[Dict[str, Any]]:
    import yaml

    if path not in by_name:
        return None
    try:
        data = yaml.safe_load(by_name[path].data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        report.error(f"{path}: invalid YAML ({exc})", lint=True)
        return None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) or v is None for v in data.values()):
        report.error(f"{path}: expected confKey sections such as 'default:' mapping to properties", lint=True)
        return None
    return data
