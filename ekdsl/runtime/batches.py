"""A sink whose rule batches its messages (``batchSize``, ``lingerInterval``): a warning at start, and a check of
every message, because eKuiper corrupts batches that wait for a busy sink.

eKuiper (checked at 0014e7fab0dd) writes each batch into one buffer, hands the sink ``buffer.Bytes()`` (a view of
that buffer, not a copy) and then resets the same buffer for the next batch (``internal/topo/node/
batch_writer_op.go``; ``internal/converter/json/converter.go FastJsonConverter.Flush/New``, likewise ``delimited/
writer.go`` and ``stack_writer.go``). A batch still queued when the next one is written (the sink is busy: with
``requireAck`` eKuiper waits for each ack) is sent with the later batch's bytes: rows go missing, arrive twice, or
the message is cut short and is not JSON at all. Seen on the real server: rows ``d0..d6`` with ``batchSize: 2`` and a
sink taking 0.3 s per message arrived as ``[[d0],[d1]]``, ``[[d6],[d5]]``, ``[[d6],[d5]]``. Nothing in a message
tells a repeated or shuffled batch from a real one; a cut one is told by not being JSON, and is refused whole.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Mapping, Optional

from ..codec import loads
from ..goconf import go_duration
from ..protocol import setting

__all__ = ["ADVICE", "BatchCheck", "batch_check", "batch_settings"]

ADVICE = ("Remove batchSize and lingerInterval from the rule action; for rows in groups, use a window in the rule's "
          "SQL (GROUP BY COUNTWINDOW(10), or TUMBLINGWINDOW(ss, 1)): each window is one message, never batched")


def batch_settings(config: Mapping[str, Any]) -> Dict[str, Any]:
    """The batching settings a rule action turns on, as eKuiper reads them: ``batchSize`` above 0, and
    ``lingerInterval`` above 0 ms (keys matched as ``MapToStruct`` matches them)."""
    found: Dict[str, Any] = {}
    key, size = setting(config, "batchSize")
    if key is not None and isinstance(size, (int, float)) and not isinstance(size, bool) and size > 0:
        found[key] = size
    key, linger = setting(config, "lingerInterval")
    if key is not None:
        try:
            if go_duration(linger) > 0:
                found[key] = linger
        except ValueError:
            pass  # eKuiper refuses the rule
    return found


def _shown(settings: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in settings.items())


class BatchCheck:
    """Tells a message eKuiper's batch writer cut short (not the JSON array it writes) from a sound one."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)

    def problem(self, payload: bytes) -> str:
        """Why ``payload`` cannot be the batch eKuiper meant to send (``""`` when it can)."""
        if not payload.startswith(b"["):  # not the writer's: an error text of sendError, say
            return ""
        try:
            value = loads(payload)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, list):
            return ""
        return (f"eKuiper cut this batch short ({len(payload)} bytes, not a JSON array, ending {payload[-16:]!r}): "
                f"with {_shown(self.settings)} it overwrites a batch that waits while the sink is busy; nothing of "
                "the message was delivered. " + ADVICE)


def batch_check(config: Mapping[str, Any], log: logging.Logger) -> Optional[BatchCheck]:
    """For a rule action that batches: log the warning and return the check for its JSON messages (``None``
    for another format: eKuiper corrupts those too, but they cannot be checked); ``None`` without batching."""
    settings = batch_settings(config)
    if not settings:
        return None
    log.warning("the rule action sets %s: eKuiper (as of 0014e7fab0dd) reuses one buffer for every batch, so a batch "
                "that waits while this sink is busy (with requireAck eKuiper waits for each ack) arrives holding "
                "later rows: rows go missing or come twice, and a batch cut short is acked as an error. %s",
                _shown(settings), ADVICE)
    fmt = setting(config, "format")[1]
    return BatchCheck(settings) if fmt is None or str(fmt).lower() == "json" else None
