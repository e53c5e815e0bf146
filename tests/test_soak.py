"""Long runs: continuous source → sink traffic and many stop/start cycles leave the plugin as it was.

The CI version runs 60 s; ``EKDSL_SOAK_SECONDS`` makes it longer, and ``-m soak`` adds the tests that take
minutes (a control channel silent for 3 minutes).
"""

from __future__ import annotations

import json
import os
import time

import pytest

from ekdsl.host import Host

from .conftest import LAB, SOAK_FIGURES, start_stop_cycle, wait_for

SOAK_SECONDS = float(os.environ.get("EKDSL_SOAK_SECONDS", "60"))


def stats(pid: int) -> dict:
    with open(f"/proc/{pid}/status") as fh:
        rss = next(int(x.split()[1]) for x in fh if x.startswith("VmRSS:"))
    return {"rss_kib": rss, "threads": len(os.listdir(f"/proc/{pid}/task")),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


@pytest.fixture
def lab(exported, sockdir):
    pkg = exported(LAB)
    h = Host("lab", str(pkg / "main.py"), socket_dir=sockdir)
    h.start()
    yield h
    h.close()


@pytest.mark.long
@pytest.mark.timeout(SOAK_SECONDS + 120)
def test_soak_source_to_sink(lab, tmp_path):
    """eKuiper's pipeline in miniature: rows from the source are forwarded to the sink with requireAck."""
    seconds = SOAK_SECONDS
    tally = tmp_path / "tally.json"
    pid = lab.process.pid
    src = lab.start_source("ticker", {"period": 0}, rule="soak", op="s")
    snk = lab.start_sink("checker", {"path": str(tally), "requireAck": True, "sendSingle": True}, rule="soak")
    forwarded, max_rss, before = 0, 0, None
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        for _ in range(200):
            raw = src.channel.recv_raw(5.0)
            row = json.loads(raw)["message"]
            assert snk.send(json.dumps(row).encode()) is None
            forwarded += 1
        if before is None and time.monotonic() - t0 > min(5.0, seconds / 4):
            before = stats(pid)  # after warm-up
        max_rss = max(max_rss, stats(pid)["rss_kib"])
    after = stats(pid)
    lab.stop_sink(snk)
    lab.stop_source(src)
    result = json.loads(tally.read_text())
    assert result == {"count": forwarded, "gaps": 0, "last": forwarded - 1}  # nothing lost, duplicated, reordered
    assert after["threads"] == before["threads"] and after["fds"] == before["fds"]
    assert after["rss_kib"] - before["rss_kib"] < 4096, (before, after)
    SOAK_FIGURES.append(
        f"soak {seconds:.0f} s: {forwarded} rows source→sink with acks, losses 0, max RSS {max_rss / 1024:.1f} MiB "
        f"(from {before['rss_kib'] / 1024:.1f} after warm-up), threads {before['threads']}→{after['threads']}, "
        f"fds {before['fds']}→{after['fds']}")


@pytest.mark.long
def test_thousand_stop_start_cycles(lab, tmp_path):
    pid = lab.process.pid
    out = tmp_path / "rows.jsonl"

    def settled() -> bool:  # a stopped instance's thread ends a moment after its stop is answered: left are the
        return stats(pid)["threads"] == 2  # main and control threads (the latter runs once the runtime is loaded)

    start_stop_cycle(lab, out)  # the first start also waits for the runtime, imported after the handshake
    assert wait_for(settled, 10), stats(pid)
    before = stats(pid)
    for _ in range(1000):
        start_stop_cycle(lab, out)
    assert wait_for(settled, 10), (before, stats(pid))
    after = stats(pid)
    assert (after["threads"], after["fds"]) == (before["threads"], before["fds"])
    assert after["rss_kib"] - before["rss_kib"] < 4096, (before, after)
    assert len(out.read_text().splitlines()) == 1001
    SOAK_FIGURES.append(f"1000 stop/start cycles (a source and a sink each): threads {before['threads']}→"
                        f"{after['threads']}, fds {before['fds']}→{after['fds']}, RSS "
                        f"{before['rss_kib'] / 1024:.1f}→{after['rss_kib'] / 1024:.1f} MiB")


@pytest.mark.soak
@pytest.mark.timeout(400)
def test_control_channel_silent_for_minutes(lab):
    time.sleep(180)  # deliberately idle: the keepalive is what is under test
    assert lab.start_source("ticker", {"period": 0.001}).rows(1)
    assert lab.control.stale >= 1  # queued keepalives were answered with the command again
