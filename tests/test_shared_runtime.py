"""Shared connections and dynamic properties in the plugin process, over real sockets under the emulator."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Iterator, List

import pytest

from ekdsl.host import CommandError, Emulator, InProcess, MessageDropped

from .conftest import ROOT, lines, wait_for

SHARED = ROOT / "tests" / "plugins" / "shared.py"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(str(SHARED)) as e:
        yield e


def _count(folder: Path, name: str) -> int:
    path = folder / name
    return len(path.read_text().splitlines()) if path.exists() else 0


def _rule() -> str:
    return "r" + uuid.uuid4().hex[:8]


def test_ten_rules_share_one_client_closed_after_the_last_stops(emu, tmp_path):
    conf = {"path": str(tmp_path), "table": "{{.t}}", "requireAck": True, "sendSingle": True}
    sinks = [emu.start_sink("keep", conf, rule=_rule()) for _ in range(10)]
    for i, snk in enumerate(sinks):
        assert snk.send({"t": f"t{i % 2}", "i": i}) is None
    assert _count(tmp_path, "opened.log") == 1
    assert [r["i"] for r in lines(tmp_path / "t0.jsonl")] == [0, 2, 4, 6, 8]
    for snk in sinks[:9]:
        emu.stop(snk)
    assert _count(tmp_path, "closed.log") == 0
    assert sinks[9].send({"t": "t1", "i": 10}) is None  # the last user still writes through it
    emu.stop(sinks[9])
    assert wait_for(lambda: _count(tmp_path, "closed.log") == 1)
    assert _count(tmp_path, "opened.log") == 1


def test_a_factory_that_raises_fails_only_the_starts_that_need_it(emu, tmp_path):
    ok = emu.start_sink("keep", {"path": str(tmp_path), "requireAck": True}, rule=_rule())
    with pytest.raises(CommandError) as info:
        emu.start_sink("keep", {"path": str(tmp_path), "fail": True}, rule=_rule())
    assert (f"sink 'keep': connection 'folder' (path='{tmp_path}', fail=True, slow=0.0) could not be opened: "
            f"RuntimeError: cannot open {tmp_path}") in str(info.value)
    with pytest.raises(CommandError):
        emu.start_sink("keep_events", {"path": str(tmp_path), "fail": True}, rule=_rule())
    assert ok.send([{"t": 1}]) is None and emu.exit_code is None
    later = emu.start_sink("keep_events", {"path": str(tmp_path), "requireAck": True}, rule=_rule())
    assert later.send([{"t": 2}]) is None
    assert _count(tmp_path, "opened.log") == 1  # the working settings: one client for both symbols
    emu.stop(ok)
    emu.stop(later)


def test_a_source_and_sinks_naming_one_connection_share_its_client(emu, tmp_path):
    emu.create_connection("db1", "keep", {"path": str(tmp_path)})  # the source's confKey 'pooled' names db1
    try:
        src = emu.start_source("follow", conf_key="pooled", rule=_rule())
        row, _ = src.recv()
        assert row is not None and row["path"] == str(tmp_path)
        sinks = [emu.start_sink("keep", {"connectionSelector": "db1", "path": "/elsewhere", "requireAck": True},
                                rule=_rule()) for _ in range(3)]
        assert all(s.send([{"t": 1}]) is None for s in sinks)  # the connection's props win over the action's
        assert lines(tmp_path / "rows.jsonl") == [{"t": 1}] * 3 and _count(tmp_path, "opened.log") == 1
        emu.stop(src)
        for s in sinks:
            emu.stop(s)
        assert wait_for(lambda: _count(tmp_path, "closed.log") == 1)
    finally:
        emu.drop_connection("db1")


def test_a_restarted_rule_keeps_the_client_and_a_restarted_plugin_opens_it_again(tmp_path):
    with Emulator(str(SHARED)) as emu:
        conf = {"path": str(tmp_path), "requireAck": True}
        snk = emu.start_sink("keep", conf)
        # a quick restart: the new start comes before the old run's stop, with other settings of the sink
        snk = emu.restart(snk, late_stop=True, config=dict(conf, table="other"))
        assert snk.send([{"i": 1}]) is None
        assert (_count(tmp_path, "opened.log"), _count(tmp_path, "closed.log")) == (1, 0)
        snk = emu.restart(snk)  # stop, then start: its last user stopped, so it closes and opens again
        assert (_count(tmp_path, "opened.log"), _count(tmp_path, "closed.log")) == (2, 1)
        emu.restart_plugin()  # SIGKILL, then the starts replayed: the new process opens its own
        assert snk.send([{"i": 2}]) is None
        pids = (tmp_path / "opened.log").read_text().split()
        assert len(pids) == 3 and pids[2] != pids[1]
        assert lines(tmp_path / "other.jsonl") == [{"i": 1}, {"i": 2}]


def test_a_broken_client_is_reopened_for_every_rule_that_shares_it(emu, tmp_path):
    conf = {"path": str(tmp_path), "requireAck": True, "sendSingle": True}
    first, second = (emu.start_sink("keep", conf, rule=_rule()) for _ in range(2))
    assert first.send({"broken": True}) is None  # marks it broken, then ctx.reopen() gives a new one
    assert second.send({"i": 2}) is None
    assert (_count(tmp_path, "opened.log"), _count(tmp_path, "closed.log")) == (2, 1)
    assert lines(tmp_path / "rows.jsonl") == [{"broken": True}, {"i": 2}]
    emu.stop(first)
    emu.stop(second)


def test_dynamic_properties_over_sockets_as_ekuiper_delivers_them(emu, tmp_path):
    with pytest.raises(CommandError, match=r"property 'table' expects a data template ekdsl evaluates, got "
                                           r"'{{if \.t}}x{{end}}'"):
        emu.start_sink("keep", {"path": str(tmp_path), "table": "{{if .t}}x{{end}}"}, rule=_rule())
    per_row = emu.start_sink("keep", {"path": str(tmp_path), "table": "{{.t}}", "requireAck": True,
                                      "sendSingle": True, "batchSize": 3}, rule=_rule())
    assert per_row.send([{"t": "a"}, {"t": "b"}, {"t": "a", "n": 2}]) is None
    assert lines(tmp_path / "a.jsonl") == [{"t": "a"}, {"t": "a", "n": 2}]
    assert lines(tmp_path / "b.jsonl") == [{"t": "b"}]
    per_event = emu.start_sink("keep", {"path": str(tmp_path), "table": "{{.t}}", "requireAck": True},
                               rule=_rule())
    with pytest.raises(MessageDropped, match=r"fail to calculate props {{\.t}} through data"):
        per_event.send([{"t": "c"}])  # eKuiper cannot render .t on an event: it never reaches the plugin
    assert not (tmp_path / "c.jsonl").exists()
    emu.stop(per_row)
    emu.stop(per_event)


def test_starts_during_a_slow_opening_wait_for_that_one(emu, tmp_path):
    """eKuiper sends one command at a time: starts overlap an opening only when one gave up waiting for it."""
    gate = tmp_path / "gate"
    conf = {"path": str(tmp_path), "gate": str(gate), "requireAck": True}
    for _ in range(2):  # each waits open_timeout (1 s) and fails; the opening goes on
        with pytest.raises(CommandError, match=r"connection 'gated' .* still opening after 1 s"):
            emu.start_sink("keep_gated", conf, rule=_rule())
    threading.Timer(0.2, gate.touch).start()
    snk = emu.start_sink("keep_gated", conf, rule=_rule())  # joins the same opening, which completes
    assert snk.send([{"i": 1}]) is None
    assert (_count(tmp_path, "opening.log"), _count(tmp_path, "opened.log")) == (1, 1)
    emu.stop(snk)
    assert wait_for(lambda: _count(tmp_path, "closed.log") == 1)


def test_concurrent_starts_open_one_client(tmp_path):
    with InProcess(str(SHARED)) as syms:
        started: List[object] = []

        def start() -> None:
            started.append(syms.sink("keep", {"path": str(tmp_path), "slow": 0.3}, rule=_rule()))

        threads = [threading.Thread(target=start) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(started) == 10 and _count(tmp_path, "opened.log") == 1
        assert syms.connections.open_connections() == [
            ("folder", {"path": str(tmp_path), "fail": False, "slow": 0.3}, 10)]
    assert _count(tmp_path, "closed.log") == 1
