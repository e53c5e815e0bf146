"""The sans-IO protocol core: golden wire cases in both directions, and fuzzing."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ekdsl.errors import ProtocolError, TransportError
from ekdsl.protocol import (
    Command,
    Control,
    Meta,
    ack_error,
    aggregate_args,
    control_url,
    data_url,
    decode_ack,
    decode_command,
    decode_func_reply,
    decode_func_request,
    decode_source_message,
    encode_command,
    encode_func_reply,
    encode_func_request,
    encode_row,
    error_reply,
    go_json,
    parse_func_meta,
    require_ack,
)

# Exactly as PROTOCOL.md §3.2 shows the Go host's bytes.
SOURCE_START = (
    b'{"cmd":"start","arg":"{\\"symbolName\\":\\"pyjson\\",\\"meta\\":{\\"ruleId\\":\\"rulePort1\\",'
    b'\\"opId\\":\\"pyjsonStream\\",\\"instanceId\\":0},\\"pluginType\\":\\"source\\",\\"config\\":'
    b'{\\"datasource\\":\\"\\",\\"delimiter\\":\\"\\",\\"format\\":\\"json\\",\\"key\\":\\"\\",'
    b'\\"retainSize\\":0,\\"schemaId\\":\\"\\",\\"strictValidation\\":false,\\"timestamp\\":\\"\\",'
    b'\\"timestampFormat\\":\\"\\"}}"}'
)
SINK_START = (
    b'{"cmd":"start","arg":"{\\"symbolName\\":\\"print\\",\\"meta\\":{\\"ruleId\\":\\"rulePort1\\",'
    b'\\"opId\\":\\"print_0\\",\\"instanceId\\":0},\\"pluginType\\":\\"sink\\",\\"config\\":'
    b'{\\"requireAck\\":true}}"}'
)
FUNC_START = (
    b'{"cmd":"start","arg":"{\\"symbolName\\":\\"revert\\",\\"meta\\":{\\"ruleId\\":\\"\\",\\"opId\\":\\"\\",'
    b'\\"instanceId\\":0},\\"pluginType\\":\\"func\\"}"}'
)
SOURCE_CONFIG = {"datasource": "", "delimiter": "", "format": "json", "key": "", "retainSize": 0, "schemaId": "",
                 "strictValidation": False, "timestamp": "", "timestampFormat": ""}

WIRE = [
    (SOURCE_START, Command("start", Control("pyjson", "source", Meta("rulePort1", "pyjsonStream", 0),
                                            config=SOURCE_CONFIG))),
    (SINK_START, Command("start", Control("print", "sink", Meta("rulePort1", "print_0", 0),
                                          config={"requireAck": True}))),
    (FUNC_START, Command("start", Control("revert", "func", Meta()))),
    (FUNC_START.replace(b'"start"', b'"stop"'), Command("stop", Control("revert", "func", Meta()))),
]


@pytest.mark.parametrize(("wire", "command"), WIRE)
def test_commands_both_ways(wire, command):
    assert encode_command(command.cmd, command.control) == wire
    assert decode_command(wire) == command


def test_go_escaping_and_key_order():
    assert go_json({"b": "<a&b>", "a": 1.0, "c": [2.5, "\u2028"]}) == \
        b'{"a":1,"b":"\\u003ca\\u0026b\\u003e","c":[2.5,"\\u2028"]}'
    ctrl = Control("s", "sink", Meta("r", "o", 1), config={"z": 1, "a": {"y": 2, "b": 3}})
    arg = json.loads(encode_command("start", ctrl))["arg"]
    assert arg == ('{"symbolName":"s","meta":{"ruleId":"r","opId":"o","instanceId":1},"pluginType":"sink",'
                   '"config":{"a":{"b":3,"y":2},"z":1}}')


def test_legacy_datasource_keys():
    for key in ("dataSource", "datasource"):
        arg = json.dumps({"symbolName": "s", "pluginType": "source", "meta": {}, key: "topic"})
        assert decode_command(json.dumps({"cmd": "start", "arg": arg}).encode()).control.data_source == "topic"


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"", "empty control message"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (b'{"cmd":"restart","arg":"{}"}', "invalid command received: 'restart'"),
        (b'{"cmd":"start","arg":{}}', "'arg' must be a JSON string"),
        (b'{"cmd":"start","arg":"nope"}', "control 'arg' is not valid JSON"),
        (b'{"cmd":"start","arg":"{\\"pluginType\\":\\"source\\"}"}', "no 'symbolName'"),
        (b'{"cmd":"start","arg":"{\\"symbolName\\":\\"x\\",\\"pluginType\\":\\"lookup\\"}"}',
         "invalid plugin type 'lookup'"),
        (b'{"cmd":"start","arg":"{\\"symbolName\\":\\"x\\",\\"pluginType\\":\\"sink\\",\\"meta\\":'
         b'{\\"instanceId\\":\\"a\\"}}"}', "'meta.instanceId' must be an integer"),
        (b'{"cmd":"start","arg":"{\\"symbolName\\":\\"x\\",\\"pluginType\\":\\"sink\\",\\"config\\":[1]}"}',
         "'config' must be an object"),
    ],
)
def test_malformed_commands(payload, needle):
    with pytest.raises(ProtocolError) as info:
        decode_command(payload)
    assert needle in str(info.value)


@pytest.mark.parametrize("text", ["handshake failed", "h", "", "  ", "ok?", "Traceback"])
def test_error_reply_never_looks_like_a_keepalive(text):
    reply = error_reply(text)
    assert reply and reply[:1] != b"h"
    assert error_reply(text, "source")[:1] != b"h"


def test_an_error_reply_gets_the_kind_rather_than_a_second_error():
    assert error_reply("httppoll: property 'x' expects int", "source") == b"source httppoll: property 'x' expects int"
    assert error_reply("ticks: property 'x' expects int", "source") == b"ticks: property 'x' expects int"
    assert error_reply("handshake failed") == b"error: handshake failed"


def test_source_rows():
    assert encode_row({"name": "pyjson", "value": 2021}) == b'{"message":{"name":"pyjson","value":2021},"meta":null}'
    assert encode_row({"a": 1}, {"topic": "t"}) == b'{"message":{"a":1},"meta":{"topic":"t"}}'
    nan = encode_row({"x": math.nan, "y": [math.inf], "t": dt.datetime(2024, 1, 2, 3, 4, 5)})
    assert json.loads(nan) == {"message": {"x": None, "y": [None], "t": "2024-01-02T03:04:05Z"}, "meta": None}
    with pytest.raises(TypeError):
        encode_row([{"a": 1}])  # type: ignore[arg-type]
    assert decode_source_message(b'{"message":{"a":1}}') == ({"a": 1}, {})
    assert decode_source_message(b'{"error":"x"}') == (None, {})  # the host ingests an empty row
    for bad in (b'"text"', b'[{"a":1}]', b'{"message":[1]}'):
        with pytest.raises(ProtocolError, match="Invalid data format"):
            decode_source_message(bad)


def test_acks():
    assert ack_error("disk full") == b'{"error":"disk full"}'
    assert ack_error("bad \udcff text") == b'{"error":"bad \\\\udcff text"}'  # any text encodes
    assert decode_ack(ack_error("bad \udcff text")) == "bad \\udcff text"
    assert decode_ack(b"{}") is None and decode_ack(b'{"error":""}') is None
    assert decode_ack(b'{"error":"x"}') == "x"


def test_require_ack_matches_like_map_to_struct():
    assert require_ack({"requireAck": True}) and require_ack({"requireack": True}) and require_ack({"REQUIREACK": True})
    assert not require_ack({}) and not require_ack({"requireAck": "true"}) and not require_ack({"requireack": 1})
    assert not require_ack({"requireAck": False, "requireack": True})  # the exact name first, as mapstructure


def test_aggregate_args_are_columns():
    assert aggregate_args([[1, 2, 3], 0.5]) == [[1, 2, 3], [0.5, 0.5, 0.5]]
    assert aggregate_args([0.5, "x"]) == [[0.5], ["x"]]  # no column: a group of one row
    assert aggregate_args([(1, 2), [3, 4]]) == [[1, 2], [3, 4]]
    with pytest.raises(ValueError, match="same length"):
        aggregate_args([[1], [1, 2]])


def test_func_errors_always_encode_and_bytes_go_as_base64():
    assert encode_func_reply(False, "x \ud800") == b'{"state":false,"result":"x \\\\ud800"}'
    assert encode_func_request("Exec", [b"\x00\xff", "ctx"]) == b'{"func":"Exec","arg":["AP8=","ctx"]}'


def test_function_wire():
    ctx = '{"ruleId":"ruleExtP","opId":"2_project","instanceId":0,"funcId":0}'
    req = encode_func_request("Exec", ["pyjson", ctx])
    assert req == b'{"func":"Exec","arg":["pyjson","{\\"ruleId\\":\\"ruleExtP\\",\\"opId\\":\\"2_project\\",' \
                  b'\\"instanceId\\":0,\\"funcId\\":0}"]}'
    assert decode_func_request(req).arg[-1] == ctx
    meta = parse_func_meta(ctx)
    assert (meta.rule_id, meta.op_id, meta.instance_id, meta.func_id) == ("ruleExtP", "2_project", 0, 0)
    assert encode_func_request("IsAggregate", None) == b'{"func":"IsAggregate","arg":null}'
    assert encode_func_reply(True, "nosyp") == b'{"state":true,"result":"nosyp"}'
    assert decode_func_reply(b'{"state":false,"result":"x"}') == (False, "x")
    with pytest.raises(ProtocolError, match="Failed to unmarshal function result"):
        decode_func_reply(b"ok")


def test_urls(monkeypatch):
    monkeypatch.delenv("EKDSL_SOCKET_DIR", raising=False)
    assert control_url("pysam") == "ipc:///tmp/plugin_pysam.ipc"
    assert data_url(Meta("rulePort1", "pyjsonStream", 0)) == "ipc:///tmp/rulePort1_pyjsonStream_0.ipc"
    monkeypatch.setenv("EKDSL_SOCKET_DIR", "/run/x")
    assert control_url("p") == "ipc:///run/x/plugin_p.ipc"
    with pytest.raises(TransportError, match="over the 107-byte limit"):
        data_url(Meta("r" * 100, "op", 0))


# ---- fuzzing

names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@given(st.binary(max_size=300))
def test_decode_command_only_raises_protocol_error(data):
    try:
        decode_command(data)
    except ProtocolError:
        pass


@given(names, st.sampled_from(["source", "sink", "func"]), names, names, st.integers(0, 1000),
       st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=5), st.sampled_from(["start", "stop"]))
def test_command_round_trip(symbol, ptype, rule, op, inst, config, cmd):
    control = Control(symbol, ptype, Meta(rule, op, inst), config=config)
    assert decode_command(encode_command(cmd, control)) == Command(cmd, control)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_row_round_trip(row):
    assert decode_source_message(encode_row(row))[0] == row


@given(json_values)
def test_go_json_parses_back(value):
    assert json.loads(go_json(value)) == value


@given(st.binary(max_size=200))
def test_other_decoders_only_raise_protocol_error(data):
    for decoder in (decode_func_request, decode_func_reply, decode_ack, decode_source_message):
        try:
            decoder(data)
        except ProtocolError:
            pass
