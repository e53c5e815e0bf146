"""``python -m ekdsl state``: list, show, export, import or drop what plugins keep in ``ctx.state``.

State outlives rules and plugins (eKuiper deletes neither's state: ekdsl never knows that a rule is gone for
good), so this is how it is looked at and cleaned up, per plugin or per rule.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, TextIO, Tuple

from ..errors import StoreError, UsageError
from .locate import BASE_ENV, STATE_ENV, Location, find_location, parse_location
from .scope import Scope, split_key
from .store import Store, Stores
from .values import decode, encode

__all__ = ["add_arguments", "run"]

Entry = Tuple[Optional[Scope], str, bytes]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="DIR|URL", help="the store: a folder of SQLite files, or a redis:// URL "
                                                      f"(default: ${STATE_ENV}, else eKuiper's, found from here)")
    p.add_argument("--ekuiper", metavar="DIR", help="eKuiper's folder (the one holding data/ and etc/): use the "
                                                    "store its plugins use")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    ls = sub.add_parser("list", help="the plugins with state, and each one's scopes")
    ls.add_argument("plugin", nargs="?", help="only this plugin")
    for name, text in (("show", "print a plugin's keys and values"),
                       ("export", "write a plugin's state as JSON Lines (to stdout, or -o FILE)"),
                       ("drop", "delete a plugin's state")):
        q = sub.add_parser(name, help=text)
        q.add_argument("plugin")
        q.add_argument("--rule", help="only the state of this rule's instances")
        if name == "export":
            q.add_argument("-o", "--output", help="file to write (default: stdout)")
    imp = sub.add_parser("import", help="put back what 'export' wrote (keys it names are overwritten)")
    imp.add_argument("file", help="a file written by 'state export' ('-' for stdin)")


def location(args: argparse.Namespace) -> Location:
    if args.store:
        return parse_location(args.store, "--store")
    env = dict(os.environ)
    if args.ekuiper:
        env.pop(STATE_ENV, None)
        env[BASE_ENV] = os.path.abspath(args.ekuiper)
    try:
        return find_location(env, [os.getcwd()], walk=True)
    except StoreError as exc:
        raise UsageError(f"{exc}; or give --ekuiper DIR (eKuiper's folder) or --store DIR|URL") from None


def entries(store: Store, rule: Optional[str] = None) -> List[Entry]:
    out: List[Entry] = []
    for full, value in store.scan(""):
        split = split_key(full)
        scope, key = split if split is not None else (None, full)
        if rule is None or (scope is not None and scope.kind != "shared" and scope.rule == rule):
            out.append((scope, key, value))
    return out


def _grouped(found: List[Entry]) -> Iterator[Tuple[str, List[Entry]]]:
    groups: Dict[str, List[Entry]] = OrderedDict()
    for entry in found:
        groups.setdefault(entry[0].describe() if entry[0] else "keys of no scope", []).append(entry)
    yield from groups.items()


def _scope_json(scope: Optional[Scope]) -> Optional[Dict[str, Any]]:
    if scope is None:
        return None
    out: Dict[str, Any] = {"kind": scope.kind}
    if scope.kind != "shared":
        out.update(symbol=scope.symbol, rule=scope.rule, op=scope.op, instance=scope.instance)
    if scope.kind == "function":
        out["funcId"] = scope.func_id
    return out


def _list(where: Location, stores: Stores, plugin: Optional[str], out: TextIO) -> int:
    plugins = [plugin] if plugin else where.plugins()
    if not plugins:
        out.write("no plugin has state here\n")
    for name in plugins:
        found = entries(stores.store(name))
        out.write(f"{name}: {len(found)} key{'s' * (len(found) != 1)}\n")
        for title, group in _grouped(found):
            out.write(f"  {title}: {len(group)} key{'s' * (len(group) != 1)}\n")
    return 0


def _show(found: List[Entry], out: TextIO) -> None:
    for title, group in _grouped(found):
        out.write(f"{title}\n")
        for _, key, value in group:
            try:
                shown = json.dumps(decode(value, key), ensure_ascii=False)
            except StoreError:
                shown = f"(not JSON) {value[:60]!r}"
            out.write(f"  {key} = {shown}\n")


def _export(plugin: str, found: List[Entry], out: TextIO) -> None:
    for scope, key, value in found:
        line = {"plugin": plugin, "scope": _scope_json(scope), "key": key, "value": decode(value, key)}
        out.write(json.dumps(line, ensure_ascii=False) + "\n")


def _import(stores: Stores, lines: TextIO) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            plugin, key, value = item["plugin"], item["key"], item["value"]
            scope = _scope_of(item.get("scope"))
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"line {n} is not what 'state export' writes ({type(exc).__name__}: {exc})") from None
        full = (scope.prefix if scope is not None else "") + str(key)
        stores.store(str(plugin)).write([(full, encode(value, str(key), "import"))])
        counts[plugin] = counts.get(plugin, 0) + 1
    return counts


def _scope_of(data: Any) -> Optional[Scope]:
    if data is None:
        return None
    return Scope(data["kind"], data.get("symbol", ""), data.get("rule", ""), data.get("op", ""),
                 int(data.get("instance", 0)), int(data.get("funcId", 0)))


def run(args: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    out = out or sys.stdout
    where = location(args)
    stores = Stores(where)
    try:
        out.write(f"state: {where.describe()}\n" if args.action in ("list", "show", "drop", "import") else "")
        if args.action == "list":
            return _list(where, stores, args.plugin, out)
        if args.action == "import":
            if args.file == "-":
                counts = _import(stores, sys.stdin)
            else:
                with open(args.file, encoding="utf-8") as fh:
                    counts = _import(stores, fh)
            for plugin, n in counts.items():
                out.write(f"{plugin}: imported {n} key{'s' * (n != 1)}\n")
            return 0
        store = stores.store(args.plugin)
        found = entries(store, args.rule)
        if args.action == "show":
            _show(found, out)
        elif args.action == "export":
            if args.output:
                with open(args.output, "w", encoding="utf-8") as fh:
                    _export(args.plugin, found, fh)
            else:
                _export(args.plugin, found, out)
        else:
            prefixes = {scope.prefix if scope else "" for scope, _, _ in found}
            store.write([((s.prefix if s else "") + k, None) for s, k, _ in found])
            what = f" of rule {args.rule}" if args.rule else ""
            out.write(f"{args.plugin}: dropped {len(found)} key{'s' * (len(found) != 1)}{what} "
                      f"({len(prefixes)} scope{'s' * (len(prefixes) != 1)})\n")
        return 0
    finally:
        stores.close()
