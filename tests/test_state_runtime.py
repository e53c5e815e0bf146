"""ctx.state in the plugin process, over real sockets: resuming after SIGKILL, eKuiper's replayed starts, sink
resends, function call sites, concurrent instances."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ekdsl import Context, Plugin
from ekdsl.host import Emulator
from ekdsl.host.inprocess import MemorySocket
from ekdsl.runtime.source import SourceRunner

from .conftest import lines, wait_for

STATEFUL = Path(__file__).resolve().parent / "plugins" / "stateful.py"


def consecutive(rows: list, start: int) -> bool:
    return [r["n"] for r in rows] == list(range(start, start + len(rows)))


def at_most_one_again(seen: list) -> int:
    """The rows repeated in ``seen`` (n values in arrival order); asserts there is no gap and no disorder."""
    again = 0
    for prev, n in zip(seen, seen[1:]):
        assert n in (prev, prev + 1), f"gap or disorder: {prev} then {n}"
        again += n == prev
    return again


def repeats_across_kills(rows: list) -> int:
    """The rows sent twice in ``rows`` (dicts with ``n`` and the sending ``pid``); asserts that each process sent
    its rows in order and that no row is missing. Rows a killed process left in its connection may arrive among
    the next process's first ones: eKuiper's socket reads every connection, the old one until it is empty."""
    by_pid: dict = {}
    for row in rows:
        by_pid.setdefault(row["pid"], []).append(row["n"])
    for sent in by_pid.values():
        assert sent == sorted(set(sent)), "a process sent rows out of order"
    ns = sorted(row["n"] for row in rows)
    assert set(ns) == set(range(ns[0], ns[-1] + 1)), "a row is missing"
    return len(ns) - len(set(ns))


@pytest.fixture
def emu(tmp_path):
    with Emulator(str(STATEFUL)) as e:
        yield e


def test_a_source_killed_and_restarted_resumes_from_its_cursor(emu):
    """SIGKILL of the plugin, three times, each while it sends rows as fast as it can; the host keeps its socket
    (as a running rule does) and eKuiper's update replays the start: every row arrives, and a row is sent again
    at most once per kill (when the kill falls between its send and the put after it)."""
    src = emu.start_source("numbered", extra={"period": 0})
    rows = src.rows(200)
    for _ in range(3):
        emu.restart_plugin()
        rows += src.rows(300)
        while rows[-1]["pid"] != emu.host.process.pid:  # what the killed process left comes first
            rows += src.rows(100)
    assert len({r["pid"] for r in rows}) == 4
    assert repeats_across_kills(rows) <= 3
    assert emu.state(src).get("next") > max(r["n"] for r in rows)


def test_a_rule_restart_resumes_after_the_last_row_sent(emu):
    """A rule restarted with new settings: the old run's generator is resumed after its last sent row, so the put
    after that yield runs, and the new run starts with the next row; nothing the rule got comes again. (A row
    the old run sent after the host's last read is dropped with eKuiper's closed socket.)"""
    src = emu.start_source("numbered", extra={"period": 0.02})
    last = src.rows(5)[-1]["n"]
    for period in (0.03, 0.02, 0.025):
        src = emu.restart(src, config={**src.control.config, "period": period})
        rows = src.rows(5)
        assert last < rows[0]["n"] <= last + 2 and consecutive(rows, rows[0]["n"])
        last = rows[-1]["n"]


def test_a_stop_right_after_a_send_still_runs_the_code_after_the_yield():
    """The stop arrives while the runner sends a row: the generator still runs up to its next yield (its put of
    the cursor), and what it yields then is not sent."""
    plugin = Plugin("stops")
    saved = []

    @plugin.source
    def counted(ctx: Context):
        n = 0
        while True:
            yield {"n": n}
            n += 1
            saved.append(n)

    ctx = Context(plugin="stops", symbol="counted", kind="source")

    class StopAfterThird(MemorySocket):
        def send(self, data: bytes) -> None:
            super().send(data)
            if self.queue.qsize() == 3:
                ctx.stop_event.set()  # eKuiper's stop, just after the third row went out

    sock = StopAfterThird("memory://x")
    runner = SourceRunner(plugin.model().get("source", "counted"), {}, ctx, sock, ctx.logger)
    runner.start()
    assert runner.done.wait(5)
    assert sock.queue.qsize() == 3 and saved == [1, 2, 3]


@pytest.mark.parametrize("symbol", ["plain", "numbered"])
def test_a_replayed_start_and_the_rules_own_start_deliver_each_row_once(symbol, sockdir, tmp_path):
    """eKuiper after a plugin kill and a rule restart: the new process gets the remembered start (the replay),
    then the rule's own start, the same control, after the first already sent a row. The running instance is
    kept: with state it resumed at its cursor; without, it started from 0 and 0 is not sent again."""
    from ekdsl.host import Host
    from ekdsl.package import export
    from ekdsl.plugin import load_target

    pkg = Path(export(load_target(str(STATEFUL)).model(), str(tmp_path / "pkg")).directory)
    env = {**os.environ, "EKDSL_STATE": str(tmp_path / "state")}
    with Host("stateful", str(pkg / "main.py"), socket_dir=sockdir, env=env, init_timeout=30) as h:
        src = h.start_source(symbol, {"period": 0.002})
        before = [r["n"] for r in src.rows(20)]
        h.process.kill()  # kill -9: the rule keeps its socket, eKuiper still remembers the start
        h.start()
        h.control.send_cmd("start", src.control)  # the replay
        seen = [src.recv(5)[0]["n"]]  # the first instance already sent a row
        h.control.send_cmd("start", src.control)  # the rule's own start: the same settings
        seen += [r["n"] for r in src.rows(40)]
        assert wait_for(lambda: "the running instance goes on" in h.process.output)
    assert at_most_one_again(seen) == 0
    if symbol == "plain":
        assert seen[0] == 0
    else:
        assert seen[0] in (before[-1], before[-1] + 1) or seen[0] > before[-1]


def test_a_sink_gets_only_what_failed_when_ekuiper_resends(emu, tmp_path):
    """With enableCache eKuiper resends a message whose ack was an error, whole and at once; the rows that were
    stored then are not delivered again, also when the plugin was killed in between."""
    out = tmp_path / "rows.jsonl"
    snk = emu.start_sink("store_rows", {"path": str(out), "fail": "2,5", "requireAck": True, "enableCache": True})
    message = b'[{"n":1},{"n":2},{"n":3}]'
    assert snk.send(message) == "row 2 of 3: RuntimeError: row 2 fails once"
    assert snk.send(message) is None  # the resend: only row 2
    assert [r["n"] for r in lines(out)] == [1, 3, 2]
    assert snk.send(message) is None  # a message that merely looks the same after a success: delivered whole
    assert [r["n"] for r in lines(out)] == [1, 3, 2, 1, 2, 3]
    second = b'[{"n":4},{"n":5},{"n":6}]'
    assert snk.send(second) == "row 2 of 3: RuntimeError: row 5 fails once"
    emu.restart_plugin()  # an update while eKuiper resends: the new process knows what was stored
    assert snk.send(second) == "row 2 of 3: RuntimeError: row 5 fails once"  # fails again in the new process
    assert snk.send(second) is None
    assert [r["n"] for r in lines(out)][6:] == [4, 6, 5]
    assert emu.state(snk).items() == []  # the sink's own state is untouched


def test_without_enable_cache_nothing_is_skipped(emu, tmp_path):
    out = tmp_path / "rows.jsonl"
    snk = emu.start_sink("store_rows", {"path": str(out), "fail": "2", "requireAck": True})
    message = b'[{"n":1},{"n":2}]'
    assert snk.send(message) is not None
    assert snk.send(message) is None  # eKuiper does not resend without enableCache: this is a new message
    assert [r["n"] for r in lines(out)] == [1, 1, 2]


def test_function_state_is_per_rule_and_call_site(emu):
    mean = emu.function("running_mean")
    assert [mean.exec(x, rule="r1", func_id=0)[1] for x in (1.0, 3.0)] == [1.0, 2.0]
    assert mean.exec(10.0, rule="r1", func_id=1) == (True, 10.0)  # the same rule's other call site
    assert mean.exec(7.0, rule="r2", func_id=0) == (True, 7.0)  # another rule
    assert mean.exec(5.0, rule="r1", func_id=0) == (True, 3.0)
    assert emu.state(mean, rule="r1", func_id=0).items() == [("count", 3), ("sum", 9.0)]
    hits = emu.function("hits")
    assert [hits.exec(rule=r)[1] for r in ("r1", "r2", "r3")] == [1, 2, 3]
    emu.restart_plugin()
    assert mean.exec(3.0, rule="r1", func_id=0) == (True, 3.0)
    assert hits.exec(rule="r9") == (True, 4) and emu.state().get("hits") == 4


def test_concurrent_instances_keep_their_own_cursors_and_a_shared_count(emu):
    sources = [emu.start_source("numbered", rule=f"r{i}", extra={"period": 0, "shared": True}) for i in range(4)]
    for src in sources:
        assert consecutive(src.rows(60), 0)
    for src in sources:
        emu.stop(src)
    nexts = [emu.state(src).get("next") for src in sources]
    assert all(n >= 60 for n in nexts)
    assert emu.state().get("rows") == sum(nexts)
