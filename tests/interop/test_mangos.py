"""A real ekdsl plugin against eKuiper's own socket library: mangos v3, with eKuiper's socket options.

``main.go`` plays eKuiper's side of every channel; these tests drive it against the exported plugin,
launched as eKuiper launches it, on both plugin transports. Without ``go`` they skip.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Iterator

import pytest

from ekdsl.protocol import Control, Meta, encode_command, encode_func_reply

from ..conftest import lines, shared, wait_for
from ..test_transport import squat
from .harness import GO, EkHost, Ekuiper, build, print_options

PLUGIN = Path(__file__).resolve().parent / "ekplug.py"
MIB = 1 << 20

if GO is None:
    pytest.skip("go is not on PATH: the mangos interop tests need it", allow_module_level=True)

# The options eKuiper sets on each of its sockets, from internal/plugin/portable/runtime/connection.go
# (eKuiper 0014e7fab0dd); durations in ms. conf.Config.Portable.RecvTimeout/SendTimeout default to 5 s.
#   CreateControlChannel:  mangos.OptionRecvDeadline: 1 * time.Hour, mangos.OptionMaxRecvSize: 0
#   CreateSourceChannel:   mangos.OptionRecvDeadline: conf.Config.Portable.RecvTimeout, mangos.OptionMaxRecvSize: 0
#   CreateSinkChannel:     mangos.OptionSendDeadline: conf.Config.Portable.SendTimeout, mangos.OptionMaxRecvSize: 0,
#                          sock.DialOptions(url, dialOptions)
#   dialOptions:           mangos.OptionDialAsynch: false, mangos.OptionMaxReconnectTime: 5 * time.Second,
#                          mangos.OptionReconnectTime: 100 * time.Millisecond
#   CreateSinkAckChannel:  mangos.OptionRecvDeadline: 1000 * time.Millisecond, mangos.OptionMaxRecvSize: 0
#   CreateFunctionChannel: mangos.OptionRecvDeadline: conf.Config.Portable.RecvTimeout,
#                          mangos.OptionSendDeadline: conf.Config.Portable.SendTimeout,
#                          mangos.OptionRetryTime: 0, mangos.OptionMaxRecvSize: 0
#                          (REP has no RETRY-TIME: setSockOptions ignores the ErrBadOption)
EKUIPER_OPTIONS = {
    "control": {"socket": "rep", "role": "listen", "ignored": [],
                "options": {"RECV-DEADLINE": 3_600_000, "MAX-RCV-SIZE": 0}},
    "source": {"socket": "pull", "role": "listen", "ignored": [],
               "options": {"RECV-DEADLINE": 5000, "MAX-RCV-SIZE": 0}},
    "sink": {"socket": "push", "role": "dial", "ignored": [],
             "options": {"SEND-DEADLINE": 5000, "MAX-RCV-SIZE": 0},
             "dial": {"DIAL-ASYNCH": False, "MAX-RECONNECT-TIME": 5000, "RECONNECT-TIME": 100}},
    "ack": {"socket": "pull", "role": "listen", "ignored": [],
            "options": {"RECV-DEADLINE": 1000, "MAX-RCV-SIZE": 0}},
    "function": {"socket": "rep", "role": "listen", "ignored": ["RETRY-TIME"],
                 "options": {"RECV-DEADLINE": 5000, "SEND-DEADLINE": 5000, "MAX-RCV-SIZE": 0}},
}


@pytest.fixture(scope="session")
def ekhost_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with shared(tmp_path_factory, "ekhost") as path:  # built once per run, whichever worker asks first
        exe = path / "ekhost"
        return exe if exe.exists() else build(path)


@pytest.fixture
def ekuiper(ekhost_exe: Path, exported: Callable[[Path], Path], sockdir: str, transport: str) -> Iterator[Ekuiper]:
    host = EkHost(ekhost_exe, sockdir)
    ek = Ekuiper(host, exported(PLUGIN), sockdir, transport)
    try:
        yield ek
    finally:
        ek.kill()
        host.close()
        if ek.process is not None:  # shown by pytest when the test failed
            print(ek.process.output)


def test_harness_sets_ekuipers_socket_options(ekhost_exe):
    got = print_options(ekhost_exe)
    for entry in got.values():
        entry["ignored"] = entry["ignored"] or []
    assert got == EKUIPER_OPTIONS


def test_handshake_source_rows_and_stop(ekuiper):
    ekuiper.launch()
    small = ekuiper.start_source("counter", {"period": 0.001})
    assert [r["i"] for r in ekuiper.rows(small, 20)] == list(range(20))
    big = ekuiper.start_source("counter", {"period": 0.001, "pad": 3 * MIB}, op="s2")
    rows = ekuiper.rows(big, 2)
    assert [r["i"] for r in rows] == [0, 1] and all(len(r["pad"]) == 3 * MIB for r in rows)
    ekuiper.stop_source(small)
    ekuiper.stop_source(big)
    assert ekuiper.command("stop", small) == "ok"  # stop is idempotent
    assert ekuiper.command("start", Control("nothing", "source", Meta("r9", "s9"))).startswith("symbol not found")


def test_sink_rows_and_acks(ekuiper, tmp_path):
    ekuiper.launch()
    out = tmp_path / "sink.jsonl"
    acked = ekuiper.start_sink("record", {"path": str(out), "requireAck": True, "fail": "bad"})
    for i in range(10):
        assert ekuiper.send(acked, b'{"i":%d}' % i) is None
    assert "refused a payload with 'bad'" in (ekuiper.send(acked, b'{"bad":1}') or "")
    assert ekuiper.send(acked, size=6 * MIB) is None
    plain = ekuiper.start_sink("record", {"path": str(tmp_path / "plain.jsonl")}, op="k_1")
    for i in range(5):
        ekuiper.send(plain, b'{"j":%d}' % i)
    ekuiper.stop_sink(acked)
    got = lines(out)
    assert [x["head"] for x in got[:10]] == [f'{{"i":{i}}}' for i in range(10)]
    assert got[10]["len"] == 6 * MIB and len(got) == 11
    # without acks, what mangos still queues when its socket closes is lost: wait for the rows, then stop
    assert wait_for(lambda: len(lines(tmp_path / "plain.jsonl")) == 5)
    ekuiper.stop_sink(plain)
    assert [x["head"] for x in lines(tmp_path / "plain.jsonl")] == [f'{{"j":{i}}}' for i in range(5)]


def test_function_channel(ekuiper):
    ekuiper.launch()
    ekuiper.function("add")
    assert ekuiper.call("add", "Validate", [{"Val": 1}]) == (True, "")
    state, error = ekuiper.call("add", "Validate", [])
    assert not state and "add() takes 1 to 2 arguments, got 0" in error
    assert ekuiper.call("add", "IsAggregate", None) == (True, False)
    assert ekuiper.exec("add", 1, 2) == (True, 3)
    assert ekuiper.exec("add", 5) == (True, 15)
    ekuiper.function("total")
    assert ekuiper.call("total", "IsAggregate", None) == (True, True)
    assert ekuiper.exec("total", [1.5, 2.5]) == (True, 4.0)
    ekuiper.function("echo")
    big = "é" * (2 * MIB)  # 4 MiB of UTF-8 each way
    answer = ekuiper.host.ok("exchange", "function", "echo",
                             data=json.dumps({"func": "Exec", "arg": [big, "{}"]}).encode())
    expected = encode_func_reply(True, big)
    assert answer["reply"]["len"] == len(expected)
    assert answer["reply"]["sha256"] == hashlib.sha256(expected).hexdigest()
    assert ekuiper.exec("add", 2, 2) == (True, 4)


def test_plugin_restarted_on_the_same_control_socket(ekuiper):
    """eKuiper keeps its control socket, starts a new process, and replays its start commands."""
    ekuiper.launch()
    src = ekuiper.start_source("counter", {"period": 0.001})
    ekuiper.function("add")
    assert ekuiper.exec("add", 1, 1) == (True, 2)
    ekuiper.rows(src, 3)
    ekuiper.kill()
    ekuiper.launch()
    assert ekuiper.command("start", src) == "ok"
    assert ekuiper.command("start", Control("add", "func", Meta())) == "ok"
    rows = ekuiper.rows(src, 50)
    assert 0 in [r["i"] for r in rows]  # the new process's rows arrive (old ones may precede them)
    assert ekuiper.exec("add", 2, 3) == (True, 5)
    assert ekuiper.exec("add", 4, 3) == (True, 7)
    ekuiper.stop_source(src)


def test_host_sockets_closed_and_reopened(ekuiper, tmp_path):
    """A source or function socket closed and listened again at the same path: the plugin reconnects, answers
    line up. (The control socket is another matter: test_control_socket_reopened_means_a_new_ekuiper.)"""
    ekuiper.launch()
    src = ekuiper.start_source("counter", {"period": 0.001})
    ekuiper.function("add")
    assert ekuiper.exec("add", 1, 1) == (True, 2)
    ekuiper.rows(src, 3)
    for channel, name in (("source", src.meta.key), ("function", "add")):
        ekuiper.host.ok("close", channel, name)
        ekuiper.host.ok("open", channel, name)
    assert len(ekuiper.rows(src, 20)) == 20
    out = tmp_path / "sink.jsonl"
    snk = ekuiper.start_sink("record", {"path": str(out), "requireAck": True})
    assert ekuiper.send(snk, b"{}") is None
    for a in range(5):
        assert ekuiper.exec("add", a, 100) == (True, a + 100)
    ekuiper.stop_sink(snk)
    ekuiper.stop_source(src)


def test_a_reply_is_not_repeated_after_a_reconnect(ekuiper):
    """The host's socket goes while the plugin computes; the reply, sent on the new connection, goes once.

    Sent twice with one request id, the copy answers the host's next call, and every later answer is one
    call late."""
    ekuiper.launch()
    ekuiper.function("nap")
    assert ekuiper.exec("nap", 0) == (True, 0)
    request = json.dumps({"func": "Exec", "arg": [0.5, "{}"]}).encode()
    ekuiper.host.ok("send", "function", "nap", data=request)  # the plugin's pending request gets it
    ekuiper.host.ok("close", "function", "nap")
    ekuiper.host.ok("open", "function", "nap")
    answers = [ekuiper.exec("nap", x) for x in (0.01, 0.02, 0.03)]
    assert answers == [(True, 0.01), (True, 0.02), (True, 0.03)]


def test_a_squatted_sink_socket_fails_its_start_at_once(ekuiper, tmp_path, sockdir):
    """A listener that never accepts, at a sink's data path: the start is refused, and the plugin goes on."""
    ekuiper.launch()
    held = squat(f"{sockdir}/r1_k_0_0.ipc")
    try:
        ekuiper.host.ok("open", "ack", "r1_k_0_0")
        ctrl = Control("record", "sink", Meta("r1", "k_0", 0), config={"path": str(tmp_path / "x")})
        assert "in use" in ekuiper.command("start", ctrl)
        src = ekuiper.start_source("counter", {"period": 0.001})
        assert len(ekuiper.rows(src, 3)) == 3
    finally:
        for sock in held:
            sock.close()


def test_control_socket_reopened_means_a_new_ekuiper(ekuiper, tmp_path):
    """eKuiper never closes its control socket while it lives (PROTOCOL §1.2): closed and listened again, it is
    a restarted eKuiper. The old plugin, even in the middle of a start, exits and sends nothing into its
    successor's socket; a new plugin process serves the reopened socket alone, every answer its own."""
    ekuiper.launch()
    old = ekuiper.process
    assert old is not None
    sink = Control("record", "sink", Meta("r1", "k_0", 0), config={"path": str(tmp_path / "x")})
    ekuiper.host.ok("send", "control", "ekplug", data=encode_command("start", sink))  # its ack socket is not there
    ekuiper.host.ok("close", "control", "ekplug")
    ekuiper.host.ok("open", "control", "ekplug")
    ekuiper.host.ok("open", "ack", sink.meta.key)  # the old plugin's ack dial could succeed now
    assert old.wait(10) is not None, old.output
    ekuiper.launch()
    assert ekuiper.command("start", Control("nothing", "source", Meta("r1", "s9"))).startswith("symbol not found")
    src = ekuiper.start_source("counter", {"period": 0.001})
    assert len(ekuiper.rows(src, 3)) == 3
    assert ekuiper.stale == 0
    ekuiper.stop_source(src)
