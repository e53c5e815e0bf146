"""Sinks over real ipc sockets: every framing eKuiper produces, acks, failures, setup and teardown."""

from __future__ import annotations

import json

import pytest

from ekdsl.host import CommandError
from ekdsl.transport import Timeout

from .conftest import lines, wait_for

ROWS = [{"i": 0, "v": "a"}, {"i": 1, "v": "b"}]
FRAMINGS = {
    "default": [json.dumps(ROWS).encode()],                      # one array per event
    "sendSingle": [json.dumps(r).encode() for r in ROWS],        # one object per row
    "batch+sendSingle": [json.dumps(ROWS).encode()],             # [{...},{...}]
    "batch": [json.dumps([[ROWS[0]], [ROWS[1]]]).encode()],      # [[{...}],[{...}]]
}


@pytest.mark.parametrize("framing", list(FRAMINGS))
def test_dict_sink_gets_one_call_per_row(host, tmp_path, framing):
    h = host()
    out = tmp_path / "rows.jsonl"
    snk = h.start_sink("collect", {"path": str(out), "requireAck": True, "sendSingle": framing == "sendSingle"})
    for payload in FRAMINGS[framing]:
        assert snk.send(payload) is None
    assert lines(out) == ROWS


def test_list_sink_gets_the_rows_of_each_message(host, tmp_path):
    h = host()
    out = tmp_path / "events.jsonl"
    snk = h.start_sink("events", {"path": str(out), "requireAck": True})
    snk.send(FRAMINGS["default"][0])
    snk.send(FRAMINGS["batch"][0])
    snk.send(FRAMINGS["sendSingle"][0])
    assert lines(out) == [ROWS, ROWS, [ROWS[0]]]


def test_bytes_str_any_sinks(host, tmp_path):
    h = host()
    outs = {k: tmp_path / f"{k}.jsonl" for k in ("raw", "text", "anything")}
    sinks = {k: h.start_sink(k, {"path": str(p), "requireAck": True}, op=f"{k}_0") for k, p in outs.items()}
    for snk in sinks.values():
        snk.send(b'[{"a":1}]')
        snk.send(b"plain text error")  # e.g. a rule with sendError: true
    assert lines(outs["raw"]) == [{"len": 9, "head": '[{"a":1}]'}, {"len": 16, "head": "plain text error"}]
    assert lines(outs["text"]) == ['[{"a":1}]', "plain text error"]
    assert lines(outs["anything"]) == [[{"a": 1}], "plain text error"]


def test_raising_sink_acks_error_and_keeps_serving(host, tmp_path):
    h = host()
    out = tmp_path / "rows.jsonl"
    snk = h.start_sink("collect", {"path": str(out), "fail_on": 1, "requireAck": True, "sendSingle": True})
    acks = [snk.send(json.dumps({"i": i}).encode()) for i in range(4)]
    assert acks == [None, "RuntimeError: cannot take row 1", None, None]
    assert lines(out) == [{"i": 0}, {"i": 2}, {"i": 3}]
    assert h.process.output.count("Traceback") == 1
    bad = snk.send(b"not json")
    assert bad == ("collect: property 'data' expects object, got b'not json' (the payload is not JSON; "
                   "annotate the data parameter as bytes or str)")
    assert h.process.output.count("Traceback") == 1  # a payload that does not fit is one line, no traceback


def test_no_acks_without_require_ack(host, tmp_path):
    h = host()
    out = tmp_path / "rows.jsonl"
    snk = h.start_sink("collect", {"path": str(out), "fail_on": 1})
    for i in range(3):
        snk.send(json.dumps([{"i": i}]).encode())
    assert wait_for(lambda: len(lines(out)) == 2)
    with pytest.raises(Timeout):
        snk.channel.recv_ack(timeout=0.5)


def test_generator_sink_setup_teardown_and_recovery(host, tmp_path):
    h = host()
    out = tmp_path / "gen.jsonl"
    snk = h.start_sink("gen_sink", {"path": str(out), "requireAck": True})
    assert snk.send(b'[{"a":1},{"a":2}]') is None
    assert snk.send(b'[{"boom":true}]') == "RuntimeError: boom"
    assert snk.send(b'[{"a":3}]') is None  # a fresh generator: set up again
    h.stop_sink(snk)
    assert lines(out) == ["open", {"a": 1}, {"a": 2}, "close", "open", {"a": 3}, "close"]


def test_async_sink(host, tmp_path):
    h = host()
    out = tmp_path / "a.jsonl"
    snk = h.start_sink("async_sink", {"path": str(out), "requireAck": True})
    snk.send(b'{"x":1}')
    assert lines(out) == [{"x": 1}]


def test_multi_mib_payload(host, tmp_path):
    h = host()
    out = tmp_path / "raw.jsonl"
    snk = h.start_sink("raw", {"path": str(out), "requireAck": True})
    big = json.dumps([{"blob": "x" * (4 << 20)}]).encode()
    assert snk.send(big, ack_timeout=20) is None
    assert lines(out)[0]["len"] == len(big)


def test_missing_required_property(host):
    h = host()
    with pytest.raises(CommandError) as info:
        h.start_sink("collect", {"requireAck": True})
    assert info.value.reply == ("collect: property 'path' expects str, got None (the property is required: "
                                "set it in the rule action's properties)")


def test_stop_then_start_same_sink(host, tmp_path):
    h = host()
    out = tmp_path / "rows.jsonl"
    for _ in range(3):
        snk = h.start_sink("collect", {"path": str(out), "requireAck": True})
        snk.send(b'{"i":5}')
        h.stop_sink(snk)
    assert len(lines(out)) == 3
