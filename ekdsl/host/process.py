"""Launching a plugin process as eKuiper does, and capturing what it prints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence, TextIO

from .channels import HostError

__all__ = ["LAUNCH_ARG", "PluginProcess"]

LAUNCH_ARG = '{"sendTimeout":1000}'  # hard-coded by eKuiper (PortbleConf), whatever kuiper.yaml says


class PluginProcess:
    """A plugin process: ``python -u <exe> '{"sendTimeout":1000}'`` (or ``<exe> ...`` for Go), cwd = its folder.

    ``wrapper`` is put before that command line, as eKuiper puts ``conda run -n <env>`` before it: the
    plugin's parent is then the wrapper, not the host.
    """

    def __init__(self, executable: str, language: str = "python", python: Optional[str] = None,
                 env: Optional[Dict[str, str]] = None, wrapper: Sequence[str] = ()) -> None:
        exe = os.path.abspath(executable)
        if language == "python":
            argv = [python or sys.executable, "-u", exe, LAUNCH_ARG]
        elif language == "go":
            argv = [exe, LAUNCH_ARG]
        else:
            raise ValueError(f"unsupported language: {language}")
        argv = [*wrapper, *argv]
        self.argv = argv
        self.lines: List[str] = []
        self.echo: Optional[TextIO] = None  # also copy each line here, prefixed "plugin | "
        self._lock = threading.Lock()
        self.started = time.monotonic()
        try:
            self.proc = subprocess.Popen(argv, cwd=os.path.dirname(exe), env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError as exc:
            what = "python" if language == "python" and argv[0] != exe else "executable"
            raise HostError(f"cannot start the plugin: {what} {argv[0]!r}: {exc.strerror or exc}"
                            + (" (give --python an existing interpreter)" if what == "python" else "")) from None
        self._reader = threading.Thread(target=self._read, daemon=True, name="plugin-output")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.lines.append(line)
            echo = self.echo
            if echo is not None:
                echo.write(f"plugin | {line}\n")
                echo.flush()
        self.proc.stdout.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def poll(self) -> Optional[int]:
        return self.proc.poll()

    def wait(self, timeout: float) -> Optional[int]:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL, as eKuiper's ``process.Kill()`` does; then reap."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(2.0)
