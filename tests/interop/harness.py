"""The Python side of the mangos harness (``main.go``): build it, start it, and drive a plugin through it.

``EkHost`` sends one JSON command per line and waits, bounded, for its answer. ``Ekuiper`` uses it as
eKuiper's runtime does (``internal/plugin/portable/runtime``): control REP listen and handshake, source PULL
listen before ``start``, sink ack PULL listen before ``start`` and data PUSH dial after, function REP listen.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ekdsl.host.process import PluginProcess
from ekdsl.protocol import Control, Meta, encode_command, encode_func_request, func_context

HERE = Path(__file__).resolve().parent
GO = shutil.which("go")


def build(out_dir: Path) -> Path:
    """``go build`` the harness into ``out_dir`` (GOCACHE/GOMODCACHE as configured, so CI reuses them)."""
    assert GO is not None
    exe = out_dir / "ekhost"
    env = {**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false"}
    proc = subprocess.run([GO, "build", "-o", str(exe), "."], cwd=HERE, env=env, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"go build of the mangos harness failed:\n{proc.stderr[-3000:]}")
    return exe


def print_options(exe: Path) -> Dict[str, Any]:
    proc = subprocess.run([str(exe), "-print-options"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    result: Dict[str, Any] = json.loads(proc.stdout)
    return result


class HarnessError(AssertionError):
    """The harness answered with an error, or not at all."""


class EkHost:
    """One running harness; every call waits at most its timeout (the harness exits past it)."""

    def __init__(self, exe: Path, sockdir: str) -> None:
        self.proc = subprocess.Popen([str(exe), "-dir", sockdir, "-max-life", "150s"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._answers: queue.Queue[Dict[str, Any]] = queue.Queue()
        self._ids = itertools.count(1)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._answers.put(json.loads(line))

    def call(self, op: str, channel: str, name: str = "", *, data: Optional[bytes] = None, size: int = 0,
             count: int = 0, timeout: float = 10.0) -> Dict[str, Any]:
        rid = next(self._ids)
        req: Dict[str, Any] = {"id": rid, "op": op, "channel": channel, "name": name, "size": size,
                               "count": count, "timeout_ms": int(timeout * 1000)}
        if data is not None:
            req["data"] = data.decode("utf-8")
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req).encode() + b"\n")
        self.proc.stdin.flush()
        try:
            answer = self._answers.get(timeout=timeout + 5)
        except queue.Empty:
            raise HarnessError(f"no answer to {req['op']} {channel} {name} from the harness") from None
        if answer.get("fatal"):
            raise HarnessError(f"harness gave up: {answer['error']}")
        assert answer["id"] == rid, answer
        return answer

    def ok(self, op: str, channel: str, name: str = "", **kwargs: Any) -> Dict[str, Any]:
        answer = self.call(op, channel, name, **kwargs)
        if not answer["ok"]:
            raise HarnessError(f"{op} {channel} {name}: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def text(message: Dict[str, Any]) -> str:
    data: str = message["data"]
    return data


class Ekuiper:
    """eKuiper's runtime for one plugin, over the harness: the control channel survives plugin restarts."""

    def __init__(self, host: EkHost, package: Path, sockdir: str, transport: str) -> None:
        self.host = host
        self.name = package.name
        self.main = package / "main.py"
        self.env = {**os.environ, "EKDSL_SOCKET_DIR": sockdir, "EKDSL_TRANSPORT": transport}
        self.process: Optional[PluginProcess] = None
        self.control_open = False
        self.stale = 0

    def launch(self) -> None:
        """Listen on the control socket once (as GetOrStartProcess), start the process, take its handshake."""
        if not self.control_open:
            self.host.ok("open", "control", self.name)
            self.control_open = True
        self.process = PluginProcess(str(self.main), env=self.env)
        answer = self.host.ok("handshake", "control", self.name, count=30_000, timeout=35)
        assert answer["reply"]["data"] == "handshake", answer

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def command(self, cmd: str, control: Control) -> str:
        """``SendCmd``: the plugin's answer ("ok" or an error text)."""
        answer = self.host.ok("exchange", "control", self.name, data=encode_command(cmd, control))
        self.stale += answer.get("stale", 0)
        return text(answer["reply"])

    def start_source(self, symbol: str, config: Dict[str, Any], rule: str = "r1", op: str = "s1") -> Control:
        ctrl = Control(symbol, "source", Meta(rule, op, 0), config=config)
        self.host.ok("open", "source", ctrl.meta.key)
        assert self.command("start", ctrl) == "ok"
        return ctrl

    def rows(self, ctrl: Control, n: int, timeout: float = 10.0) -> List[Dict[str, Any]]:
        messages = self.host.ok("recv", "source", ctrl.meta.key, count=n, timeout=timeout)["messages"]
        return [json.loads(text(m))["message"] for m in messages]

    def stop_source(self, ctrl: Control) -> None:
        self.host.ok("close", "source", ctrl.meta.key)
        assert self.command("stop", ctrl) == "ok"

    def start_sink(self, symbol: str, config: Dict[str, Any], rule: str = "r1", op: str = "k_0") -> Control:
        ctrl = Control(symbol, "sink", Meta(rule, op, 0), config=config)
        self.host.ok("open", "ack", ctrl.meta.key)
        assert self.command("start", ctrl) == "ok"
        self.host.ok("open", "sink", ctrl.meta.key)
        return ctrl

    def send(self, ctrl: Control, payload: bytes = b"", size: int = 0) -> Optional[str]:
        """Push one payload; with requireAck, its ack's error (``None`` = ok)."""
        self.host.ok("send", "sink", ctrl.meta.key, data=payload, size=size)
        if not ctrl.config.get("requireAck"):
            return None
        ack = json.loads(text(self.host.ok("recv", "ack", ctrl.meta.key)["messages"][0]))
        error: Optional[str] = ack.get("error") or None
        return error

    def stop_sink(self, ctrl: Control) -> None:
        self.host.ok("close", "sink", ctrl.meta.key)
        self.host.ok("close", "ack", ctrl.meta.key)
        assert self.command("stop", ctrl) == "ok"

    def function(self, symbol: str) -> None:
        self.host.ok("open", "function", symbol)
        assert self.command("start", Control(symbol, "func", Meta())) == "ok"

    def call(self, symbol: str, func: str, arg: Any) -> Tuple[bool, Any]:
        """``PortableFunc.Req``: the decoded ``FuncReply``."""
        answer = self.host.ok("exchange", "function", symbol, data=encode_func_request(func, arg))
        reply = json.loads(text(answer["reply"]))
        return reply["state"], reply["result"]

    def exec(self, symbol: str, *args: Any) -> Tuple[bool, Any]:
        return self.call(symbol, "Exec", [*args, func_context("r1", "p1")])
