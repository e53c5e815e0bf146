"""The streams and rules a plugin's users keep beside it, created (or replaced) by ``ekdsl deploy``.

The file is YAML (or JSON)::

    streams:                      # CREATE STREAM / CREATE TABLE statements, in order
      - CREATE STREAM demo () WITH (TYPE="pyjson", FORMAT="json")
    rules:                        # rule JSON as POST /rules takes it; "id" is required
      - id: demo_rule
        sql: SELECT * FROM demo
        actions:
          - print: {}

A stream or rule that already exists is replaced (``PUT``), so deploying twice gives the same server.
"""

from __future__ import annotations

import re
from typing import Any, Dict, NamedTuple, Optional, Tuple

from ..errors import DeployError

__all__ = ["Provision", "Rule", "Stream", "load", "rule_problem", "statement"]

_CREATE = re.compile(r"\s*CREATE\s+(STREAM|TABLE)\s+(`[^`\x00-\x1f\x7f]+`|[A-Za-z0-9_]+)\s*(.*)", re.I | re.S)
_ID = re.compile(r"[A-Za-z0-9_-]+")  # matched whole


class Stream(NamedTuple):
    """One ``CREATE STREAM``/``CREATE TABLE`` statement."""

    kind: str  # "stream" | "table"
    name: str
    sql: str
    rest: str  # what follows the name: the bin/kuiper create argument

    @property
    def collection(self) -> str:
        return "/streams" if self.kind == "stream" else "/tables"


class Rule(NamedTuple):
    id: str
    body: Dict[str, Any]


class Provision(NamedTuple):
    path: str
    streams: Tuple[Stream, ...]
    rules: Tuple[Rule, ...]


def _fail(path: str, message: str) -> DeployError:
    return DeployError(f"{message} (see docs/deployment.md, 'Streams and rules')", url=path)


def statement(sql: str) -> Optional[Stream]:
    """A ``CREATE STREAM``/``CREATE TABLE`` statement's kind and name, or ``None`` if it is not one."""
    match = _CREATE.fullmatch(sql)
    if not match:
        return None
    return Stream(match.group(1).lower(), match.group(2).strip("`"), sql.strip(), match.group(3).strip())


def rule_problem(item: Any) -> Optional[str]:
    """Why a rule object is not one eKuiper creates (``None`` when it is): its id, and its sql and actions."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not _ID.fullmatch(item["id"]):
        return "must be a rule object with an 'id' of letters, digits, '_' or '-'"
    if not ("sql" in item or "graph" in item) or ("actions" not in item and "graph" not in item):
        return f"rule '{item['id']}' needs 'sql' and 'actions' (or a 'graph')"
    return None


def _stream(path: str, i: int, item: Any) -> Stream:
    found = statement(item) if isinstance(item, str) else None
    if found is None:
        raise _fail(path, f"streams[{i}] must be a 'CREATE STREAM name (...) WITH (...)' or 'CREATE TABLE' "
                          f"statement, got {item!r}")
    return found


def _rule(path: str, i: int, item: Any) -> Rule:
    problem = rule_problem(item)
    if problem is not None:
        raise _fail(path, f"rules[{i}] {problem}" if problem.startswith("must") else problem)
    return Rule(item["id"], dict(item))


def load(path: str) -> Provision:
    """Read and validate a provisioning file."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise _fail(path, f"cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise _fail(path, f"is not valid YAML/JSON: {getattr(exc, 'problem', None) or exc}{where}") from None
    if not isinstance(data, dict):
        raise _fail(path, "expected a mapping with 'streams' and/or 'rules'")
    unknown = sorted(set(data) - {"streams", "rules"})
    if unknown:
        raise _fail(path, f"unknown key '{unknown[0]}': only 'streams' and 'rules' are read")
    lists = {}
    for key in ("streams", "rules"):
        lists[key] = data.get(key) or []
        if not isinstance(lists[key], list):
            raise _fail(path, f"'{key}' must be a list")
    streams = tuple(_stream(path, i, item) for i, item in enumerate(lists["streams"]))
    rules = tuple(_rule(path, i, item) for i, item in enumerate(lists["rules"]))
    return Provision(path, streams, rules)
