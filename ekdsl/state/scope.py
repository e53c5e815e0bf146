"""Where a symbol's state lives inside a plugin's store: a :class:`Scope`, computed once from the context.

A store holds one plugin's keys; every key starts with its scope's prefix, each part escaped (``%`` and ``/``)
and followed by ``/``:

- ``source/<symbol>/<rule>/<op>/<instance>/`` and ``sink/...`` the same: one instance of a source or sink;
- ``function/<symbol>/<rule>/<op>/<instance>/<funcId>/``: one call site of a function in one rule;
- ``resend/<symbol>/<rule>/<op>/<instance>/``: the sink runtime's record of a message eKuiper will resend;
- ``shared/``: the plugin as a whole.

So two rules never see each other's state, and a rule's state is found by its parts (``python -m ekdsl state``).
"""

from __future__ import annotations

import re
from typing import NamedTuple, Optional, Tuple

__all__ = ["KINDS", "Scope", "split_key"]

KINDS = ("source", "sink", "function", "resend", "shared")
_PARTS = {"source": 4, "sink": 4, "resend": 4, "function": 5, "shared": 0}  # parts after the kind
_ESCAPED = re.compile(r"%(25|2F)")


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace("/", "%2F")


def _unescape(part: str) -> str:
    return _ESCAPED.sub(lambda m: "%" if m.group(1) == "25" else "/", part)


class Scope(NamedTuple):
    """One scope of a plugin's state: a symbol instance (``kind`` ``source``, ``sink``, ``function`` with its
    ``func_id``, ``resend``), or the whole plugin (``shared``)."""

    kind: str
    symbol: str = ""
    rule: str = ""
    op: str = ""
    instance: int = 0
    func_id: int = 0

    @property
    def prefix(self) -> str:
        """What every key of this scope starts with."""
        if self.kind == "shared":
            return "shared/"
        parts = [self.kind, self.symbol, self.rule, self.op, str(self.instance)]
        if self.kind == "function":
            parts.append(str(self.func_id))
        return "/".join(_escape(p) for p in parts) + "/"

    def describe(self) -> str:
        """``source jsonl_tail rule=r1 op=stream instance=0``, as the plugin's log lines name an instance."""
        if self.kind == "shared":
            return "shared"
        text = f"{self.kind} {self.symbol} rule={self.rule} op={self.op} instance={self.instance}"
        return text + (f" funcId={self.func_id}" if self.kind == "function" else "")


def split_key(full: str) -> Optional[Tuple[Scope, str]]:
    """``(scope, key)`` of a stored key, or ``None`` for a key no scope made."""
    kind, _, rest = full.partition("/")
    count = _PARTS.get(kind)
    if count is None:
        return None
    parts = rest.split("/", count)
    if len(parts) != count + 1 or not parts[-1]:
        return None
    if kind == "shared":
        return Scope(kind), parts[-1]
    symbol, rule, op, *numbers = [_unescape(p) for p in parts[:count]]
    try:
        instance, func_id = int(numbers[0]), int(numbers[1]) if len(numbers) > 1 else 0
    except ValueError:
        return None
    return Scope(kind, symbol, rule, op, instance, func_id), parts[-1]
