"""How eKuiper frames a sink's rows (PROTOCOL §5.1), both ways, sans I/O.

A payload is one row (an object), one event (an array of rows, from a window), or a batch (``batchSize``:
an array of either). ``sendSingle`` sends every row of an event on its own. The emulator encodes with
:func:`encode_sink_messages`; the runtime decodes with :func:`sink_rows` (a row annotation) or
:func:`message_items` (a list annotation).
"""

from __future__ import annotations

from typing import Any, Iterator, List, Optional

from .context import Row
from .model import TypeInfo
from .protocol import go_json

__all__ = ["encode_sink_messages", "message_items", "sink_events", "sink_rows"]


def encode_sink_messages(rows: List[Any], send_single: bool = False, batch: int = 0) -> Iterator[bytes]:
    """The payloads eKuiper sends for ``rows`` (each a row, or a list of rows: an event), in Go's JSON."""
    events = [r if isinstance(r, list) else [r] for r in rows]
    if batch <= 0:
        for ev in events:
            if send_single:
                yield from (go_json(r) for r in ev)
            else:
                yield go_json(ev)
        return
    items: List[Any] = [r for ev in events for r in ev] if send_single else events
    for i in range(0, len(items), batch):
        yield go_json(items[i:i + batch])


def sink_rows(value: Any) -> Iterator[Any]:
    """The rows of a decoded payload of any framing, in order."""
    if isinstance(value, list):
        for v in value:
            yield from sink_rows(v)
    else:
        yield value


def sink_events(value: Any, send_single: bool = False) -> List[Any]:
    """The events of a decoded payload: a row is an event of one row; a batch of events gives several.

    With ``send_single`` eKuiper sends (and batches) rows one by one: each row is an event of its own.
    """
    if isinstance(value, dict):
        return [[value]]
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return list(value)
    if send_single and isinstance(value, list):
        return [[v] for v in value]
    return [value]



def message_items(value: Any, t: Optional[TypeInfo], send_single: bool = False) -> List[Any]:
    """What a ``list`` data annotation receives for a decoded payload: the message's rows, flattened from any
    framing; for ``list[Row]`` each as ``Row(row, {"event": n})``; for ``list[list[...]]`` its events."""
    item = t.item.kind if t is not None and t.item is not None else "any"
    if item == "list":
        return sink_events(value, send_single)
    if item == "row":
        return [Row(row, {"event": n}) for n, event in enumerate(sink_events(value, send_single))
                for row in sink_rows(event)]
    return list(sink_rows(value))
