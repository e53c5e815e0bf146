"""The benchmark runs (a seconds-long smoke run; speed is measured by benchmarks/run.py, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import ROOT


def test_benchmark_smoke_run(sdk_python, tmp_path):
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
