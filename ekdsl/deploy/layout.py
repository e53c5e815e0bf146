"""A plugin laid out in an eKuiper root as kuiperd loads it at boot, with no REST call.

What kuiperd reads at boot (eKuiper 2.x, ``LoadFileType=relative``: ``<root>/etc``, ``<root>/data``,
``<root>/plugins``):

- ``internal/plugin/portable/manager.go: InitManager, syncRegistry``: every folder of ``plugins/portable/``
  is a plugin: ``<dir>/<dir>.json`` is validated with the folder's name, its executable must exist, and the
  process starts. Nothing is copied then and no metadata is read (``doRegister(isInit=true)``).
- ``internal/binder/meta/bind.go`` and ``internal/meta``: source metadata from ``etc/sources/<s>.json``
  only; sink metadata from ``etc/sinks`` and ``data/sinks``; function metadata, on request, from
  ``etc/functions`` and ``data/functions`` (both, concatenated); a source's yaml from
  ``etc/sources/<s>.yaml`` only (``internal/conf/yaml_config_ops.go``).

So the plugin folder gets what eKuiper's installer unzips there, every symbol's files go to ``etc/`` only
(a copy in ``data/`` would list a function twice), and the provisioning file's streams and rules go to
``etc/init.json`` (:mod:`ekdsl.deploy.ruleset`). Files another plugin (or eKuiper) owns are never replaced:
a file belongs to this plugin when an earlier layout's ``<name>.json`` names its symbol.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

from ..checks import plugin_meta
from ..errors import PackagingError
from ..kinds import Kind
from ..outfiles import check_parents, read_file, remove_file, replace_tree, write_file
from ..package import foreign
from . import ruleset
from .installer import INSTALL_SH, run_install_script
from .provision import Provision

__all__ = ["PROVISIONED", "Layout", "lay_out"]

PORTABLE = "plugins/portable"
PROVISIONED = "provisioned.json"  # in the plugin folder: what its layout put into etc/init.json
INIT_JSON = "etc/init.json"
_DATA_INIT = "data/init.json"
_SYMBOL_DIRS = tuple(f"{kind.folder}/" for kind in Kind)
_JSON_LIMIT = 8 << 20
_INIT_LIMIT = 64 << 20

Files = Dict[str, Tuple[bytes, int]]


@dataclass(frozen=True)
class Layout:
    """What :func:`lay_out` wrote: paths relative to ``root``."""

    root: str
    plugin_dir: str
    written: Tuple[str, ...]
    removed: Tuple[str, ...]
    install_script: str  # the plugin's install.sh, "" when it has none
    install_output: str  # what it printed, "" when it did not run
    init_changes: Tuple[str, ...]


def _symbol_files(meta: Mapping[str, Any]) -> Set[str]:
    """The ``etc/`` and ``data/`` files of a plugin's symbols, as eKuiper's ``Delete`` removes them."""
    out: Set[str] = set()
    for kind in Kind:
        exts = ("json",) if kind is Kind.FUNCTION else ("json", "yaml")
        for symbol in meta.get(kind.folder) or ():
            if isinstance(symbol, str):
                out.update(f"{top}/{kind.folder}/{symbol}.{ext}" for top in ("etc", "data") for ext in exts)
    return out


def _read_json(root: str, path: str) -> Optional[bytes]:
    """The file, or ``None`` when it is missing or cannot be read safely (a link, too large)."""
    try:
        return read_file(root, path, _JSON_LIMIT)
    except (PackagingError, OSError):
        return None


def _plugins(root: str) -> Dict[str, Optional[Dict[str, Any]]]:
    """Every plugin folder of ``root`` as kuiperd's boot sees it: name → its valid plugin json, else ``None``."""
    folder = os.path.join(root, *PORTABLE.split("/"))
    if not os.path.isdir(folder) or os.path.islink(folder):
        return {}
    out: Dict[str, Optional[Dict[str, Any]]] = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        data = _read_json(root, f"{PORTABLE}/{entry.name}/{entry.name}.json")
        out[entry.name] = None if data is None else plugin_meta(data, entry.name)[0]
    return out


def _others(name: str, plugins: Mapping[str, Optional[Dict[str, Any]]], meta: Mapping[str, Any]) -> None:
    """Refuse a symbol another plugin of the root declares: eKuiper maps a symbol to one plugin, and deleting
    either plugin removes the symbol's files."""
    for other, theirs in plugins.items():
        if other == name or theirs is None:
            continue
        for kind in Kind:
            shared = sorted(set(meta[kind.folder]) & set(theirs[kind.folder]))
            if shared:
                raise PackagingError(
                    f"{kind} '{shared[0]}' is already plugin '{other}''s ({PORTABLE}/{other}/{other}.json): eKuiper "
                    f"maps a {kind} name to one plugin, and deleting either would remove the other's files; rename "
                    "it", os.path.join(PORTABLE, other))


def _foreign_files(root: str, targets: Sequence[str], owned: Set[str], name: str) -> None:
    for path in targets:
        for place in (path, "data/" + path[len("etc/"):]):
            if place not in owned and os.path.lexists(os.path.join(root, *place.split("/"))):
                raise PackagingError(
                    f"{os.path.join(root, place)} is already there, and no earlier layout of plugin '{name}' wrote "
                    "it (it is eKuiper's own or another plugin's): rename the symbol", os.path.join(root, place))


def _rulesets(root: str, provision: Optional[Provision], old: Optional[bytes], name: str) -> ruleset.Merge:
    """``etc/init.json`` merged with the provisioning: what to write (``content=None``: leave it as it is)."""
    if provision is None and old is None:
        return ruleset.Merge(None, ())
    new = ruleset.fragment(provision) if provision is not None else ruleset.empty()
    before = ruleset.parse(old, os.path.join(PORTABLE, name, PROVISIONED))[0] if old is not None else ruleset.empty()
    where = os.path.join(root, INIT_JSON)
    data = read_file(root, INIT_JSON, _INIT_LIMIT)
    current, doc = ruleset.parse(data, where) if data is not None else (ruleset.empty(), {})
    others = []
    theirs = read_file(root, _DATA_INIT, _INIT_LIMIT)
    if theirs is not None:
        other = os.path.join(root, _DATA_INIT)
        others.append((other, ruleset.parse(theirs, other)[0]))
    return ruleset.merge(doc, current, before, new, where, f"plugin '{name}'", others)


class _Plan(NamedTuple):
    plugin: Files  # the plugin folder's files
    symbols: Files  # root path → the symbols' files, all in etc/
    owned: Set[str]  # the symbols' files in etc/ and data/ an earlier layout of the plugin wrote
    merged: ruleset.Merge


def _plan(name: str, files: Files, root: str, provision: Optional[Provision]) -> _Plan:
    """What the layout writes, once everything that belongs to others is known to stay untouched."""
    plugin = {path: entry for path, entry in files.items() if not path.startswith(_SYMBOL_DIRS)}
    symbols = {f"etc/{path}": entry for path, entry in files.items() if path.startswith(_SYMBOL_DIRS)}
    if PROVISIONED in plugin:
        raise PackagingError(f"the package holds a file '{PROVISIONED}', a name the layout keeps for what it puts "
                             "into etc/init.json: rename that file of yours")
    declared = json.loads(files[f"{name}.json"][0])
    meta = {kind.folder: list(declared.get(kind.folder) or []) for kind in Kind}
    for path in [f"{PORTABLE}/{name}", INIT_JSON, _DATA_INIT, *symbols, *(f"data/{p[4:]}" for p in symbols)]:
        check_parents(root, path)  # before anything is read or written
    plugins = _plugins(root)
    _others(name, plugins, meta)
    earlier = plugins.get(name)
    owned = _symbol_files(earlier or {})
    _foreign_files(root, sorted(symbols), owned, name)
    old_record = _read_json(root, f"{PORTABLE}/{name}/{PROVISIONED}") if earlier is not None else None
    merged = _rulesets(root, provision, old_record, name)
    if provision is not None:
        plugin[PROVISIONED] = (ruleset.dump(ruleset.fragment(provision)), 0o644)
    return _Plan(plugin, symbols, owned, merged)


def lay_out(name: str, files: Files, root: str, *, provision: Optional[Provision] = None,
            install: bool = True, shell_paras: Sequence[str] = (),
            install_env: Optional[Mapping[str, str]] = None) -> Layout:
    """Lay out the package ``files`` (:func:`ekdsl.package.package_files`) of plugin ``name`` in ``root``.

    With ``install`` the package's install.sh runs in its folder (with ``shell_paras``), building the
    plugin's ``.venv`` there; when it fails the earlier layout is put back. ``provision``'s streams, tables
    and rules are merged into ``etc/init.json``.
    """
    plan = _plan(name, files, root, provision)
    output: List[str] = []

    def install_requirements(folder: str) -> None:
        if install and INSTALL_SH in plan.plugin:
            try:
                output.append(run_install_script(folder, shell_paras, env=install_env))
            except PackagingError as exc:
                raise PackagingError(f"install.sh of plugin '{name}' failed, so {root} was left as it was (lay out "
                                     f"with --no-install to run it later): {exc}", exc.path) from None

    portable = os.path.join(root, *PORTABLE.split("/"))
    os.makedirs(portable, exist_ok=True)  # no link on the way: checked by _plan
    refuse = foreign(name, "layout", "remove it or lay out into another root")
    plugin_dir = replace_tree(portable, name, plan.plugin, refuse, then=install_requirements)
    for path, (data, mode) in plan.symbols.items():
        write_file(root, path, data, mode)
    removed = [path for path in sorted(plan.owned - set(plan.symbols)) if remove_file(root, path)]
    if plan.merged.content is not None:
        write_file(root, INIT_JSON, ruleset.dump(plan.merged.content), 0o644)
    written = [f"{PORTABLE}/{name}/", *sorted(plan.symbols)] + ([INIT_JSON] if plan.merged.content is not None else [])
    script = os.path.join(plugin_dir, INSTALL_SH) if INSTALL_SH in plan.plugin else ""
    return Layout(root, plugin_dir, tuple(written), tuple(removed), script, "".join(output), plan.merged.changes)
