"""The plugin process as a whole: launch, control channel, signals, parent death, leaks, logs."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ekdsl.host import LAUNCH_ARG, PluginProcess
from ekdsl.protocol import Control, Meta, encode_command

from .conftest import LAB, lines, start_stop_cycle, wait_for


def counts(pid: int) -> tuple[int, int]:
    """(threads, open file descriptors incl. sockets) of a process."""
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return any(line.startswith("State:") and "Z" in line for line in fh)
    except FileNotFoundError:
        return True


def test_launched_as_ekuiper_launches_it(host, exported):
    h = host()
    pkg = exported(LAB)
    assert h.process.argv == [sys.executable, "-u", str(pkg / "main.py"), LAUNCH_ARG]
    assert Path(os.readlink(f"/proc/{h.process.pid}/cwd")) == pkg
    assert h.handshake_ms > 0
    assert wait_for(lambda: "INFO [lab] plugin lab 0.0.1 serving" in h.process.output)


@pytest.mark.parametrize("choice", ["stdlib", "auto", "simdjson"])
def test_json_codec_choice(host, monkeypatch, tmp_path, choice):
    monkeypatch.setenv("EKDSL_JSON", choice)
    h = host()
    used = "stdlib" if choice == "stdlib" or importlib.util.find_spec("orjson") is None else "orjson"
    assert wait_for(lambda: f" symbols (JSON: {used})" in h.process.output), h.process.output
    if choice == "simdjson":  # a wrong setting is reported, and the plugin serves all the same
        assert "WARNING [lab] EKDSL_JSON='simdjson' is not a JSON codec: use auto, orjson or stdlib; " \
               f"using {used}" in h.process.output
    assert h.function("total").exec([1.5, 2.25, 18446744073709551615]) == (True, 18446744073709551618.75)
    assert h.function("stamp").exec("AQI=") == (True, {"bytes": "AQI=", "when": "2024-05-06", "dec": 2.5,
                                                       "set": [1], "nan": None})
    src = h.start_source("weird", {})
    assert src.rows(2) == [{"x": None, "t": "2024-01-02T00:00:00+00:00", "d": 1.5}, {"a": 1}]
    h.stop_source(src)
    out = tmp_path / "rows.jsonl"
    snk = h.start_sink("collect", {"path": str(out), "requireAck": True})
    assert snk.send(b'[{"i":1,"s":"\\u00e9\\ud83d\\ude00"},{"i":-0.0,"n":null}]') is None
    assert lines(out) == [{"i": 1, "s": "\u00e9\U0001f600"}, {"i": -0.0, "n": None}]


def test_log_lines_name_plugin_symbol_and_rule(host):
    h = host()
    src = h.start_source("ticker", {"period": 0.001}, rule="r9", op="s9", instance=2)
    src.rows(1)
    h.stop_source(src)
    assert wait_for(lambda: "INFO [lab source ticker rule=r9 op=s9 instance=2] stopped" in h.process.output)


@pytest.mark.parametrize(
    ("payload", "reply"),
    [
        (b"", "empty control message: expected a JSON command"),
        (b"garbage", "control command is not valid JSON"),
        (encode_command("start", Control("x", "lookup", Meta("r", "o"))), "invalid plugin type 'lookup'"),
        (b'{"cmd":"pause","arg":"{}"}', "invalid command received: 'pause'"),
        (encode_command("start", Control("nope", "sink", Meta("r", "o"))), "symbol not found: sink 'nope'"),
        (encode_command("stop", Control("nope", "sink", Meta("r", "o"))), "ok"),
    ],
)
def test_malformed_or_unknown_commands_are_answered(host, payload, reply):
    h = host()
    answer = h.control.exchange(payload, timeout=5).decode()
    assert answer.startswith(reply)
    assert answer[:1] != "h"
    src = h.start_source("ticker", {"period": 0.001})  # the process is still fine
    assert src.rows(1)


@pytest.mark.parametrize("transport", ["native"])  # the rule itself: tests/test_session.py, injected clock
def test_keepalive_on_an_idle_control_channel(host):
    """The one real-time check of the keepalive, end to end."""
    h = host()
    time.sleep(6.5)  # deliberately idle past the 5 s keepalive; nothing to wait for
    src = h.start_source("ticker", {"period": 0.001})
    assert src.rows(1)
    assert h.control.stale >= 1  # the queued keepalive was answered with the command again


def test_sigterm_runs_teardown_and_exits_0(host, tmp_path):
    h = host()
    out = tmp_path / "gen.jsonl"
    marker = tmp_path / "closed"
    snk = h.start_sink("gen_sink", {"path": str(out), "requireAck": True})
    snk.send(b'{"a":1}')
    src = h.start_source("ticker", {"period": 10, "marker": str(marker)})
    src.rows(1)
    h.process.signal(signal.SIGTERM)
    assert h.process.wait(5) == 0
    assert lines(out) == ["open", {"a": 1}, "close"]
    assert marker.exists()


def test_exits_when_ekuiper_dies(exported, sockdir, tmp_path):
    pkg = exported(LAB)
    script = tmp_path / "fake_ekuiper.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from ekdsl.host import Host
        h = Host("lab", {str(pkg / "main.py")!r}, socket_dir={sockdir!r})
        h.start()
        print(h.process.pid, flush=True)
        time.sleep(120)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        assert not gone(pid)
        parent.kill()  # SIGKILL: no chance to clean up
        parent.wait(5)
        t0 = time.monotonic()
        assert wait_for(lambda: gone(pid), timeout=5.0)
        assert time.monotonic() - t0 < 5.0
    finally:
        parent.kill()
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, UnboundLocalError):
            pass


def test_control_socket_missing_exits_1(exported, sockdir):
    pkg = exported(LAB)
    proc = PluginProcess(str(pkg / "main.py"), env={**os.environ, "EKDSL_SOCKET_DIR": sockdir})
    try:
        assert proc.wait(15) == 1
        assert "cannot reach eKuiper's control socket" in proc.output
    finally:
        proc.kill()


def test_start_stop_cycles_leave_no_trace(host, tmp_path, transport):
    """200 cycles on the default transport (50 on pynng, whose sockets are stopped by polling, so slower)."""
    h = host()
    pid = h.process.pid
    out = tmp_path / "rows.jsonl"

    start_stop_cycle(h, out)
    before = counts(pid)  # a stopped instance's thread may still be ending: nothing may be left above this
    n = 200 if transport == "native" else 50
    for _ in range(n):
        start_stop_cycle(h, out)

    def no_more() -> bool:
        threads, fds = counts(pid)
        return threads <= before[0] and fds <= before[1]

    assert wait_for(no_more, timeout=3.0), (before, counts(pid))
    assert len(lines(out)) == n + 1


def test_python_m_ekdsl_run(sockdir):
    """`python -m ekdsl run TARGET` serves a plugin from its module, as the generated main.py does."""
    import subprocess

    from ekdsl.host.channels import ControlChannel, FunctionChannel
    from ekdsl.protocol import Control as Ctl
    from ekdsl.protocol import Meta as M

    control = ControlChannel("lab", sockdir)
    proc = subprocess.Popen([sys.executable, "-m", "ekdsl", "run", str(LAB), LAUNCH_ARG],
                            env={**os.environ, "EKDSL_SOCKET_DIR": sockdir}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    fn = FunctionChannel("add", sockdir)
    try:
        control.handshake(30)
        control.send_cmd("start", Ctl("add", "func", M()))
        from ekdsl.host import FunctionHandle

        assert FunctionHandle("add", fn).exec(2, 3) == (True, 5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        fn.close()
        control.close()


def test_a_start_nobody_listens_for_fails_fast_and_other_commands_go_on(host, sockdir):
    """After a plugin restart eKuiper replays the starts of rules that may no longer run: nobody listens on
    their data (source) or ack (sink) socket. Each such start is answered an error at once, well within the
    2 s this host waits, instead of holding the control loop for seconds per replayed start."""
    from ekdsl.host.channels import CommandError

    h = host()
    stale_source = Control("ticker", "source", Meta("gone", "stream1", 0), config={})
    stale_sink = Control("collect", "sink", Meta("gone", "sink_0", 0), config={"path": os.devnull})
    for ctrl in (stale_source, stale_sink):
        with pytest.raises(CommandError, match="dial"):
            h.control.send_cmd("start", ctrl, timeout=2.0)
    src = h.start_source("ticker", {"period": 0.01})
    assert len(src.rows(2)) == 2
    h.stop_source(src)
