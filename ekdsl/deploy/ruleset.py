"""Streams, tables and rules for boot: a provisioning file as eKuiper's ruleset, merged into ``init.json``.

At boot (``internal/server/rule_init.go: initRuleset``) eKuiper imports ``<data>/init.json``, then
``<etc>/init.json``, each once per modification time of the file (it leaves ``initialized<mtime>`` beside
it). The format is ``internal/processor/ruleset.go: Ruleset``::

    {"streams": {"<name>": "CREATE STREAM ..."}, "tables": {"<name>": "CREATE TABLE ..."},
     "rules": {"<id>": "<the rule's JSON, as a string>"}}

Every value is a string; a value of another type makes ``json.Unmarshal`` fail and nothing is imported.
Streams and tables share one namespace and are replaced on import; a rule is created or replaced unless the
stored one has a higher ``version``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from ..errors import PackagingError
from ..lint import json_kind
from .provision import Provision

__all__ = ["SECTIONS", "Merge", "Ruleset", "dump", "empty", "fragment", "merge", "parse"]

SECTIONS = ("streams", "tables", "rules")
Ruleset = Dict[str, Dict[str, str]]
_KIND = {"streams": "stream", "tables": "table", "rules": "rule"}


class Merge(NamedTuple):
    """The merged file's content (``None``: nothing to change) and what changed, one line each."""

    content: Optional[Dict[str, Any]]
    changes: Tuple[str, ...]


def empty() -> Ruleset:
    """A ruleset with nothing in it."""
    return {section: {} for section in SECTIONS}


def fragment(provision: Provision) -> Ruleset:
    """``provision``'s streams, tables and rules in the ruleset's shape."""
    out = empty()
    for st in provision.streams:
        section = f"{st.kind}s"
        if st.name in out["streams"] or st.name in out["tables"]:
            raise PackagingError(f"{provision.path} lists the stream or table '{st.name}' twice: eKuiper keeps "
                                 "streams and tables in one namespace; keep one", provision.path)
        out[section][st.name] = st.sql
    for rule in provision.rules:
        if rule.id in out["rules"]:
            raise PackagingError(f"{provision.path} lists rule '{rule.id}' twice: keep one", provision.path)
        out["rules"][rule.id] = json.dumps(rule.body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return out


def _a(value: Any) -> str:
    kind = json_kind(value)
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def parse(data: bytes, where: str) -> Tuple[Ruleset, Dict[str, Any]]:
    """An ``init.json`` as eKuiper's import reads it: its three sections, and the whole document (whose other
    keys eKuiper ignores). What would make eKuiper's import fail is refused, saying where."""
    fix = f"fix or remove {where}"
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise PackagingError(f"{where} is not valid JSON ({exc}): eKuiper would import none of it; {fix}",
                             where) from None
    except RecursionError:
        raise PackagingError(f"{where} is nested too deeply to read: {fix}", where) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise PackagingError(f"{where} is {_a(doc)}, not an object with 'streams', 'tables' and 'rules': "
                             f"eKuiper would import none of it; {fix}", where)
    out = empty()
    for key, value in doc.items():
        section = key.lower()
        if section not in SECTIONS:
            continue
        if key != section:
            raise PackagingError(f"{where} has the key '{key}', which eKuiper reads as '{section}' (Go matches "
                                 f"keys without case): rename it '{section}'", where)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise PackagingError(f"{where}: '{key}' is {_a(value)}, not an object of names: eKuiper would "
                                 f"import none of the file; {fix}", where)
        for name, text in value.items():
            if not isinstance(text, str):
                raise PackagingError(f"{where}: {key}['{name}'] is {_a(text)}, not a string: eKuiper would "
                                     f"import none of the file (a rule is its JSON as a string); {fix}", where)
        out[section] = dict(value)
    return out, doc


def dump(doc: Mapping[str, Any]) -> bytes:
    """The file's bytes: indented, keys sorted, so that the same content gives the same bytes."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _same(section: str, a: str, b: str) -> bool:
    """Two definitions are the same: rules compared as JSON, statements as text."""
    if section != "rules":
        return a.strip() == b.strip()
    try:
        return bool(json.loads(a) == json.loads(b))
    except (ValueError, RecursionError):
        return a == b


def _find(ruleset: Ruleset, section: str, name: str) -> Optional[Tuple[str, str]]:
    """(section, value) of ``name`` in ``ruleset``'s namespace of ``section`` (streams and tables share one)."""
    for sec in (("streams", "tables") if section != "rules" else ("rules",)):
        if name in ruleset[sec]:
            return sec, ruleset[sec][name]
    return None


def _entries(ruleset: Ruleset) -> List[Tuple[str, str, str]]:
    return [(section, name, value) for section in SECTIONS for name, value in sorted(ruleset[section].items())]


def merge(doc: Mapping[str, Any], current: Ruleset, old: Ruleset, new: Ruleset, where: str,
          owner: str, others: Sequence[Tuple[str, Ruleset]] = ()) -> Merge:
    """Merge ``new`` (what ``owner`` provisions now) into the file ``where`` holding ``doc``/``current``.

    ``old`` is what ``owner`` put there before: each of its entries still as it was is replaced or removed.
    Any other entry of the same name that differs is refused, and so is one that differs in an ``others``
    file that eKuiper also imports (``data/init.json``).
    """
    result = {section: dict(current[section]) for section in SECTIONS}
    changes: List[str] = []
    for section, name, value in _entries(old):
        have = _find(result, section, name)
        if have is not None and have[0] == section and _same(section, have[1], value) and \
                _find(new, section, name) is None:
            del result[section][name]
            changes.append(f"removed {_KIND[section]} {name}")
    for section, name, value in _entries(new):
        for other, ruleset in others:
            theirs = _find(ruleset, section, name)
            if theirs is not None and (theirs[0] != section or not _same(section, theirs[1], value)):
                raise PackagingError(
                    f"{other} defines {_KIND[theirs[0]]} '{name}' otherwise, and eKuiper imports it too (before "
                    f"{where}, which would replace it): rename the {_KIND[section]} or remove it there", other)
        have = _find(result, section, name)
        if have is None:
            result[section][name] = value
            changes.append(f"added {_KIND[section]} {name}")
            continue
        if have[0] == section and _same(section, have[1], value):
            continue
        mine = _find(old, section, name)
        if mine is None or mine[0] != have[0] or not _same(have[0], have[1], mine[1]):
            raise PackagingError(
                f"{where} already defines {_KIND[have[0]]} '{name}' otherwise, and not as an earlier layout of "
                f"{owner} left it: rename the {_KIND[section]} in the provisioning file, or remove it from "
                f"{where}", where)
        del result[have[0]][name]
        result[section][name] = value
        changes.append(f"replaced {_KIND[section]} {name}")
    if not changes:
        return Merge(None, ())
    out = dict(doc)
    for section in SECTIONS:
        if result[section] or section in out:
            out[section] = result[section]
    return Merge(out, tuple(changes))
