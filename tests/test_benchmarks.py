"""The benchmark runs (a seconds-long smoke run; speed is measured by benchmarks/run.py, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.mark.long  # tens of seconds: the long step of .ci/run
def test_benchmark_smoke_run(sdk_python, official_sdk_alone, tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "benchmarks/run.py", "--quick", "--sdk-python", sdk_python,
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1].split() == ["path", "metric", "ekdsl", "ekdsl+orjson", "sdk", "raw", "ekdsl/sdk", "+orjson/sdk"]
    assert any(x.startswith("function Exec, trivial") for x in lines)
    assert any(x.startswith("idle RSS") for x in lines)
    medians = json.loads(out.read_text())["medians"]
    assert set(medians) == {"ekdsl", "ekdsl+orjson", "sdk", "raw"}
    for result in medians.values():
        assert result["source_small"]["items"] > 0 and result["func_echo"]["p99_ms"] > 0
        assert result["handshake_ms"] > 0 and result["idle_rss_kib"] > 0


def _e2e(*args: str, env_url: str = "") -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if k != "EKDSL_EKUIPER_URL"}
    if env_url:
        env["EKDSL_EKUIPER_URL"] = env_url
    return subprocess.run([sys.executable, "benchmarks/ekuiper_e2e.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=env)


def test_e2e_benchmark_help_and_argument_checks():
    """The real-server benchmark needs a server; without one it only explains itself (never measured here)."""
    proc = _e2e("--help")
    assert proc.returncode == 0 and "--seconds" in proc.stdout and "EKDSL_EKUIPER_URL" in proc.stdout
    proc = _e2e()
    assert proc.returncode == 2 and "needs a running eKuiper: pass --url or set EKDSL_EKUIPER_URL" in proc.stderr
    for bad in (["--seconds", "0"], ["--seconds", "x"], ["--runs", "0"], ["--only", "sink,nope"], ["--only", ","],
                ["--baseline", str(ROOT / "docs")]):
        proc = _e2e(*bad, env_url="http://127.0.0.1:9")
        assert proc.returncode == 2 and "usage:" in proc.stderr, (bad, proc.stderr)
    assert "unknown path(s) nope; choose from source, function, sink, sink_ack" in _e2e(
        "--only", "sink,nope", env_url="http://127.0.0.1:9").stderr
    assert "--baseline: no ekdsl package in" in _e2e("--baseline", str(ROOT / "docs"), env_url="http://127.0.0.1:9").stderr


@pytest.mark.long  # tens of seconds: the long step of .ci/run
def test_instances_benchmark_run(tmp_path):
    """A small run of benchmarks/instances.py; its figures keep nng's budget: 1 descriptor a source, 3 a sink."""
    out = tmp_path / "instances.json"
    proc = subprocess.run([sys.executable, "benchmarks/instances.py", "--counts", "0,2", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "per source: threads, fds, KiB" in proc.stdout
    for figures in json.loads(out.read_text()).values():
        idle = figures["0+0"]
        assert figures["2+0"]["fds"] <= idle["fds"] + 2
        assert figures["0+2"]["fds"] <= idle["fds"] + 6
        assert figures["2+2"]["threads"] <= idle["threads"] + 4


def test_hostile_input_benchmark_run():
    """A small run of benchmarks/hostile.py: its cases end with the outcome each limit gives."""
    proc = subprocess.run([sys.executable, "benchmarks/hostile.py", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["case", "seconds", "peak", "RSS", "MiB", "outcome"]
    assert "decompress" in lines[1]
    assert lines[2].rstrip().endswith("[]") and lines[3].rstrip().endswith("67108864")
    assert lines[4].rstrip().endswith(" 1") and lines[5].rstrip().endswith(" 1")


@pytest.mark.long  # tens of seconds: the long step of .ci/run
def test_state_benchmark_run(tmp_path):
    """A quick run of benchmarks/state.py: every store's calls and the source's added CPU are there."""
    out = tmp_path / "state.json"
    proc = subprocess.run([sys.executable, "benchmarks/state.py", "--quick", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "added µs/row" in proc.stdout
    figures = json.loads(out.read_text())
    assert {"SQLite", "SQLite, sync full"} <= set(figures["calls"]) and "no state" in figures["source"]
    assert all(f["put_per_s"] > 0 and f["get_per_s"] > 0 for f in figures["calls"].values())
    assert all(f["rows_per_s"] > 0 for f in figures["source"].values())


def test_dynamic_benchmark_run(tmp_path):
    """A quick run of benchmarks/dynamic.py: every case's CPU per row is there."""
    out = tmp_path / "dynamic.json"
    proc = subprocess.run([sys.executable, "benchmarks/dynamic.py", "--quick", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(out.read_text())
    assert {"plain", "shared connection", "dynamic per event", "dynamic per row (2 templates)"} <= set(figures)
    assert all(v > 0 for v in figures.values())


def test_ray_replicas_benchmark_takes_its_arguments():
    """Its run needs Ray (tests/test_ray_serve.py runs it with -m ray); here it explains itself."""
    proc = subprocess.run([sys.executable, "benchmarks/ray_replicas.py", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--replicas" in proc.stdout and "--burn-ms" in proc.stdout and "--json" in proc.stdout


def test_start_benchmark_run(sdk_python, tmp_path):
    """One start of each kind per plugin (no server: install → running is left out); figures never asserted."""
    import os

    out = tmp_path / "start.json"
    env = {k: v for k, v in os.environ.items() if k != "EKDSL_EKUIPER_URL"}
    proc = subprocess.run([sys.executable, "benchmarks/start.py", "--runs", "1", "--sdk-python", sdk_python,
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1].split() == ["ekdsl", "sdk", "ekdsl/sdk"]
    assert [line[:40].strip() for line in lines[3:]] == [
        "start → handshake, cold bytecode", "start → handshake, warm bytecode", "its CPU ms, cold",
        "its CPU ms, warm", "start → first call answered, cold"]
    local = json.loads(out.read_text())["samples"]["local"]
    assert all(len(v) == 1 and v[0] > 0 for impl in ("ekdsl", "sdk") for v in local[impl].values())
