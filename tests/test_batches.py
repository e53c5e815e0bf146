"""Batches as users think of them, and eKuiper's corruption of batches that wait for a busy sink.

The framings are what eKuiper 0014e7fab0dd sent a plugin sink on the real server (rows ``{"d": "d0"}``, ...):
default, ``sendSingle``, ``batchSize: 2`` with and without ``sendSingle``, and a ``COUNTWINDOW(2)``.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Iterator, List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ekdsl import DefinitionError, Plugin, Row
from ekdsl.framing import encode_sink_messages, message_items
from ekdsl.host import Emulator, InProcess
from ekdsl.host.batching import BatchedSink, GoBuffer, JsonBatchWriter
from ekdsl.introspect import data_type_info

from .test_session import events_st

D = [{"d": f"d{i}"} for i in range(7)]

FRAMINGS = {  # name: (rule action options, the payloads of rows d0, d1)
    "default": ({}, [b'[{"d":"d0"}]', b'[{"d":"d1"}]']),
    "sendSingle": ({"sendSingle": True}, [b'{"d":"d0"}', b'{"d":"d1"}']),
    "batchSize": ({"batchSize": 2}, [b'[[{"d":"d0"}],[{"d":"d1"}]]']),
    "batchSize+sendSingle": ({"batchSize": 2, "sendSingle": True}, [b'[{"d":"d0"},{"d":"d1"}]']),
    "window": ({}, [b'[{"d":"d0"},{"d":"d1"}]']),
}
# what each annotation receives, call by call, for every framing: the rows, whatever the framing
PER_ROW = [D[0], D[1]]
EXPECTED = {
    "rows": {name: PER_ROW for name in FRAMINGS},
    "message_rows": {"default": [[D[0]], [D[1]]], "sendSingle": [[D[0]], [D[1]]], "batchSize": [D[:2]],
                     "batchSize+sendSingle": [D[:2]], "window": [D[:2]]},
    "events": {"default": [[[D[0]]], [[D[1]]]], "sendSingle": [[[D[0]]], [[D[1]]]], "batchSize": [[[D[0]], [D[1]]]],
               "batchSize+sendSingle": [[[D[0]], [D[1]]]], "window": [[D[:2]]]},
    "with_meta": {"default": [[Row(D[0], {"event": 0})], [Row(D[1], {"event": 0})]],
                  "sendSingle": [[Row(D[0], {"event": 0})], [Row(D[1], {"event": 0})]],
                  "batchSize": [[Row(D[0], {"event": 0}), Row(D[1], {"event": 1})]],
                  "batchSize+sendSingle": [[Row(D[0], {"event": 0}), Row(D[1], {"event": 1})]],
                  "window": [[Row(D[0], {"event": 0}), Row(D[1], {"event": 0})]]},
}


def _collecting() -> tuple[Plugin, List[Any]]:
    plugin = Plugin("batches")
    calls: List[Any] = []

    @plugin.sink
    def rows(data: dict) -> None:
        calls.append(data)

    @plugin.sink
    def message_rows(data: list[dict]) -> None:
        calls.append(data)

    @plugin.sink
    def events(data: list[list[dict]]) -> None:
        calls.append(data)

    @plugin.sink
    def with_meta(data: list[Row]) -> None:
        calls.append(data)

    @plugin.sink
    def raw(data: bytes) -> None:
        calls.append(data)

    @plugin.sink
    def anything(data: Any) -> None:
        calls.append(data)

    return plugin, calls


@pytest.mark.parametrize("framing", list(FRAMINGS))
@pytest.mark.parametrize("sink", list(EXPECTED))
def test_each_annotation_gets_the_same_rows_from_every_framing(sink, framing):
    plugin, calls = _collecting()
    options, payloads = FRAMINGS[framing]
    with InProcess(plugin) as symbols:
        snk = symbols.sink(sink, {"requireAck": True, **options})
        assert [snk.send(p) for p in payloads] == [None] * len(payloads)
    assert calls == EXPECTED[sink][framing]


@given(events_st, st.booleans(), st.integers(0, 4))
def test_a_list_annotation_gets_every_row_once_with_its_event(events, send_single, batch):
    """Whatever the framing, the messages' rows are the rows emitted, in order; with list[Row] a batch's event
    numbers count its events (each row is one with sendSingle)."""
    emitted = [e if isinstance(e, list) else [e] for e in events]
    flat = [r for e in emitted for r in e]
    payloads = [json.loads(p) for p in encode_sink_messages(events, send_single, batch)]
    as_dicts = [message_items(p, data_type_info(list[dict]), send_single) for p in payloads]
    assert [r for m in as_dicts for r in m] == flat
    as_rows = [message_items(p, data_type_info(list[Row]), send_single) for p in payloads]
    assert [r.data for m in as_rows for r in m] == flat
    units = [[r] for r in flat] if send_single else emitted  # what eKuiper counts toward batchSize
    numbers = [r.meta["event"] for m in as_rows for r in m]
    expected = [n % batch if batch else 0 for n, unit in enumerate(units) for _ in unit]
    assert numbers == expected


def test_list_of_row_is_a_data_annotation_only():
    plugin = Plugin("rowprop")

    @plugin.source
    def src(start: Row) -> Iterator[dict]:
        yield {}

    with pytest.raises(DefinitionError, match="parameter 'start': the annotation Row is not supported"):
        plugin.model()
    good = Plugin("rowsink")

    @good.sink
    def keep(rows: List[Row]) -> None:
        pass

    assert good.model().sinks[0].data_type.describe() == "list of Row"  # type: ignore[union-attr]


def test_rule_options_are_not_findings(make_module):
    """A correctly batched sink has no findings: batchSize, sendSingle, fields, ... are eKuiper's options."""
    path = make_module('''
        from ekdsl import Plugin
        plugin = Plugin("optsink")

        @plugin.sink
        def keep(data: list[dict], table: str = "t") -> None:
            pass
    ''')
    options = {"requireAck": True, "sendSingle": True, "fields": ["d"], "enableCache": True, "bufferLength": 10,
               "concurrency": 1, "omitIfEmpty": True}
    with Emulator(str(path)) as emu:
        snk = emu.start_sink("keep", options)
        assert snk.send([{"d": "d0"}]) is None
        batched = emu.start_sink("keep", {"requireAck": True, "batchSize": 2, "lingerInterval": 500}, op="b")
        assert isinstance(batched, BatchedSink)
        batched.emit(D[0], D[1])
        assert batched.deliver() == [None]
        assert emu.findings == []


# ---- eKuiper's batch writer, modelled: what the real server did to a sink that fell behind


class Recorder:
    """Stands in for the host's sink handle: records what is sent."""

    def __init__(self) -> None:
        self.sent: List[bytes] = []

    def send(self, payload: bytes, ack_timeout: float = 10.0) -> None:
        self.sent.append(payload)


def _batched(**options: Any) -> tuple[BatchedSink, Recorder]:
    rec = Recorder()
    return BatchedSink(rec, **options), rec  # type: ignore[arg-type]


def test_a_sink_that_keeps_up_gets_every_batch_intact():
    snk, rec = _batched(batch_size=2)
    for row in D:
        snk.emit(row)
        snk.deliver()
    snk.linger()
    snk.deliver()
    assert rec.sent == [b'[[{"d":"d0"}],[{"d":"d1"}]]', b'[[{"d":"d2"}],[{"d":"d3"}]]',
                        b'[[{"d":"d4"}],[{"d":"d5"}]]', b'[[{"d":"d6"}]]']


def test_a_sink_that_falls_behind_gets_later_rows_twice_as_on_the_real_server():
    """batchSize 2, a sink taking 0.3 s per acked message, rows 50 ms apart: d0,d1 | d6,d5 | d6,d5."""
    snk, rec = _batched(batch_size=2)
    snk.emit(D[0], D[1])
    snk.deliver()  # the sink was idle: the first batch leaves at once
    snk.emit(*D[2:])  # while it is busy, two batches are flushed and d6 written
    snk.deliver()
    assert rec.sent == [b'[[{"d":"d0"}],[{"d":"d1"}]]', b'[[{"d":"d6"}],[{"d":"d5"}]]',
                        b'[[{"d":"d6"}],[{"d":"d5"}]]']


def test_a_lingered_batch_is_cut_short_as_on_the_real_server():
    """batchSize 2 and lingerInterval 120 ms: the one-event batch the ticker flushed arrived cut, not JSON."""
    snk, rec = _batched(batch_size=2)
    snk.emit(D[0], D[1])
    snk.deliver()
    snk.emit(D[2], D[3])
    snk.emit(D[4])
    snk.linger()
    snk.emit(D[5], D[6])
    snk.deliver()
    assert rec.sent == [b'[[{"d":"d0"}],[{"d":"d1"}]]', b'[[{"d":"d5"}],[{"d":"d6"}]]', b'[[{"d":"d5"}],',
                        b'[[{"d":"d5"}],[{"d":"d6"}]]']


def test_send_single_batches_rows_and_falls_behind_alike():
    snk, rec = _batched(batch_size=2, send_single=True)
    snk.emit([D[0], D[1]])  # one event of two rows: sendSingle splits it
    snk.deliver()
    snk.emit(*D[2:])
    snk.deliver()
    assert rec.sent == [b'[{"d":"d0"},{"d":"d1"}]', b'[{"d":"d6"},{"d":"d5"}]', b'[{"d":"d6"},{"d":"d5"}]']


@given(events_st, st.booleans(), st.integers(1, 4))
def test_a_sink_that_keeps_up_gets_what_the_encoder_gives(events, send_single, batch):
    """The model of eKuiper's writer, never behind (each batch taken before the next item is written), sends
    exactly the framings ekdsl's encoder writes. (With sendSingle one event is several items: emitted at once, a
    batch can end between them, and the next item overwrites it, as in eKuiper.)"""
    snk, rec = _batched(batch_size=batch, send_single=send_single)
    for event in events:
        for item in (event if isinstance(event, list) and send_single else [event]):
            snk.emit(item)
            snk.deliver()
    snk.linger()
    snk.deliver()
    assert rec.sent == list(encode_sink_messages(events, send_single, batch))


def test_a_batch_flushed_before_the_buffer_grew_keeps_its_bytes():
    """Go's buffer moves to a larger array when a write does not fit: older views keep the old one."""
    buf = GoBuffer()
    buf.write(b"x" * 10)
    small = buf.view()
    buf.reset()
    buf.write(b"y" * 100)  # past the first array's 64 bytes: a new array
    assert small.bytes() == b"x" * 10 and buf.view().bytes() == b"y" * 100
    writer = JsonBatchWriter()
    writer.write({"a": 1})
    first = writer.flush()
    writer.new()
    writer.write({"b": 2})
    assert first.bytes() == b'[{"b":2}]'  # same array, same length: the next batch's bytes


# ---- the plugin's side: the warning at start, and a cut batch acked as an error, never delivered in part


def test_the_emulator_shows_the_warning_and_a_cut_batch_is_acked_as_an_error(make_module):
    path = make_module('''
        from ekdsl import Plugin
        plugin = Plugin("behind")

        @plugin.sink
        def keep(data: dict) -> None:
            print("stored", data["d"], flush=True)
    ''')
    with Emulator(str(path)) as emu:
        snk = emu.start_sink("keep", {"requireAck": True, "batchSize": 2, "lingerInterval": 120})
        assert isinstance(snk, BatchedSink)
        snk.emit(D[0], D[1])
        assert snk.deliver() == [None]
        snk.emit(D[2], D[3])
        snk.emit(D[4])
        snk.linger()
        snk.emit(D[5], D[6])
        acks = snk.deliver()
        emu.stop(snk)
        assert acks[0] is None and acks[2] is None
        assert acks[1] is not None and acks[1].startswith("eKuiper cut this batch short (14 bytes, not a JSON array")
        assert "Remove batchSize and lingerInterval" in acks[1] and "COUNTWINDOW" in acks[1]
        output = emu.output
    assert "WARNING" in output and "the rule action sets batchSize=2, lingerInterval=120" in output
    stored = [line.split()[-1] for line in output.splitlines() if line.startswith("stored ")]
    assert stored == ["d0", "d1", "d5", "d6", "d5", "d6"]  # nothing of the cut message


@pytest.mark.parametrize("sink", ["raw", "anything", "message_rows"])
def test_a_cut_batch_never_reaches_any_sink(sink, caplog):
    plugin, calls = _collecting()
    with caplog.at_level(logging.WARNING), InProcess(plugin) as symbols:
        snk = symbols.sink(sink, {"requireAck": True, "batchSize": 2})
        ack = snk.send(b'[[{"d":"d5"}],')
        assert ack is not None and ack.startswith("eKuiper cut this batch short")
        assert snk.send(b'[[{"d":"d5"}],[{"d":"d6"}]]') is None
        text = snk.send(b"a text of sendError")  # not the batch writer's: not checked, the sink decides
    assert (text is None) == (sink != "message_rows")
    assert len(calls) == (2 if sink != "message_rows" else 1)
    assert "the rule action sets batchSize=2" in caplog.text


def test_without_batching_nothing_is_checked_or_warned(caplog):
    plugin, calls = _collecting()
    with caplog.at_level(logging.WARNING), InProcess(plugin) as symbols:
        assert symbols.sink("raw", {"requireAck": True, "batchSize": 0}).send(b'[[{"d":"d5"}],') is None
        csv = symbols.sink("raw", {"requireAck": True, "batchSize": 2, "format": "delimited"}, op="csv")
        assert csv.send(b"d\nd0\nd1") is None  # eKuiper's csv batches cannot be checked; the warning says why
    assert calls == [b'[[{"d":"d5"}],', b"d\nd0\nd1"]
    assert caplog.text.count("the rule action sets batchSize=2") == 1
