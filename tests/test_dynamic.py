"""Dynamic properties: data templates evaluated per row or event, for every framing eKuiper sends."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from ekdsl import ConfigError, DefinitionError, load_target
from ekdsl.framing import encode_sink_messages
from ekdsl.host import InProcess

from .conftest import ROOT, lines

SHARED = ROOT / "tests" / "plugins" / "shared.py"


@pytest.fixture(scope="module")
def symbols() -> Iterator[InProcess]:
    with InProcess(str(SHARED)) as syms:
        yield syms


def _tables(folder: Path) -> Dict[str, List[Any]]:
    return {p.stem: lines(p) for p in sorted(folder.glob("*.jsonl"))}


A, B, C = {"t": "a", "i": 0}, {"t": "b", "i": 1}, {"t": "c", "i": 2}


@pytest.mark.parametrize(("framing", "table", "expected"), [
    # sendSingle: each row is evaluated, one row per message or a batch of rows
    (dict(send_single=True), "{{.t}}", {"a": [A], "b": [B], "c": [C]}),
    (dict(send_single=True, batch=3), "{{.t}}", {"a": [A], "b": [B], "c": [C]}),
    # otherwise each event (the rows a rule emitted together): its rows all get the event's value
    (dict(), '{{index . 0 "t"}}', {"a": [A, B], "c": [C]}),
    (dict(batch=2), '{{index . 0 "t"}}', {"a": [A, B], "c": [C]}),
    (dict(batch=2), "{{(index . 0).t}}", {"a": [A, B], "c": [C]}),
])
def test_a_row_sink_gets_the_value_of_the_row_or_event_it_came_from(symbols, tmp_path, framing, table, expected):
    events = [[A, B], [C]]
    snk = symbols.sink("keep", {"path": str(tmp_path), "table": table, "requireAck": True,
                                "sendSingle": framing.get("send_single", False)}, rule=f"r{len(table)}")
    for payload in encode_sink_messages(events, **framing):
        assert snk.send(payload) is None
    snk.stop()
    assert _tables(tmp_path) == expected


def test_a_template_ekdsl_cannot_evaluate_fails_the_start_not_a_row(symbols, tmp_path):
    with pytest.raises(ConfigError) as info:
        symbols.sink("keep", {"path": str(tmp_path), "table": "{{.t | lower}}"})
    assert str(info.value).startswith("keep: property 'table' expects a data template ekdsl evaluates, got "
                                      "'{{.t | lower}}' (pipes (|) are not supported; ekdsl evaluates {{.field}}")


def test_a_message_sink_gets_one_value_per_call_and_refuses_events_or_rows_that_disagree(symbols, tmp_path):
    snk = symbols.sink("keep_events", {"path": str(tmp_path), "table": '{{index . 0 "t"}}', "requireAck": True})
    for payload in encode_sink_messages([[A, B], [C]]):  # an event per message: a call, and a value, each
        assert snk.send(payload) is None
    assert _tables(tmp_path) == {"a": [[A, B]], "c": [[C]]}
    (batched,) = encode_sink_messages([[A, B], [C]], batch=2)  # one message, one call: its events disagree
    ack = snk.send(batched)
    assert ack is not None and ack.startswith("property 'table' is 'a' for one event of this message and 'c' for "
                                              "another, but this sink takes one value per call")
    single = symbols.sink("keep_events", {"path": str(tmp_path), "table": "{{.t}}", "requireAck": True,
                                          "sendSingle": True, "batchSize": 2}, rule="r2")
    assert single.send([A, dict(A, i=9)]) is None  # a batch of rows with one value: one call
    ack = single.send([A, B])
    assert ack is not None and ack.startswith("property 'table' is 'a' for one row of this message and 'b' for "
                                              "another, but this sink takes one value per call")
    assert _tables(tmp_path)["a"][-1] == [A, dict(A, i=9)]


def test_values_are_typed_like_the_property(symbols, tmp_path):
    snk = symbols.sink("keep_message", {"path": str(tmp_path), "n": "{{.i}}", "table": "m{{.i}}",
                                        "requireAck": True, "sendSingle": True})
    assert snk.send({"i": 7}) is None
    assert _tables(tmp_path) == {"m7": [{"n": 7, "data": {"i": 7}}]}
    ack = snk.send({"i": "seven"})
    assert ack == "keep_message: property 'n' expects int, got 'seven' (from the template '{{.i}}')"


def test_a_row_the_template_fails_on_is_acked_as_such_and_the_sink_goes_on(symbols, tmp_path):
    snk = symbols.sink("keep", {"path": str(tmp_path), "table": "{{.t}}", "requireAck": True, "sendSingle": True})
    ack = snk.send([A, {"i": 5}, {"t": None}, C])
    assert ack is not None and ack.startswith("2 of 4 rows failed: row 2: property 'table': template '{{.t}}': .t: "
                                              "the row has no field 't' (its fields: i); row 3: property 'table': ")
    assert ".t is null" in ack
    assert snk.send(B) is None
    assert _tables(tmp_path) == {"a": [A], "b": [B], "c": [C]}


def test_a_template_written_for_rows_on_events_says_how_to_fix_it(symbols, tmp_path):
    snk = symbols.sink("keep", {"path": str(tmp_path), "table": "{{.t}}", "requireAck": True})
    ack = snk.send([A])
    assert ack is not None and 'write {{index . 0 "t"}} for the first row\'s, or set sendSingle: true' in ack


def test_a_payload_that_is_not_json_fails_each_item(symbols, tmp_path):
    snk = symbols.sink("keep_message", {"path": str(tmp_path), "table": "{{.t}}", "requireAck": True})
    assert snk.send(b"plain text") == ("the message is not JSON (format or dataTemplate?), so dynamic properties "
                                       "(table) cannot be evaluated")


def test_constants_and_defaults_need_no_evaluation(symbols, tmp_path):
    snk = symbols.sink("keep", {"path": str(tmp_path), "table": "fixed", "requireAck": True})
    assert snk.send([A, B]) is None
    snk = symbols.sink("keep", {"path": str(tmp_path), "requireAck": True}, rule="r2")
    assert snk.send([C]) is None
    assert _tables(tmp_path) == {"fixed": [A, B], "rows": [C]}


def test_a_template_in_a_property_that_is_not_dynamic_is_reported(symbols, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        symbols.sink("keep", {"path": str(tmp_path), "slow": 0, "table": "x", "fail": False, "note": "{{.t}}"})
    assert "property 'note' holds a data template ({{.t}}): eKuiper evaluates it for each message" in caplog.text


def test_a_source_renders_its_own_template(symbols):
    assert symbols.source("pages").rows(2) == [{"url": "http://example.invalid/items?after=0"},
                                               {"url": "http://example.invalid/items?after=10"}]
    with pytest.raises(ConfigError, match="expects a data template, got '{{if .x}}'"):
        symbols.source("pages", {"url": "{{if .x}}"})


def _problems(make_module, body: str) -> str:
    source = ("from typing import Annotated, Iterator, List\nfrom ekdsl import Param, Plugin\n"
              "plugin = Plugin('dyn')\n" + body)
    with pytest.raises(DefinitionError) as info:
        load_target(str(make_module(source))).model()
    return str(info.value)


@pytest.mark.parametrize(("body", "fragment"), [
    ("@plugin.source\ndef s(t: Annotated[str, Param(dynamic=True)] = '') -> Iterator[dict]:\n    yield {}\n",
     "only a sink's properties are evaluated per row"),
    ("@plugin.sink\ndef s(t: Annotated[str, Param(dynamic=True)] = '') -> Iterator[None]:\n    row = yield\n",
     "a generator sink receives its properties once, at setup"),
    ("@plugin.sink\ndef s(row: dict, t: Annotated[List[str], Param(dynamic=True)] = []) -> None:\n    pass\n",
     "a template gives text, which cannot become list of str"),
    ("@plugin.sink\ndef s(row: dict, t: Annotated[str, Param(dynamic=True)] = '{{lower .t}}') -> None:\n    pass\n",
     "has a default template that ekdsl refuses"),
])
def test_a_dynamic_property_that_cannot_work_is_refused(make_module, body, fragment):
    assert fragment in _problems(make_module, body)


def test_a_default_template_is_evaluated_per_row(make_module, tmp_path):
    path = make_module(f'''
        import json
        from typing import Annotated
        from ekdsl import Param, Plugin
        plugin = Plugin("dyndefault")
        @plugin.sink
        def keep(row: dict, n: Annotated[int, Param(dynamic=True)] = "{{{{.n}}}}") -> None:
            with open({str(tmp_path / "out.jsonl")!r}, "a") as fh:
                fh.write(json.dumps(n) + "\\n")
    ''')
    with InProcess(str(path)) as syms:
        assert syms.sink("keep", {"requireAck": True, "sendSingle": True}).send([{"n": 1}, {"n": "2"}]) is None
    assert lines(tmp_path / "out.jsonl") == [1, 2]
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0]) == 1
