"""`python -m ekdsl dev`: the tour, each mode, the REST server, and one-line failures."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
import zipfile

import pytest

from .conftest import PYSAM, ROOT, WEATHER, wait_for


def dev(*args, stdin=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "ekdsl", "dev", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, input=stdin, timeout=timeout)


def test_tour_of_the_bundled_example():
    proc = dev(PYSAM)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0].startswith("pysam v1.0.0 (python): handshake in ")
    assert out.count('  {"name": "pyjson", "value": 2021}') == 3
    assert "source pyjson: 3 rows in" in proc.stdout
    assert [x for x in out if x.startswith("  ack")] == ["  ack 1: ok", "  ack 2: ok", "  ack 3: ok"]
    assert 'function revert("ekdsl") = "lsdke"' in out
    assert out[-1] == "summary: 3 rows, 3 acks, 1 function calls, 0 errors"


def test_source_mode_with_conf_key_datasource_and_conf():
    proc = dev(WEATHER, "source", "readings", "-n", "4", "--conf-key", "fast", "--datasource", "north",
               "--conf", "sensors=[\"a\"]", "--conf", "noisy=true")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x.split("  meta=")[0]) for x in proc.stdout.splitlines() if x.startswith("  {")]
    assert len(rows) == 4 and {r["sensor"] for r in rows} == {"a"} and rows[0]["station"] == "north"
    assert "source readings: 4 rows in" in proc.stdout


def test_sink_mode_framings(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"sensor":"t1","value":20}\n{"sensor":"t2","value":40}\n{"sensor":"t3","value":50}\n')
    proc = dev(WEATHER, "-v", "sink", "alert", "--input", rows, "--require-ack", "--conf", "threshold=30")
    assert proc.returncode == 0, proc.stderr
    assert "sink alert: 3 rows in 3 messages, 3 acks ok, 0 ack errors" in proc.stdout
    assert "value=40 above 30.0" in proc.stdout  # the plugin's own log, shown live with -v
    proc = dev(WEATHER, "sink", "alert", "--send-single", "--batch", "2", stdin=rows.read_text())
    assert proc.returncode == 0, proc.stderr
    assert "sink alert: 3 rows in 2 messages" in proc.stdout


def test_function_mode():
    proc = dev(WEATHER, "function", "join_all", "-", "a", "1")
    assert proc.returncode == 0, proc.stderr
    assert 'function join_all("-", "a", 1) = "a-1"' in proc.stdout
    proc = dev(WEATHER, "function", "c_to_f", "hot")
    assert proc.returncode == 1
    assert "function c_to_f: validate error: c_to_f: argument 'celsius' expects float, got 'hot'" in proc.stdout


@pytest.fixture
def silent_plugin(tmp_path):
    pkg = tmp_path / "silent"
    pkg.mkdir()
    (pkg / "silent.json").write_text(json.dumps({"version": "1", "language": "python", "executable": "main.py",
                                                 "functions": ["f"]}))
    (pkg / "main.py").write_text("print('thinking about it', flush=True)\nimport time\ntime.sleep(30)\n")
    return pkg


def failure(*args):
    proc = dev(*args)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_failures_are_one_line(tmp_path, silent_plugin):
    assert failure(tmp_path / "missing.zip") == \
        f"ekdsl: error: no such package: {tmp_path / 'missing.zip'} (give a plugin .zip or an exported folder)"
    assert failure(tmp_path / "missing_module.py").startswith("ekdsl: error: cannot load ")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    assert "is not a readable zip file" in failure(broken)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("x.txt", "x")
    assert failure(empty) == ("ekdsl: error: fail to install plugin: missing or invalid json file empty.json, "
                              "found 1 files in total")
    line = failure(silent_plugin, "--init-timeout", "1")
    assert "control handshake error: receive time out after 1 s; its last output: thinking about it" in line
    assert failure(PYSAM, "source", "nope") == \
        "ekdsl: error: plugin 'pysam' declares no source 'nope' (its sources: pyjson)"
    assert failure(PYSAM, "source", "pyjson", "--conf", "period=fast") == \
        "ekdsl: error: pyjson: property 'period' expects float, got 'fast'"
    assert failure(PYSAM, "source", "pyjson", "--conf", "period") == \
        "ekdsl: error: --conf expects KEY=VALUE, got 'period'"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", path, body=json.dumps(body) if not isinstance(body, bytes) else body)
    resp = conn.getresponse()
    return resp.status, resp.read().decode()


def test_serve_mode_rest_api():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ekdsl", "dev", str(PYSAM), "serve", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out: list = []

    def reader():
        for line in proc.stdout:
            out.append(line)

    import threading

    threading.Thread(target=reader, daemon=True).start()
    try:
        assert wait_for(lambda: any("serving eKuiper's plugin test API" in x for x in out), timeout=20)
        source = {"symbolName": "pyjson", "pluginType": "source", "config": {"period": 0.05}}
        assert post(port, "/symbol/start", source) == (200, "ok")
        assert post(port, "/symbol/start", source) == (400, "source symbol pyjson already exists")
        assert wait_for(lambda: sum('{"name": "pyjson", "value": 2021}' in x for x in out) >= 2)
        assert post(port, "/symbol/stop", source) == (200, "ok")
        assert post(port, "/symbol/stop", source) == (400, "Symbol pyjson already close")
        func = {"symbolName": "revert", "pluginType": "func"}
        assert post(port, "/symbol/start", func) == (200, "ok")
        assert wait_for(lambda: any('"evlewt"' in x for x in out))
        assert post(port, "/symbol/stop", func) == (200, "ok")
        sink = {"symbolName": "print", "pluginType": "sink", "config": {"requireAck": True}}
        assert post(port, "/symbol/start", sink) == (200, "ok")
        time.sleep(0.2)  # let it feed at least one row (nothing to wait on: the sink only logs)
        assert post(port, "/symbol/stop", sink) == (200, "ok")
        assert post(port, "/symbol/start", b"{nope")[0] == 400
        status, text = post(port, "/symbol/start", {"symbolName": "x", "pluginType": "source"})
        assert status == 400 and text.startswith("running source x receive error: symbol not found")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        finally:
            proc.kill()


def test_sink_mode_with_a_named_connection_and_a_dynamic_property(tmp_path):
    shared = ROOT / "tests" / "plugins" / "shared.py"
    rows = '{"t": "a"}\n{"t": "b"}\n'
    proc = dev(shared, "sink", "keep", "--connection", f'db1={{"path": "{tmp_path}"}}', "--conf",
               "connectionSelector=db1", "--conf", "table={{.t}}", "--send-single", "--require-ack", stdin=rows)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "sink keep: 2 rows in 2 messages, 2 acks ok, 0 ack errors" in proc.stdout
    assert [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()] == [{"t": "a"}]
    assert (tmp_path / "opened.log").read_text().count("\n") == 1
    proc = dev(shared, "sink", "keep", "--conf", f"path={tmp_path}", "--conf", "table={{.t}}", stdin=rows)
    assert proc.returncode == 1
    assert "message 1: dropped by eKuiper before the sink: fail to calculate props {{.t}}" in proc.stdout
    assert dev(shared, "sink", "keep", "--connection", "db1", stdin=rows).returncode == 2
