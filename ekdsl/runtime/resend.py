"""A sink's record of a message eKuiper will resend, so that the resend delivers only what failed.

With ``enableCache: true`` in the rule action (and ``requireAck``), eKuiper's sink node takes an ack error as an
I/O error and sends the same message again, every ``resendInterval``, before any later one
(``internal/topo/node/sink_node.go``), until an ack says ok. The items of that message that succeeded would be
delivered again each time. So after an ack error the runner records the message's digest and the items that
succeeded; the next message with that digest gets only the others, and a different message ends the record (eKuiper
gave the old one up). The record is kept in the instance's state (scope ``resend``): a plugin restarted meanwhile,
such as an update while eKuiper resends, still skips what was delivered. Without ``enableCache`` (or with
``resendAlterQueue``, which resends through another sink) nothing is recorded.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, FrozenSet, Mapping, Optional, Set

from ..context import Context
from ..errors import StateError
from ..protocol import setting

__all__ = ["ResendRecord", "resends"]

KEY = "message"


def _flag(config: Mapping[str, Any], name: str) -> bool:
    """A bool property as eKuiper's ``MapToStruct`` matches it (:func:`~ekdsl.protocol.setting`); only ``true``."""
    return setting(config, name)[1] is True


def resends(config: Mapping[str, Any]) -> bool:
    """Whether eKuiper resends this sink's failed messages itself, in order."""
    return _flag(config, "enableCache") and not _flag(config, "resendAlterQueue")


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


class ResendRecord:
    """What a sink instance delivered of the message whose ack was an error (none: nothing to skip)."""

    def __init__(self, ctx: Context, log: logging.Logger) -> None:
        self.ctx, self.log = ctx, log
        self._state: Any = None
        self.digest: Optional[str] = None
        self.done: Set[int] = set()

    @classmethod
    def for_sink(cls, ctx: Context, log: logging.Logger) -> Optional[ResendRecord]:
        """A record when eKuiper resends this sink's failed messages, else ``None``."""
        return cls(ctx, log) if resends(ctx.config) else None

    def _store(self) -> Any:
        if self._state is None:
            from ..state import Scope, state_of

            ctx = self.ctx
            self._state = state_of(ctx, Scope("resend", ctx.symbol, ctx.rule_id, ctx.op_id, ctx.instance_id))
            try:
                saved = self._state.get(KEY)
            except StateError as exc:
                self.log.warning("cannot read the record of a message to be resent (%s); going on without it", exc)
                saved = None
            if isinstance(saved, dict) and isinstance(saved.get("digest"), str):
                self.digest, self.done = saved["digest"], {int(n) for n in saved.get("done", [])}
        return self._state

    def skipped(self, payload: bytes) -> FrozenSet[int]:
        """The items (numbered from 1) of ``payload`` already delivered, if it is the resend of a failed message."""
        self._store()
        if self.digest is None:
            return frozenset()
        if _digest(payload) == self.digest:
            self.log.info("a resend of the message whose ack was an error: items %s were delivered then and are "
                          "skipped", ", ".join(map(str, sorted(self.done))) or "(none)")
            return frozenset(self.done)
        self._save(None, set())  # another message: eKuiper gave the failed one up
        return frozenset()

    def settle(self, payload: bytes, items: int, failed: Set[int], skipped: FrozenSet[int]) -> None:
        """After a message's delivery: remember what succeeded when some of it ``failed``, else forget."""
        if failed and items:
            self._save(_digest(payload), (set(skipped) | set(range(1, items + 1))) - failed)
        elif self.digest is not None:
            self._save(None, set())

    def _save(self, digest: Optional[str], done: Set[int]) -> None:
        self.digest, self.done = digest, done
        try:
            if digest is None:
                self._store().delete(KEY)
            else:
                self._store().put(KEY, {"digest": digest, "done": sorted(done)})
        except StateError as exc:
            self.log.warning("cannot store the record of a message to be resent (%s); a plugin restart before "
                             "the resend delivers the whole message again", exc)
