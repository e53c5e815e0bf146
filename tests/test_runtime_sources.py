"""Sources over real ipc sockets, driven as eKuiper drives them."""

from __future__ import annotations

import time

import pytest
import yaml

from ekdsl.errors import ProtocolError
from ekdsl.host import CommandError, source_config
from ekdsl.protocol import decode_source_message

from .conftest import WEATHER, wait_for


def test_rows_datasource_and_always_set_keys(host):
    h = host()
    src = h.start_source("ticker", source_config({"default": {"period": 0.001}}, datasource="topicA"),
                         rule="r1", op="s1")
    rows = src.rows(3)
    assert [r["i"] for r in rows] == [0, 1, 2]
    assert rows[0]["ds"] == "topicA" and rows[0]["rule"] == "r1"
    h.stop_source(src)
    assert "ignoring unknown properties" not in h.process.output  # eKuiper's own keys are tolerated


def test_bad_config_fails_the_start(host):
    h = host()
    with pytest.raises(CommandError) as info:
        h.start_source("ticker", source_config({"default": {"period": "fast"}}))
    assert info.value.reply == "ticker: property 'period' expects float, got 'fast'"
    assert str(info.value).startswith("receive error: ticker: property 'period'")
    with pytest.raises(CommandError, match="property 'count' expects int, got 1.5"):
        h.start_source("ticker", {"count": 1.5})


def test_unknown_symbol_and_type(host):
    h = host()
    with pytest.raises(CommandError) as info:
        h.start_source("nope", {})
    assert info.value.reply.startswith("symbol not found: source 'nope' is not in plugin 'lab' (its sources: "
                                       "ticker, aticker, broken, weird, fixed, ")


def test_case_insensitive_keys_and_unknown_warning(host):
    h = host()
    src = h.start_source("ticker", {"PERIOD": 0.001, "Label": "x", "typo": 1})
    assert src.rows(1)[0]["label"] == "x"
    assert wait_for(lambda: "ignoring unknown properties typo; known: period, count, marker, label"
                    in h.process.output)


@pytest.mark.parametrize("symbol", ["ticker", "aticker"])
def test_stop_runs_finally_within_a_second(host, tmp_path, symbol):
    h = host()
    marker = tmp_path / "closed"
    src = h.start_source(symbol, {"period": 30, "marker": str(marker)})
    assert src.rows(1)[0]["i"] == 0  # now waiting 30 s between rows
    t0 = time.monotonic()
    h.stop_source(src)
    assert wait_for(marker.exists, timeout=1.0)
    assert time.monotonic() - t0 < 1.0


def test_two_rules_on_one_source(host):
    h = host()
    a = h.start_source("ticker", {"period": 0.001, "label": "a"}, rule="ra")
    b = h.start_source("ticker", {"period": 0.001, "label": "b"}, rule="rb")
    assert {r["label"] for r in a.rows(5)} == {"a"}
    assert {r["label"] for r in b.rows(5)} == {"b"}
    h.stop_source(a)
    assert b.rows(3)[0]["label"] == "b"  # the other instance keeps running
    h.stop_source(b)


def test_values_lists_meta_and_bad_items(host):
    h = host()
    src = h.start_source("weird", {})
    first, _ = src.recv()
    assert first == {"x": None, "t": "2024-01-02T00:00:00+00:00", "d": 1.5}
    assert [src.recv()[0], src.recv()[0]] == [{"a": 1}, {"a": 2}]
    assert src.recv() == ({"b": 1}, {"topic": "t"})
    with pytest.raises(ProtocolError, match="Invalid data format"):  # 42 is surfaced as an error on the rule
        src.recv()
    assert src.recv()[0] == {"after": True}  # and the source goes on
    # the log line is written by the plugin's stderr reader thread: wait for it (bounded) rather than race it
    assert wait_for(lambda: "source 'weird' yielded a int: yield a dict" in h.process.output)


def test_failing_source_is_reported_and_process_survives(host):
    h = host()
    src = h.start_source("broken", {"after": 2})
    assert [src.recv()[0], src.recv()[0]] == [{"i": 0}, {"i": 1}]
    raw = src.channel.recv_raw(5.0)
    assert raw == b'"source \'broken\' failed: ValueError: sensor unplugged"'
    with pytest.raises(ProtocolError, match="Invalid data format"):
        decode_source_message(raw)  # how eKuiper records it on the rule
    assert wait_for(lambda: "ValueError: sensor unplugged" in h.process.output)
    assert h.process.output.count("Traceback") == 1
    other = h.start_source("ticker", {"period": 0.001}, rule="r2")
    assert other.rows(2)
    h.stop_source(src)  # stopping a finished source is fine


def test_stop_is_idempotent(host):
    h = host()
    src = h.start_source("ticker", {"period": 0.001})
    src.rows(1)
    h.stop_source(src)
    h._cmd("stop", src.control)
    h._cmd("stop", src.control)


def test_restart_same_instance(host):
    h = host()
    src = h.start_source("ticker", {"period": 0.001, "label": "one"})
    src.rows(1)
    h.stop_source(src)
    again = h.start_source("ticker", {"period": 0.001, "label": "two"})
    assert again.rows(1)[0]["label"] == "two"


def test_weather_conf_key_and_burst(host, exported):
    h = host(WEATHER)
    sections = yaml.safe_load((exported(WEATHER) / "sources" / "readings.yaml").read_text())
    src = h.start_source("readings", source_config(sections, conf_key="fast", datasource="north"))
    rows = src.rows(4)
    assert {r["sensor"] for r in rows} == {"t1", "t2"} and rows[0]["station"] == "north"
    h.stop_source(src)
    one = h.start_source("readings", source_config(sections, conf_key="one"))
    msg, meta = one.recv()
    assert msg["station"] == "station-1" and meta == {"retries": 3, "token": "", "since": ""}


def test_weather_bad_enum_value(host):
    h = host(WEATHER)
    with pytest.raises(CommandError) as info:
        h.start_source("readings", source_config({"default": {"unit": "kelvin"}}))
    assert info.value.reply == ("readings: property 'unit' expects Unit (one of 'celsius', 'fahrenheit'), "
                                "got 'kelvin'")

