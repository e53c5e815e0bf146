"""eKuiper's sink batching (``batchSize``, ``lingerInterval``), modelled with the flaw it has at 0014e7fab0dd.

``internal/topo/node/batch_op.go`` counts events (rows, with ``sendSingle``) and ends a batch when ``batchSize`` is
reached or the ``lingerInterval`` ticker fires; ``batch_writer_op.go`` writes each item into a converter writer and,
at a batch's end, sends ``writer.Flush()`` on to the sink node and calls ``writer.New()``. The JSON writer
(``internal/converter/json/converter.go FastJsonConverter``) writes ``[``, the items' JSON joined by ``,``, and ``]``
into one ``bytes.Buffer``; ``Flush`` returns ``buffer.Bytes()``, a slice of that buffer, and ``New`` resets the same
buffer. A flushed batch that waits in the sink node's queue (the sink is busy: with ``requireAck`` eKuiper waits for
every ack) is sent with whatever the writer has put in the buffer since, up to the batch's own length.

:class:`GoBuffer` keeps Go's buffer semantics (a reset keeps the array; a write past its capacity moves to a new,
larger array, leaving older views intact); :class:`BatchedSink` drives a sink through the writer and a queue:
``emit`` what the rule emits, ``linger`` for the ticker, ``deliver`` when the sink takes the queued batches.
"""

from __future__ import annotations

from typing import Any, List, Mapping, NamedTuple, Optional, Union

from ..protocol import Control, go_json, setting
from ..runtime.batches import batch_settings
from .channels import SinkChannel
from .host import SinkHandle

__all__ = ["BatchedSink", "Flushed", "GoBuffer", "JsonBatchWriter", "batched"]

SMALL_BUFFER = 64  # bytes.Buffer's smallBufferSize: the first array of a buffer that was never written


class Flushed(NamedTuple):
    """What ``Flush`` hands on: a view of the buffer's array, read only when the sink sends it."""

    array: bytearray
    length: int

    def bytes(self) -> bytes:
        return bytes(self.array[:self.length])


class GoBuffer:
    """A Go ``bytes.Buffer`` as the writer uses it (written, reset, viewed; never read from)."""

    def __init__(self) -> None:
        self.array = bytearray()  # len(array) is the capacity
        self.length = 0

    def reset(self) -> None:
        self.length = 0  # the array stays: the next writes go over the old bytes

    def write(self, data: bytes) -> None:
        end = self.length + len(data)
        if end > len(self.array):  # growSlice: at least twice the capacity (the allocator's rounding left out)
            cap = SMALL_BUFFER if not self.array and end <= SMALL_BUFFER else max(end, 2 * len(self.array))
            grown = bytearray(cap)
            grown[:self.length] = self.array[:self.length]
            self.array = grown
        self.array[self.length:end] = data
        self.length = end

    def view(self) -> Flushed:
        return Flushed(self.array, self.length)


class JsonBatchWriter:
    """``FastJsonConverter``'s ``New``, ``Write`` and ``Flush``."""

    def __init__(self) -> None:
        self.buffer = GoBuffer()
        self.fresh = True
        self.new()

    def new(self) -> None:
        self.buffer.reset()
        self.buffer.write(b"[")
        self.fresh = True

    def write(self, item: Any) -> None:
        if not self.fresh:
            self.buffer.write(b",")
        self.buffer.write(go_json(item))
        self.fresh = False

    def flush(self) -> Flushed:
        self.buffer.write(b"]")
        return self.buffer.view()


class BatchedSink:
    """A sink behind eKuiper's batching. ``emit`` passes what the rule emits (a row, or a list of rows: an event)
    through the batcher and writer; full batches wait in ``queue``; ``deliver`` sends them, each read from the
    writer's buffer at that moment, as eKuiper's sink node does. ``deliver`` after every ``emit`` of one item is a
    sink that keeps up (every batch intact); several ``emit`` calls first are a sink that falls behind. ``send``
    sends a payload as given, like :class:`~ekdsl.host.host.SinkHandle`."""

    def __init__(self, handle: SinkHandle, batch_size: int = 0, send_single: bool = False) -> None:
        self.handle, self.batch_size, self.send_single = handle, batch_size, send_single
        self.writer = JsonBatchWriter()
        self.count = 0  # items written since the last batch ended
        self.queue: List[Flushed] = []
        self.sent: List[bytes] = []  # what the sink received, in order

    @property
    def control(self) -> Control:
        return self.handle.control

    @property
    def channel(self) -> SinkChannel:
        return self.handle.channel

    @property
    def require_ack(self) -> bool:
        return self.handle.require_ack

    @property
    def acks(self) -> List[Optional[str]]:
        return self.handle.acks

    def send(self, payload: Any, ack_timeout: float = 10.0) -> Optional[str]:
        return self.handle.send(payload, ack_timeout)

    def emit(self, *emitted: Any) -> None:
        """The rule emits rows (dicts) or events (lists of rows); each full batch is queued for the sink."""
        for item in emitted:
            event = item if isinstance(item, list) else [item]
            for piece in (event if self.send_single else [event]):
                self.writer.write(piece)
                self.count += 1
                if self.batch_size > 0 and self.count >= self.batch_size:
                    self._end()

    def linger(self) -> None:
        """The ``lingerInterval`` ticker fires: the batch so far, if any, is queued."""
        if self.count > 0:
            self._end()

    def _end(self) -> None:
        self.queue.append(self.writer.flush())
        self.writer.new()
        self.count = 0

    def deliver(self, ack_timeout: float = 10.0) -> List[Optional[str]]:
        """The sink node sends every queued batch, reading its bytes now; the acks (``None`` for ok)."""
        acks: List[Optional[str]] = []
        while self.queue:
            payload = self.queue.pop(0).bytes()
            self.sent.append(payload)
            acks.append(self.handle.send(payload, ack_timeout))
        return acks


def batched(handle: SinkHandle, config: Mapping[str, Any]) -> Union[SinkHandle, BatchedSink]:
    """``handle`` behind eKuiper's batching when the rule action ``config`` turns it on, else ``handle``."""
    if not batch_settings(config):
        return handle
    size = setting(config, "batchSize")[1]
    whole = isinstance(size, (int, float)) and not isinstance(size, bool) and size > 0
    return BatchedSink(handle, int(size) if whole else 0, setting(config, "sendSingle")[1] is True)
