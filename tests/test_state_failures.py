"""A store that fails (read-only, full, over a size limit, Redis stopped or stuck) fails the call that met it
with a StoreError saying why; the plugin goes on, and so does its state once the store is back."""

from __future__ import annotations

import contextlib
import os
import resource
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from ekdsl.host import Emulator

STATEFUL = Path(__file__).resolve().parent / "plugins" / "stateful.py"


def until(src, check: Callable[[dict], bool], timeout: float = 20.0) -> dict:
    """Read rows until one passes ``check``; that row."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = src.rows(1, timeout=max(0.1, deadline - time.monotonic()))[0]
        if check(row):
            return row
    raise AssertionError("no such row in time")


def goes_on_through(emu: Emulator, src, fail: Callable[[], None], mend: Callable[[], None], error: str) -> None:
    """Rows are stored, then ``fail()`` and the puts fail with ``error``, then ``mend()`` and they are stored
    again; the plugin process is the same throughout, and its functions answer meanwhile."""
    pid = emu.host.process.pid
    until(src, lambda r: r["error"] == "")
    fail()
    failed = until(src, lambda r: r["error"] != "")
    assert failed["error"].startswith("StoreError: state store ") and error in failed["error"], failed["error"]
    ok, text = emu.function("hits").exec()  # a smaller write may still fit: an answer either way
    assert ok or text.startswith("state store "), text
    mend()
    until(src, lambda r: r["error"] == "")
    assert emu.function("hits").exec()[0]
    assert emu.host.process.pid == pid and emu.exit_code is None


def can_mount() -> bool:
    return os.geteuid() == 0 and subprocess.run(["mount", "--version"], capture_output=True).returncode == 0


def test_a_read_only_store(tmp_path):
    """The store's folder and file are read-only for the plugin (as another user's, or on a read-only mount)."""
    folder = tmp_path / "state"
    with Emulator(str(STATEFUL), state=str(folder)) as emu:
        emu.function("hits").exec()  # creates the file

    @contextlib.contextmanager
    def read_only() -> Iterator[None]:
        if os.geteuid() != 0:  # file modes bind every user but root
            modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
            for p in modes:
                p.chmod(stat.S_IMODE(modes[p]) & ~0o222)
            yield
            for p, mode in modes.items():
                p.chmod(stat.S_IMODE(mode))
            return
        if not can_mount():
            pytest.skip("cannot make a folder read-only for root here (needs mount)")
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
            yield
        finally:
            subprocess.run(["umount", str(folder)], check=True)

    with read_only(), Emulator(str(STATEFUL), state=str(folder)) as emu:
        src = emu.start_source("saver")
        row = src.rows(1)[0]
        assert row["error"].startswith("StoreError: state store ") and "read-only" in row["error"], row
        ok, text = emu.function("hits").exec()
        assert not ok and text.startswith("state store ")
        assert emu.exit_code is None


def test_a_store_over_a_file_size_limit(tmp_path):
    """The plugin runs with a file size limit (ulimit -f): writes past it fail; raising it mends the store."""
    wrapper = tmp_path / "python-limited"
    wrapper.write_text(f"#!{sys.executable}\nimport os, resource, sys\n"
                       "resource.setrlimit(resource.RLIMIT_FSIZE, (96 * 1024, resource.RLIM_INFINITY))\n"
                       "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n")
    wrapper.chmod(0o755)
    with Emulator(str(STATEFUL), python=str(wrapper), state=str(tmp_path / "state")) as emu:
        src = emu.start_source("saver", extra={"size": 30000, "period": 0.005})
        pid = emu.host.process.pid

        def unlimited() -> None:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

        goes_on_through(emu, src, lambda: None, unlimited, "failed")


def test_a_full_filesystem(tmp_path):
    """The store on a tiny filesystem that fills up: 'database or disk is full'; growing it mends the store."""
    if not can_mount():
        pytest.skip("mounting a tiny filesystem needs root (the size-limit test covers the same)")
    folder = tmp_path / "tiny"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], check=True)
    try:
        with Emulator(str(STATEFUL), state=str(folder)) as emu:
            src = emu.start_source("saver", extra={"size": 40000, "period": 0.005})
            grow = ["mount", "-o", "remount,size=16m", str(folder)]
            goes_on_through(emu, src, lambda: None, lambda: subprocess.run(grow, check=True), "full")
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_redis_stopped_mid_run(redis_server):
    with Emulator(str(STATEFUL), state=redis_server.url) as emu:
        src = emu.start_source("saver")
        goes_on_through(emu, src, redis_server.kill, redis_server.start, "Redis is unreachable")


def test_redis_stuck_mid_run(redis_server):
    """A Redis that accepts nothing more (SIGSTOP) fails each call within its timeout; none waits for ever."""
    with Emulator(str(STATEFUL), state=redis_server.url) as emu:
        src = emu.start_source("saver", extra={"size": 10})
        goes_on_through(emu, src, redis_server.pause, redis_server.resume, "Timeout")
