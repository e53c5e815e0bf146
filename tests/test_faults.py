"""User code failing everywhere, hostile input from the host, and host faults: the plugin keeps serving."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ekdsl.host import Emulator
from ekdsl.protocol import Control, Meta, decode_func_reply

from .conftest import LAB, lines, wait_for

# ---- user code failing


def test_source_failing_in_setup_is_surfaced(host):
    h = host()
    src = h.start_source("setup_fail", {})
    assert src.channel.recv_raw(5) == b'"source \'setup_fail\' failed: OSError: cannot open /dev/nothing"'
    assert h.start_source("ticker", {"period": 0.001}, rule="r2").rows(1)  # others unaffected


def test_source_returning_at_once(host):
    h = host()
    src = h.start_source("empty", {})
    assert wait_for(lambda: "source finished after 0 rows" in h.process.output)
    h.stop_source(src)


def test_hanging_source_does_not_block_stop(host, tmp_path):
    h = host()
    src = h.start_source("hang", {"marker": str(tmp_path / "m")})
    t0 = time.monotonic()
    h.stop_source(src)
    assert time.monotonic() - t0 < 3  # answered after a bounded wait, with a warning
    assert wait_for(lambda: "source is still busy" in h.process.output)
    assert h.start_source("ticker", {"period": 0.001}, rule="r2").rows(1)


def test_sink_failing_on_every_row_keeps_serving(host, tmp_path):
    h = host()
    snk = h.start_sink("collect", {"path": str(tmp_path), "requireAck": True})  # a folder: every write fails
    acks = [snk.send(b'{"i":1}') for _ in range(20)]
    assert all(a and a.startswith("IsADirectoryError") for a in acks)
    h.stop_sink(snk)
    assert h.function("add").exec(1) == (True, 11)
    assert h.process.poll() is None


def test_sink_teardown_failure_is_logged(host, tmp_path):
    h = host()
    out = tmp_path / "t.jsonl"
    snk = h.start_sink("teardown_fail", {"path": str(out), "requireAck": True})
    assert snk.send(b'{"a":1}') is None
    h.stop_sink(snk)
    assert wait_for(lambda: "sink teardown failed" in h.process.output)
    assert "RuntimeError: teardown exploded" in h.process.output
    assert h.function("add").exec(1) == (True, 11)


def test_slow_sink_with_acks_loses_nothing(host, tmp_path):
    h = host()
    out = tmp_path / "slow.jsonl"
    snk = h.start_sink("slow_sink", {"path": str(out), "requireAck": True, "sendSingle": True})
    acks = [snk.send(json.dumps({"i": i}).encode()) for i in range(300)]
    assert acks == [None] * 300
    assert lines(out) == [{"i": i} for i in range(300)]  # no loss, no duplicate, in order


# ---- hostile input over the wire

hostile = st.one_of(
    st.binary(max_size=2000),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.floats(allow_nan=False),
                 lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=5), c, max_size=5),
                 max_leaves=20).map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"", b"[" * 100_000, b'{"cmd":"start","arg":"' + b"[" * 50_000 + b'"}',
                     b"\x00" * 64, "é\u2028𝄞".encode(), b'{"cmd":"start","arg":"{}"}',
                     b'{"func":"Exec","arg":[' + b"1," * 200_000 + b'"{}"]}']),
)


@pytest.fixture(scope="module")
def emu():
    with Emulator(str(LAB)) as e:
        yield e


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=hostile)
def test_control_channel_survives_anything(emu, payload):
    reply = emu.host.control.exchange(payload, timeout=10)
    assert reply and reply[:1] != b"h"
    assert emu.exit_code is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=hostile)
def test_function_channel_survives_anything(emu, payload):
    fn = emu.host._open[0] if emu.host._open else emu.function("add")
    state, _ = decode_func_reply(fn.channel.exchange(payload, timeout=10))
    assert state in (True, False)
    assert fn.exec(1) == (True, 11)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=hostile)
def test_sink_survives_anything(emu, tmp_path_factory, payload):
    out = tmp_path_factory.mktemp("s") / "x.jsonl"
    snk = emu.start_sink("collect", {"path": str(out), "requireAck": True}, rule="fuzz")
    try:
        ack = snk.send(payload)
        assert ack is None or isinstance(ack, str)
        assert snk.send(b'{"i":1}') is None  # and it keeps serving
    finally:
        emu.stop(snk)


def test_multi_mib_and_unicode_commands_are_answered(emu):
    label = "é𝄞\u2028<&>" * 100_000  # a multi-MiB command, with what Go escapes
    src = emu.host.start_source("ticker", {"label": label, "period": 0.001}, rule="big")
    assert src.rows(1, timeout=10)[0]["label"] == label
    emu.stop(src)
    nowhere = Control("ticker", "source", Meta("nobody-listens", "o"))
    from ekdsl.protocol import encode_command

    reply = emu.host.control.exchange(encode_command("start", nowhere), timeout=10)
    assert reply.startswith(b"cannot dial ipc://")  # a start eKuiper did not prepare: a clear error


# ---- host faults


def test_plugin_restart_replays_start_commands(exported, sockdir, tmp_path):
    """eKuiper's update: the old process is killed, a new one dials the same control socket and gets the
    remembered start commands again; running rules keep their sockets."""
    from ekdsl.host import Host

    pkg = exported(LAB)
    h = Host("lab", str(pkg / "main.py"), socket_dir=sockdir)
    try:
        h.start()
        src = h.start_source("ticker", {"period": 0.001})
        out = tmp_path / "rows.jsonl"
        snk = h.start_sink("collect", {"path": str(out), "requireAck": True})
        assert src.rows(1) and snk.send(b'{"i":1}') is None
        h.process.kill()  # SIGKILL, as eKuiper's Delete does
        h.start()  # same control channel, new process
        h.control.send_cmd("start", src.control)  # replay
        h.control.send_cmd("start", snk.control)
        assert src.rows(3)  # the host's PULL socket was kept: the new process dials it
        snk.channel.data.close()
        snk.channel.connect()  # the host re-dials the new listener
        assert snk.send(b'{"i":2}') is None
        assert lines(out) == [{"i": 1}, {"i": 2}]
    finally:
        h.close()


def test_emulator_reports_a_killed_plugin(emu_factory=None):
    with Emulator(str(LAB)) as e:
        os.kill(e.host.process.pid, signal.SIGKILL)
        assert wait_for(lambda: e.exit_code is not None)
        assert e.exit_code == -signal.SIGKILL
