"""An eKuiper root read as kuiperd reads it at boot: which plugins register, which metadata is served, and
which rulesets are imported (eKuiper 2.x, ``LoadFileType=relative``).

- Plugins (``internal/plugin/portable/manager.go: syncRegistry, parsePluginJson, doRegister``): each folder of
  ``plugins/portable/`` (anything else there only gets a warning) whose ``<dir>/<dir>.json`` passes
  ``Validate`` with the folder's name and whose executable exists; a symbol declared by two plugins goes to
  whichever registers last.
- Source metadata (``internal/meta/sourceMeta.go: ReadSourceMetaDir``): ``etc/mqtt_source.json`` first (if it
  fails, no source metadata at all), then ``etc/sources/*.json`` in name order, of registered sources only;
  the first file that fails stops the rest. Plugins register in goroutines of their own while this runs, so
  a plugin's source metadata is loaded only when its plugin registered first (:attr:`Boot.timing`).
- Sink metadata (``sinkMeta.go: ReadSinkMetaDir``): every ``*.json`` of ``etc/sinks``, then of ``data/sinks``;
  the first file that fails stops the rest.
- Function metadata (``func_meta.go``): every ``*.json`` of ``etc/functions`` and ``data/functions``,
  concatenated for ``GET /metadata/functions``.
- Rulesets (``internal/server/rule_init.go``): ``data/init.json``, then ``etc/init.json``.

A metadata file fails when it is not JSON, has no ``about``, (a sink's) has ``properties`` that are not a
list, or holds a property whose array ``default`` is not made of objects.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..checks import plugin_meta
from ..deploy.provision import rule_problem, statement
from ..deploy.ruleset import Ruleset, parse
from ..errors import PackagingError
from ..kinds import Kind
from ..lint import array_defaults
from ..reserved import BUILTIN_LOOKUP_SOURCES, BUILTIN_SOURCES
from .install import Installed

__all__ = ["Boot", "boot"]

_LIMIT = 64 << 20


@dataclass
class Boot:
    """What kuiperd would load from ``root``; ``warnings`` holds what it would log (or silently skip)."""

    root: str
    plugins: Dict[str, Installed] = field(default_factory=dict)
    sources: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # symbol → its metadata json
    sinks: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    functions: List[str] = field(default_factory=list)  # the function metadata files, in the order served
    rulesets: List[Tuple[str, Ruleset]] = field(default_factory=list)  # (path, content), in import order
    warnings: List[str] = field(default_factory=list)
    timing: List[str] = field(default_factory=list)  # what loads only when kuiperd's goroutines run in time

    def symbols(self, kind: Kind) -> Dict[str, str]:
        """Symbol → the plugin it is registered to."""
        return {s: name for name, inst in self.plugins.items() for s in inst.meta[kind.folder]}


def _read(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as fh:
            data = fh.read(_LIMIT + 1)
    except OSError:
        return None
    return data if len(data) <= _LIMIT else None


def _plugins(root: str, out: Boot) -> None:
    folder = os.path.join(root, "plugins", "portable")
    if not os.path.isdir(folder):
        out.warnings.append(f"read path '{folder}' error: kuiperd does not start without it")
        return
    seen: Dict[str, str] = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.is_dir(follow_symlinks=False):
            out.warnings.append(f"find file `{entry.name}`, portable plugin must be a directory")
            continue
        jpath = os.path.join(entry.path, f"{entry.name}.json")
        data = _read(jpath)
        meta, problems = plugin_meta(data, entry.name) if data is not None else (None, ["cannot be read"])
        if meta is None:
            out.warnings.append(f"cannot read json file `{jpath}` when loading portable plugins: {problems[0]}")
            continue
        inst = Installed(entry.name, root, meta)
        if not os.path.exists(inst.executable):
            out.warnings.append(f"cannot find executable `{inst.executable}` when loading portable plugins")
            continue
        for kind in Kind:
            for symbol in meta[kind.folder]:
                key = f"{kind}:{symbol}"
                if key in seen:
                    out.warnings.append(f"{kind} '{symbol}' is declared by plugins '{seen[key]}' and "
                                        f"'{entry.name}': it goes to whichever registers last")
                seen[key] = entry.name
        out.plugins[entry.name] = inst


def _metadata_problem(data: Optional[bytes], kind: Kind) -> Tuple[Optional[Dict[str, Any]], str]:
    """The metadata json and why eKuiper fails to read it ("" when it does not)."""
    try:
        doc = json.loads(data.decode("utf-8")) if data is not None else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        doc = None
    if not isinstance(doc, dict):
        return None, "not a JSON object"
    if not isinstance(doc.get("about"), dict):
        return doc, "not found about"
    props = doc.get("properties")
    if kind is Kind.SINK and props is not None and not isinstance(props, list):
        return doc, "'properties' is not a list"
    groups = props.values() if kind is Kind.SOURCE and isinstance(props, dict) else [props]
    for fields in groups:
        for name, _ in array_defaults(fields if isinstance(fields, list) else []):
            return doc, f"property '{name}' has an array default that is not made of objects"
    return doc, ""


def _metadata_dir(folder: str, kind: Kind, keep: Callable[[str], bool], into: Dict[str, Dict[str, Any]],
                  out: Boot) -> bool:
    """Read ``folder``'s ``*.json`` as eKuiper does; ``False`` once a file failed (the rest are not read)."""
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    except FileNotFoundError:
        if os.path.basename(os.path.dirname(folder)) == "data":
            return True  # kuiperd makes data/sources, data/sinks and data/functions before it reads them
        out.warnings.append(f"read{kind.title()}MetaDir: {folder} is missing")
        return False
    except OSError:
        out.warnings.append(f"read{kind.title()}MetaDir: {folder} cannot be read")
        return False
    for name in names:
        symbol = name[: -len(".json")]
        if not keep(symbol):
            out.warnings.append(f"Find {kind} metadata file but not installed : {name}")
            continue
        doc, problem = _metadata_problem(_read(os.path.join(folder, name)), kind)
        if problem:
            out.warnings.append(f"{os.path.join(folder, name)}: {problem}: the {kind} metadata files after it "
                                "are not loaded")
            return False
        assert doc is not None
        into[symbol] = doc
        owner = out.symbols(Kind.SOURCE).get(symbol) if kind is Kind.SOURCE else None
        if owner is not None:
            out.timing.append(f"source '{symbol}': eKuiper reads {name} at boot only if plugin '{owner}' has "
                              "registered by then (plugins register concurrently); otherwise GET "
                              f"/metadata/sources/{symbol} answers 400 until the next start")
    return True


def _metadata(root: str, out: Boot) -> None:
    etc, data = os.path.join(root, "etc"), os.path.join(root, "data")
    sources = BUILTIN_SOURCES | BUILTIN_LOOKUP_SOURCES | set(out.symbols(Kind.SOURCE))  # scan or lookup
    mqtt = _metadata_problem(_read(os.path.join(etc, "mqtt_source.json")), Kind.SOURCE)[1]
    if mqtt:
        out.warnings.append(f"{os.path.join(etc, 'mqtt_source.json')}: {mqtt}: no source metadata is loaded")
    else:
        _metadata_dir(os.path.join(etc, "sources"), Kind.SOURCE, sources.__contains__, out.sources, out)
    for top in (etc, data):
        if not _metadata_dir(os.path.join(top, "sinks"), Kind.SINK, lambda s: True, out.sinks, out):
            break
    for top in (etc, data):
        folder = os.path.join(top, "functions")
        if os.path.isdir(folder):
            out.functions += [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".json")]


def _import_problems(rs: Ruleset) -> List[str]:
    """What eKuiper's ``RulesetProcessor.Import`` logs as not imported (it goes on with the rest)."""
    out = []
    for section in ("streams", "tables"):
        for name, sql in sorted(rs[section].items()):
            found = statement(sql)
            if found is None or f"{found.kind}s" != section or found.name != name:
                out.append(f"Fail to import {section[:-1]} {name}: the statement must be 'CREATE "
                           f"{section[:-1].upper()} {name} ...'")
    for rid, text in sorted(rs["rules"].items()):
        try:
            rule = json.loads(text)
        except (ValueError, RecursionError):
            rule = None
        if isinstance(rule, dict):
            rule.setdefault("id", rid)
        problem = rule_problem(rule) if rule is None or rule.get("id") == rid else "RuleId is not consistent"
        if problem is not None:
            out.append(f"Fail to import rule {rid}: {problem}")
    return out


def boot(root: str) -> Boot:
    """Read the eKuiper root ``root`` as kuiperd does when it starts."""
    out = Boot(root)
    _plugins(root, out)
    _metadata(root, out)
    for top in ("data", "etc"):
        path = os.path.join(root, top, "init.json")
        data = _read(path)
        if data is None:
            continue
        try:
            rs = parse(data, path)[0]
        except PackagingError as exc:
            out.warnings.append(f"fail to import ruleset: {exc}")
            continue
        out.rulesets.append((path, rs))
        out.warnings += [f"{path}: {problem}" for problem in _import_problems(rs)]
    return out
