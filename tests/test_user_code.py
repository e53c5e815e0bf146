"""User code that raises anything or yields what JSON cannot hold, over real sockets on both transports:
the host always gets its answer and the plugin process stays up."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ekdsl.host import HostError
from ekdsl.protocol import func_context

from .conftest import lines, wait_for

ROUGH = Path(__file__).resolve().parent / "plugins" / "rough.py"
FIELD = {"StreamName": "$$default", "Name": "temp", "HasIndex": False, "SourceIndex": 0, "Index": 0}
EXIT = "SystemExit: 2 (sys.exit() was called; the plugin ignores it and keeps serving)"
RAISED = {  # what the user code raises → the error text the host gets
    "exit": EXIT,
    "interrupt": "KeyboardInterrupt",
    "surrogate": "ValueError: cannot store \\udcff here",
    "unprintable": "Unprintable: <its message could not be read: str() raised RuntimeError>",
}

# ---- sinks


@pytest.mark.parametrize("symbol", ["rough_sink", "async_rough_sink"])
def test_sink_acks_every_message_whatever_the_code_raises(host, tmp_path, symbol):
    h = host(ROUGH)
    out = tmp_path / "rows.jsonl"
    snk = h.start_sink(symbol, {"path": str(out), "requireAck": True})
    for i, (kind, error) in enumerate(RAISED.items()):
        assert snk.send(json.dumps({"raise": kind}).encode()) == error
        assert snk.send(json.dumps({"i": i}).encode()) is None  # and it keeps serving
    assert lines(out) == [{"i": i} for i in range(len(RAISED))]
    assert h.process.poll() is None
    assert h.process.output.count(f"sink failed on message 1: {EXIT}") == 1  # logged, not silent


def test_every_row_of_a_batch_is_attempted_and_the_ack_names_the_failures(host, tmp_path):
    h = host(ROUGH)
    out = tmp_path / "rows.jsonl"
    snk = h.start_sink("rough_sink", {"path": str(out), "requireAck": True})
    assert snk.send(b'[{"i":0},{"i":1,"raise":"runtime"},{"i":2}]') == "row 2 of 3: RuntimeError: plain failure"
    assert lines(out) == [{"i": 0}, {"i": 2}]  # the rows after the failure were written too
    batch = [[{"i": 3}], [{"raise": "exit"}], [7], [{"i": 4}], [{"raise": "interrupt"}]]  # batch framing
    assert snk.send(json.dumps(batch).encode()) == (
        f"3 of 5 rows failed: row 2: {EXIT}; row 3: rough_sink: property 'data' expects object, got 7; "
        "row 5: KeyboardInterrupt")
    assert lines(out) == [{"i": 0}, {"i": 2}, {"i": 3}, {"i": 4}]
    assert snk.send(b'{"i":5}') is None


def test_lower_case_requireack_gets_acks(host, tmp_path):
    """eKuiper matches requireAck in any case (cast.MapToStruct) and then waits for every ack."""
    h = host(ROUGH)
    out = tmp_path / "rows.jsonl"
    snk = h.start_sink("rough_sink", {"path": str(out), "requireack": True})
    assert snk.require_ack  # the emulator waits, as eKuiper does
    assert snk.send(b'{"i":0}') is None
    assert snk.send(b'{"raise":"runtime"}') == "RuntimeError: plain failure"
    assert "ignoring unknown properties" not in h.process.output
    with pytest.raises(HostError, match="'REQUIREACK' expected type 'bool'"):
        h.start_sink("rough_sink", {"path": str(out), "REQUIREACK": "true"}, rule="r2")


# ---- functions


def test_function_answers_every_call_whatever_the_code_raises_or_returns(host):
    h = host(ROUGH)
    f = h.function("rough")
    for kind, error in RAISED.items():
        assert f.exec(kind) == (False, error)
        assert f.exec("ok") == (True, "ok")  # still serving: no 5 s timeout
    assert f.exec("uuid") == (True, "00000000-0000-0000-0000-000000000007")
    assert f.exec("object") == (False, "rough() returned an object at result[\"a\"][0], which JSON cannot hold: "
                                       "return str, numbers, bools, None, and lists and dicts of them")
    assert f.exec("cycle")[1].startswith("rough() returned a list that contains itself (a reference cycle) at "
                                         "result[0]")
    assert f.exec("surrogate_result")[1].startswith(
        "rough() returned a str with a lone surrogate (\\ud800 at index 5) at result")
    assert f.exec("ok") == (True, "ok")
    assert wait_for(lambda: f"function rough failed: {EXIT}" in h.process.output)  # logged, with its traceback
    assert h.process.poll() is None


def test_aggregate_takes_constants_from_their_column(host):
    """eKuiper sends every argument of an aggregate as a per-row list: ewma(temp, 0.5) gets [0.5, 0.5, 0.5]."""
    h = host(ROUGH)
    ewma = h.function("ewma")
    assert ewma.is_aggregate() == (True, True)
    assert ewma.exec([1.0, 2.0, 3.0], 0.5) == (True, 2.25)  # the emulator repeats the literal per row
    ctx = func_context("r", "o")
    assert ewma.channel.call("Exec", [[1.0, 2.0, 3.0], [None, 0.5, 0.5], ctx]) == (True, 2.25)  # first non-null
    assert ewma.channel.call("Exec", [[1.0, 3.0], 0.5, ctx]) == (True, 2.0)  # outside a group: a value
    assert ewma.validate(FIELD, {"Val": 0.3}) == (True, "")  # Validate gets the SQL nodes, as for scalars
    assert ewma.validate(FIELD, {"Val": "fast"}) == (False, "ewma: argument 'alpha' expects float, got 'fast'")
    tags = h.function("tag_count")
    assert tags.exec([1, 2, None]) == (True, {"n": 3})
    assert tags.exec([1, 2], "k") == (True, {"k": 2})
    assert tags.channel.call("Exec", [[1, 2], [None, None], ctx]) == (True, {"n": 2})  # all null: the default


def test_bytes_arguments_are_decoded_only_where_go_sends_bytes(host):
    h = host(ROUGH)
    hexed = h.function("hexed")
    assert hexed.exec(b"\x00\xff") == (True, "00ff")  # a Go []byte: base64 on the wire
    assert hexed.channel.call("Exec", [base64.b64encode(b"\x01").decode(), func_context("r", "o")]) == (True, "01")
    assert hexed.exec("hello world") == (True, b"hello world".hex())  # a SQL string: its text
    assert hexed.validate({"Val": "abcd"}) == (True, "")  # a string literal, valid base64 or not
    assert hexed.validate({"Val": "hi!"}) == (True, "")
    assert hexed.exec("abcd") == (True, b"abcd".hex())  # the literal seen by Validate arrives as text


# ---- sources

BAD_ROWS = {
    "object": 'row["a"][2]["b"] is an object, which JSON cannot hold',
    "surrogate": 'row["text"] is a str with a lone surrogate (\\udc80 at index 1), which JSON cannot hold',
    "cycle": 'row["self"] is a dict that contains itself (a reference cycle), which JSON cannot hold',
    "hugeint": 'row["n"] is an int of about 5000 digits, too long to write, which JSON cannot hold',
    "meta": "meta is a list; Row meta must be a dict",
}


def test_a_row_json_cannot_hold_is_skipped_and_the_source_goes_on(host):
    h = host(ROUGH)
    for n, (kind, text) in enumerate(BAD_ROWS.items()):
        src = h.start_source("rough_source", {"kind": kind}, rule=f"r{n}")
        assert src.recv()[0] == {"i": 0}
        error = json.loads(src.channel.recv_raw(5))  # what eKuiper reports on the rule as a decode error
        assert error.startswith(f"source 'rough_source' skipped a row: {text}")
        assert src.recv()[0] == {"i": 2}
        assert src.recv()[0] == {"uuid": "00000000-0000-0000-0000-000000000001", "path": "/a/b", "color": "red",
                                 "delay": 60.5}  # converted
        h.stop_source(src)
        assert h.process.output.count(f"skipped a row: {text}") == 1  # one line, no traceback
    assert "Traceback" not in h.process.output


@pytest.mark.parametrize("kind", ["exit", "interrupt"])
def test_source_raising_system_exit_or_keyboard_interrupt_is_reported(host, kind):
    h = host(ROUGH)
    for n, symbol in enumerate(["exiting_source", "async_exiting_source"]):
        src = h.start_source(symbol, {"kind": kind}, rule=f"r{n}")
        assert src.recv()[0] == {"i": 0}
        assert json.loads(src.channel.recv_raw(5)) == f"source '{symbol}' failed: {RAISED[kind]}"
    assert h.process.poll() is None
    assert h.function("rough").exec("ok") == (True, "ok")


# ---- the emulator models eKuiper here (no plugin process needed)


class _Recorder:
    """A function channel that records what the emulator would send."""

    def __init__(self, aggregate: bool) -> None:
        self.aggregate, self.calls = aggregate, []

    def call(self, func, arg, timeout=5.0):
        self.calls.append((func, arg))
        return (True, self.aggregate) if func == "IsAggregate" else (True, None)


def test_emulator_sends_aggregate_arguments_as_columns():
    from ekdsl.host import FunctionHandle

    agg = _Recorder(aggregate=True)
    f = FunctionHandle("ewma", agg)
    f.exec([1, 2, 3], 0.3)
    f.exec(7, "k")
    assert [c[0] for c in agg.calls] == ["IsAggregate", "Exec", "Exec"]  # asked once and kept, as eKuiper does
    assert agg.calls[1][1][:-1] == [[1, 2, 3], [0.3, 0.3, 0.3]]
    assert agg.calls[2][1][:-1] == [[7], ["k"]]
    scalar = _Recorder(aggregate=False)
    FunctionHandle("f", scalar).exec([1, 2], 0.3)
    assert scalar.calls[1][1][:-1] == [[1, 2], 0.3]


def test_in_process_models_the_same(tmp_path):
    from ekdsl.host import InProcess

    with InProcess(str(ROUGH)) as symbols:
        assert symbols.function("ewma").exec([1.0, 2.0, 3.0], 0.5) == (True, 2.25)
        snk = symbols.sink("rough_sink", {"path": str(tmp_path / "o.jsonl"), "RequireAck": True})
        assert snk.send({"raise": "exit"}) == EXIT
        assert snk.send({"i": 1}) is None
        with pytest.raises(HostError, match="expected type 'bool'"):
            symbols.sink("rough_sink", {"path": "x", "requireAck": 1})


def test_dev_calls_aggregates_as_ekuiper_does():
    """`ekdsl dev` validates a column as a column (a list literal never reaches Validate) and sends constants
    once per row."""
    import subprocess
    import sys

    from .conftest import ROOT, WEATHER

    def dev(*args):
        return subprocess.run([sys.executable, "-m", "ekdsl", "dev", *map(str, args)], capture_output=True,
                              text=True, cwd=ROOT, timeout=120)

    proc = dev(ROUGH, "function", "ewma", "[1.0, 2.0, 3.0]", "0.5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "function ewma([1.0, 2.0, 3.0], 0.5) = 2.25" in proc.stdout
    tour = dev(WEATHER)
    assert "function spread([1.5, 1.5, 1.5]) = 0.0" in tour.stdout
    assert tour.stdout.splitlines()[-1].endswith(" 0 errors")
