"""Runtime pieces without sockets: sink framings, config binding, function replies, control dispatch."""

from __future__ import annotations

import json
import logging
from typing import Any, TypedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ekdsl import ConfigError, Plugin
from ekdsl.introspect import type_info
from ekdsl.protocol import Control, Meta, encode_command, encode_func_request
from ekdsl.runtime.binding import bind_config
from ekdsl.runtime.function import FunctionHandler
from ekdsl.runtime.server import PluginServer
from ekdsl.runtime.sink import shape_items

LOG = logging.getLogger("test")


class Reading(TypedDict):
    t: float


def test_shape_items_framings():
    rows = [{"t": 1}, {"t": 2}]
    event = json.dumps(rows).encode()
    batch = json.dumps([rows[:1], rows[1:]]).encode()
    assert shape_items(event, type_info(dict), "s") == rows
    assert shape_items(batch, type_info(dict), "s") == rows
    assert shape_items(b'{"t":1}', type_info(Reading), "s") == [{"t": 1.0}]
    assert shape_items(event, type_info(list[dict]), "s") == [rows]
    assert shape_items(batch, type_info(list[dict]), "s") == [rows]  # one message: its rows, whatever the framing
    assert shape_items(b'{"t":1}', type_info(list[dict]), "s") == [[{"t": 1}]]
    assert shape_items(b"[]", type_info(list[dict]), "s") == [[]]
    assert shape_items(b"[]", type_info(dict), "s") == []
    assert shape_items(b"x", type_info(bytes), "s") == [b"x"]
    assert shape_items(b"x", None, "s") == ["x"]
    with pytest.raises(ConfigError, match="property 'data.t' expects float"):
        shape_items(b'{"t":"hot"}', type_info(Reading), "s")


@given(st.binary(max_size=200))
def test_shape_items_only_raises_config_error(payload):
    for ann in (dict, list[dict], Any, str, bytes, Reading):
        try:
            shape_items(payload, type_info(ann), "s")
        except ConfigError:
            pass


def _plugin() -> Plugin:
    p = Plugin("unit")

    @p.source
    def src(datasource: str = "dflt", rate: int = 1, deviceName: str = ""):
        yield {}

    @p.function
    def inc(x: int) -> int:
        return x + 1

    @p.function
    def boom(x: Any) -> Any:
        raise ValueError("nope")

    return p


def test_bind_config():
    sym = _plugin().model().get("source", "src")
    ctrl = Control("src", "source", Meta("r", "o"), config={"rate": "5", "devicename": "d1", "datasource": "",
                                                             "format": "json", "retainSize": 0})
    kwargs, _ = bind_config(sym, ctrl, LOG)
    assert kwargs == {"rate": 5, "deviceName": "d1", "datasource": "dflt"}
    ctrl = Control("src", "source", Meta("r", "o"), config={"datasource": "topic"})
    assert bind_config(sym, ctrl, LOG)[0]["datasource"] == "topic"
    with pytest.raises(ConfigError, match="property 'rate' expects int, got 'x'"):
        bind_config(sym, Control("src", "source", Meta(), config={"rate": "x"}), LOG)


def test_function_handler_is_total():
    model = _plugin().model()
    inc = FunctionHandler("unit", model.get("function", "inc"), LOG)
    boom = FunctionHandler("unit", model.get("function", "boom"), LOG)
    ctx = '{"ruleId":"r","opId":"o","instanceId":0,"funcId":0}'
    assert inc.handle(encode_func_request("Exec", [1, ctx])) == b'{"state":true,"result":2}'
    assert boom.handle(encode_func_request("Exec", [1, ctx])) == b'{"state":false,"result":"ValueError: nope"}'
    assert json.loads(inc.handle(b"\x00garbage"))["state"] is False
    assert json.loads(inc.handle(b""))["result"] == "empty function request"


@given(st.binary(max_size=300))
def test_function_handler_never_raises(payload):
    handler = FunctionHandler("unit", _plugin().model().get("function", "inc"), LOG)
    reply = json.loads(handler.handle(payload))
    assert isinstance(reply["state"], bool)


@given(st.binary(max_size=300))
def test_control_dispatch_never_raises(payload):
    server = PluginServer(_plugin().model(), LOG, socket_dir="/nonexistent-ekdsl")
    reply = server.handle(payload)
    assert reply and reply[:1] != b"h"


def test_control_stop_unknown_is_ok():
    server = PluginServer(_plugin().model(), LOG)
    assert server.handle(encode_command("stop", Control("src", "source", Meta("r", "o")))) == b"ok"


def test_run_path_imports_only_what_it_needs():
    """The plugin process loads no yaml, msgpack, pynng (native transport), typing_extensions, asyncio, nor the
    state store (loaded by the first symbol that uses ctx.state)."""
    import subprocess
    import sys

    code = ("import sys; from ekdsl.runtime import main; from ekdsl.plugin import load_target; "
            "load_target(sys.argv[1]).model(docs=False); import ekdsl.transport.native; "
            "print(' '.join(m for m in ('yaml', 'msgpack', 'pynng', 'typing_extensions', 'asyncio', "
            "'ekdsl.docstrings', 'ekdsl.host', 'ekdsl.state', 'sqlite3', 'redis') if m in sys.modules))")
    from .conftest import PYSAM

    out = subprocess.run([sys.executable, "-c", code, str(PYSAM)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_a_function_channel_that_ended_is_served_again_on_the_next_start(tmp_path):
    """A function's channel that ended (its socket failed or closed) is not left dead: the next function start
    serves it again, instead of skipping it as running."""
    server = PluginServer(_plugin().model(), LOG, socket_dir=str(tmp_path))
    try:
        server.start_functions()
        first = server.functions["inc"]
        first.sock.close()  # the channel ends as when its connection fails for good
        assert first.done.wait(5)
        server.start_functions()
        second = server.functions["inc"]
        assert second is not first and not second.done.is_set()
    finally:
        server.stop_all()


def test_keys_ekuiper_acts_on_are_not_called_unknown(caplog):
    """eKuiper decodes ``interval``, ``mergeField``, ... itself (ekdsl.reserved): they reach the plugin but are
    not the plugin's, so no 'unknown properties' warning; a key nobody knows still gets one."""
    sym = _plugin().model().get("source", "src")
    config = {"interval": 1000, "mergeField": "x", "merger": "m", "colAliasMapping": {}}
    with caplog.at_level(logging.WARNING, logger="test"):
        bind_config(sym, Control("src", "source", Meta("r", "o"), config=config), LOG)
    assert "unknown properties" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="test"):
        bind_config(sym, Control("src", "source", Meta("r", "o"), config={"spam": 1}), LOG)
    assert "ignoring unknown properties spam" in caplog.text
