"""Installing a package as eKuiper does, and building a source's config from its yaml as eKuiper does.

Layout (``internal/plugin/portable/manager.go: install``): ``sources/``, ``sinks/`` and
``functions/`` entries go to ``<root>/etc/`` (and ``<root>/data/``), everything else to
``<root>/plugins/portable/<name>/``. Config (``internal/conf/load.go``,
``internal/topo/node/conf/source.go``): yaml keys are lower-cased unless named in the source json's
``properties.default``, and the whole yaml is ignored when that json lacks a ``properties`` map.
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from ..archive import DEFAULT_LIMITS, Entry, Limits, Package, open_package
from ..checks import check_opened, package_name
from ..errors import PackagingError
from ..lint import property_names
from .host import layered_props, source_config

__all__ = ["STREAM_OPTIONS", "Installed", "install", "load_source_config", "source_props", "stream_config"]

_CONF_DIRS = ("sources/", "sinks/", "functions/")


@dataclass
class Installed:
    """A plugin laid out under an eKuiper-like root."""

    name: str
    root: str
    meta: Dict[str, Any]
    findings: List[str] = field(default_factory=list)

    @property
    def plugin_dir(self) -> str:
        return os.path.join(self.root, "plugins", "portable", self.name)

    @property
    def executable(self) -> str:
        return os.path.normpath(os.path.join(self.plugin_dir, self.meta["executable"]))

    @property
    def language(self) -> str:
        return str(self.meta["language"])

    def etc(self, *parts: str) -> str:
        return os.path.join(self.root, "etc", *parts)

    def uses_official_sdk(self) -> bool:
        """True if the plugin's Python code imports the official ``ekuiper`` SDK."""
        for folder, _, names in os.walk(self.plugin_dir):
            for n in names:
                if n.endswith(".py"):
                    with open(os.path.join(folder, n), encoding="utf-8", errors="replace") as fh:
                        text = fh.read()
                    if "from ekuiper import" in text or "import ekuiper" in text:
                        return True
        return False


def _safe_target(base: str, name: str) -> str:
    clean = posixpath.normpath(name)
    if clean.startswith(("../", "/")) or clean == ".." or os.path.isabs(name):
        raise PackagingError(f"fail to install plugin: entry '{name}' escapes the plugin folder", name)
    return os.path.join(base, *clean.split("/"))


def install(package: str, root: str, name: Optional[str] = None, limits: Limits = DEFAULT_LIMITS) -> Installed:
    """Check ``package`` (zip or folder) as eKuiper's installer does and lay it out under ``root``.

    The package is read within ``limits`` (:mod:`ekdsl.archive`), each file streamed to its place.
    Raises :class:`PackagingError` with eKuiper's message when the installer would refuse it.
    """
    name = name or package_name(package)
    with open_package(package, limits) as pkg:
        report = check_opened(pkg, name)
        errors = [f.message for f in report.findings if f.level == "error" and not f.lint]
        if errors:
            raise PackagingError(f"fail to install plugin: {errors[0]}", package)
        inst = Installed(name, root, report.info, [f.message for f in report.findings if f.lint])
        for entry in pkg.entries:
            if entry.is_dir:
                continue
            if entry.name.startswith(_CONF_DIRS):
                targets = [_safe_target(os.path.join(root, d), entry.name) for d in ("etc", "data")]
            else:
                targets = [_safe_target(inst.plugin_dir, entry.name)]
            for target in targets:
                _unpack(pkg, entry, target)
    return inst


def _unpack(pkg: Package, entry: Entry, target: str) -> None:
    """Stream ``entry`` to ``target``, replacing (never writing through) what is there, as eKuiper's unzip does."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.lexists(target):
        os.unlink(target)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 stat.S_IMODE(entry.mode) or 0o644)
    with os.fdopen(fd, "wb") as fh:
        for chunk in pkg.chunks(entry):
            fh.write(chunk)
    os.chmod(target, stat.S_IMODE(entry.mode) or 0o644)


def _json_names(inst: Installed, symbol: str) -> Optional[List[str]]:
    """Names eKuiper restores yaml key case for; ``None`` when eKuiper drops the yaml."""
    path = inst.etc("sources", f"{symbol}.json")
    if not os.path.exists(path):
        return []
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except ValueError:
        return None
    props = data.get("properties") if isinstance(data, dict) else None
    if not isinstance(props, dict):
        return None
    return property_names(props)


def _lower(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).lower(): _lower(v) for k, v in value.items()}
    return value


def _restore(value: Any, names: Dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {names.get(k, k): _restore(v, names) for k, v in value.items()}
    return value


# internal/topo/node/conf/source.go GetSourceConf: the stream's WITH options it writes over the props
STREAM_OPTIONS = {
    "FORMAT": "format", "KEY": "key", "SCHEMAID": "schemaId", "DELIMITER": "delimiter",
    "RETAIN_SIZE": "retainSize", "STRICT_VALIDATION": "strictValidation", "TIMESTAMP": "timestamp",
    "TIMESTAMP_FORMAT": "timestampFormat",
}


def _sections(inst: Installed, symbol: str, conf_key: str) -> Dict[str, Any]:
    import yaml

    names = _json_names(inst, symbol)
    sections: Dict[str, Any] = {}
    path = inst.etc("sources", f"{symbol}.yaml")
    if names is not None and os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            loaded = yaml.safe_load(fh) or {}
        if isinstance(loaded, dict):
            restore = {n.lower(): n for n in names}
            sections = {str(k).lower(): _restore(_lower(v or {}), restore) for k, v in loaded.items()}
    if conf_key and conf_key.lower() not in sections and conf_key not in sections:
        inst.findings.append(f"confKey '{conf_key}' is not in sources/{symbol}.yaml (it has: "
                             f"{', '.join(sections) or 'none'}): eKuiper warns and uses the default section")
    return sections


def source_props(inst: Installed, symbol: str, conf_key: str = "", extra: Optional[Dict[str, Any]] = None,
                 connections: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Dict[str, Any]:
    """The yaml's ``default`` section, the confKey's over it, the props of the named connection its
    ``connectionSelector`` names (``connections``: id → props), then the stream's EXTRA: the properties before
    ``GetSourceConf`` writes the stream's own keys over them."""
    props = layered_props(_sections(inst, symbol, conf_key), conf_key)
    selector = props.get("connectionSelector")
    if isinstance(selector, str) and connections is not None:
        if selector in connections:
            props.update(connections[selector])
        else:
            inst.findings.append(f"source '{symbol}': connectionSelector '{selector}' names no connection (create "
                                 "it with POST /connections): eKuiper logs a warning and goes on without its props")
    elif "connectionselector" in props:
        inst.findings.append(f"source '{symbol}': sources/{symbol}.yaml sets connectionSelector, but eKuiper "
                             f"lower-cases it (sources/{symbol}.json does not name it) and then does not see it")
    props.update(extra or {})
    return props


def load_source_config(inst: Installed, symbol: str, conf_key: str = "", datasource: str = "",
                       fmt: str = "json", extra: Optional[Dict[str, Any]] = None,
                       options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The config eKuiper would send ``symbol`` for a stream with this CONF_KEY, DATASOURCE and
    WITH ``options`` (``FORMAT``, ``KEY``, ``SCHEMAID``, ... as in :data:`STREAM_OPTIONS`)."""
    return stream_config(source_props(inst, symbol, conf_key, extra), datasource, fmt, options)


def stream_config(props: Mapping[str, Any], datasource: str = "", fmt: str = "json",
                  options: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """``props`` (see :func:`source_props`) as ``GetSourceConf`` completes them for a stream with this
    DATASOURCE and WITH ``options``: eKuiper's own keys, the stream's options over the same props."""
    opts = {str(k).upper(): v for k, v in (options or {}).items()}
    config = source_config({"default": props}, "", datasource, str(opts.get("FORMAT") or fmt), None)
    for option, key in STREAM_OPTIONS.items():
        if option in opts and option != "FORMAT":
            config[key] = opts[option]
    return config
