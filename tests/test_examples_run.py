"""The bundled examples, exported and launched as eKuiper launches them, every symbol driven."""

from __future__ import annotations

import json
import signal

import yaml

from ekdsl.host import source_config

from .conftest import PYSAM, WEATHER, lines, wait_for


def test_pysam_end_to_end(host, exported):
    h = host(PYSAM)
    sections = yaml.safe_load((exported(PYSAM) / "sources" / "pyjson.yaml").read_text())
    src = h.start_source("pyjson", source_config(sections, datasource="ext2"), rule="rulePort1", op="pyjsonStream")
    assert src.rows(2, timeout=5) == [{"name": "pyjson", "value": 2021}] * 2
    h.stop_source(src)
    snk = h.start_sink("print", {"requireAck": True}, rule="rulePort1", op="print_0")
    assert snk.send(b'[{"name":"pyjson","value":2021}]') is None
    h.stop_sink(snk)
    assert wait_for(lambda: 'receive: [{"name":"pyjson","value":2021}]' in h.process.output)
    assert h.function("revert").exec("pyjson") == (True, "nosjyp")


def test_weather_sinks_and_functions(host, tmp_path):
    h = host(WEATHER)
    out = tmp_path / "archive.jsonl"
    archive = h.start_sink("archive", {"path": str(out), "requireAck": True}, op="archive_0")
    alert = h.start_sink("alert", {"threshold": 25, "requireAck": True}, op="alert_0")
    rows = [{"sensor": "t1", "value": 20.5}, {"sensor": "t2", "value": 31.0}]
    assert archive.send(json.dumps(rows).encode()) is None
    assert alert.send(json.dumps(rows).encode()) is None
    h.stop_sink(archive)
    assert lines(out) == rows
    assert wait_for(lambda: "WARNING [weather sink alert rule=rule1 op=alert_0 instance=0] value=31.0 above 25.0"
                    in h.process.output)
    assert h.function("c_to_f").exec(100) == (True, 212.0)
    assert h.function("spread").exec([1.5, None, 4.0]) == (True, 2.5)
    assert h.function("join_all").exec("/", "a", 2, True) == (True, "a/2/True")


def test_plain_iterable_source(host):
    h = host()
    src = h.start_source("fixed", {"n": 2})
    assert src.rows(2) == [{"k": 0}, {"k": 1}]


def test_sigint_exits_cleanly(host):
    h = host()
    h.process.signal(signal.SIGINT)
    assert h.process.wait(5) == 0
