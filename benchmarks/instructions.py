"""Instructions per row and per call, counted by valgrind's callgrind in the plugin process only.

    python benchmarks/instructions.py               # every path, ekdsl (stdlib JSON), ekdsl+orjson, the SDK
    python benchmarks/instructions.py --only ekdsl,sdk --paths func_echo,sink_row
    python benchmarks/instructions.py --quick       # small windows (a smoke run)
    python benchmarks/instructions.py --json out.json

Wall-clock figures on a shared machine swing with wake-up latency; instruction counts do not. Each plugin
runs under ``valgrind --tool=callgrind --instr-atstart=no``, driven as eKuiper drives it (``driver.py``'s host,
on pynng, in this process, not counted). For each path the host warms the path up, waits until the plugin is
quiet, zeroes the counters (``vgdb --pid=P zero``), performs exactly N operations, waits until the plugin is
quiet again and dumps the counters (``vgdb --pid=P dump``): the user-mode instructions of every thread of the
plugin in that window, divided by N. A second window of 2N operations follows; the two per-op figures agree
within about 1 % (the "2N" column says how far apart they were). A source is measured against backpressure:
the host stops reading until the plugin blocks on its full socket, so that each window starts and ends with
the same rows in flight. The idle figure is instructions per second of a plugin that has sent its handshake
and serves nothing, over ``--idle`` seconds.

The plugins are those of ``run.py`` (``plugins/benchek.py`` exported; ``plugins/benchsdk``, the official SDK
2.4.2 in its own virtual environment), with that environment's interpreter. Without valgrind this prints one
line and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from driver import plugin_cpu  # noqa: E402
from run import has_orjson, sdk_python, specs  # noqa: E402

from ekdsl.host import Host  # noqa: E402
from ekdsl.protocol import encode_func_request, func_context  # noqa: E402

PLUGINS = ("ekdsl", "ekdsl+orjson", "sdk")
# key, label, operations per window (the second window has twice as many)
PATHS = [
    ("func_echo", "function call (identity)", 1000),
    ("func_agg", "aggregate function (1,000 ints)", 100),
    ("source", "source row (40 B)", 2000),
    ("sink_row", "sink row, no ack", 2000),
    ("sink_ack", "sink row, requireAck", 1000),
    ("sink_batch", "sink batch of 50 rows, no ack (per batch)", 1000),
    ("idle", "idle plugin (instructions per second)", 0),
]
WAIT = 60.0  # seconds any single operation may take under valgrind


def vgdb(pid: int, *command: str) -> str:
    proc = subprocess.run(["vgdb", f"--pid={pid}", *command], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"vgdb {' '.join(command)} failed: {proc.stdout}{proc.stderr}")
    return proc.stdout


def quiet(pid: int, step: float = 0.1, limit: float = 120.0) -> None:
    """Wait until the plugin uses (almost) no CPU for one ``step``: it is idle, or blocked."""
    deadline = time.monotonic() + limit
    last = plugin_cpu(pid)
    while time.monotonic() < deadline:
        time.sleep(step)
        now = plugin_cpu(pid)
        if now - last < step * 0.02:
            return
        last = now
    raise RuntimeError(f"plugin {pid} never went quiet")


class Counted:
    """A plugin under callgrind, and the host driving it."""

    def __init__(self, spec: Dict[str, Any], out: str) -> None:
        self.out = out
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "EKDSL_JSON")}
        env.update(spec.get("env", {}))
        wrapper = ["valgrind", "-q", "--tool=callgrind", "--instr-atstart=no", "--vgdb=yes",
                   f"--callgrind-out-file={out}/callgrind.%p"]
        # ekdsl's sockets in a directory of their own (the SDK's are fixed /tmp paths)
        sockets = None if spec["name"] == "benchsdk" else tempfile.mkdtemp(prefix="ekic", dir="/tmp")
        self.sockets = sockets
        self.host = Host(spec["name"], spec["exe"], python=spec["python"], init_timeout=300, env=env,
                         wrapper=wrapper, socket_dir=sockets)
        self.rules = 0
        self.running: List[Callable[[], None]] = []  # stops for the source or sink of the path measured

    def start(self) -> None:
        self.host.start()
        vgdb(self.pid, "instrumentation", "on")

    @property
    def pid(self) -> int:
        assert self.host.process is not None
        return self.host.process.pid

    def rule(self) -> str:
        self.rules += 1
        return f"icount{os.getpid()}r{self.rules}"

    def window(self, ops: Callable[[], None]) -> int:
        """Instructions of the plugin while ``ops`` runs, between two quiet moments."""
        quiet(self.pid)
        vgdb(self.pid, "zero")
        ops()
        quiet(self.pid)
        return self.dump()

    def dump(self) -> int:
        """Dump the counters; the instructions since they were last zeroed."""
        mark = set(os.listdir(self.out))
        vgdb(self.pid, "dump")
        deadline = time.monotonic() + WAIT
        while True:
            new = sorted(set(os.listdir(self.out)) - mark)
            if new and (Path(self.out) / new[-1]).stat().st_size:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("callgrind wrote no dump")
            time.sleep(0.05)
        total = totals(Path(self.out) / new[-1])
        for name in new:
            os.unlink(Path(self.out) / name)
        return total

    def per_op(self, n: int, run: Callable[[int], None]) -> Tuple[float, float]:
        """``(instructions per op over n ops, over 2n ops)``, after a warm-up."""
        run(max(20, n // 10))
        first = self.window(lambda: run(n)) / n
        second = self.window(lambda: run(2 * n)) / (2 * n)
        while self.running:
            self.running.pop()()
        return first, second

    # ---- paths: each returns "run k operations"

    def function(self, name: str, args: List[Any]) -> Callable[[int], None]:
        fn = self.host.function(name)
        fn.is_aggregate()
        request = encode_func_request("Exec", [*args, func_context("bench", "op", 0, 0)])
        exchange = fn.channel.exchange

        def run(k: int) -> None:
            for _ in range(k):
                reply = exchange(request, WAIT)
                assert b"true" in reply[:20], reply[:200]

        return run

    def source(self) -> Callable[[int], None]:
        """Rows taken by the host; between windows it does not read, and the source blocks on its full socket."""
        src = self.host.start_source("src", {"size": 40}, rule=self.rule(), op="s")
        self.running.append(lambda: self.host.stop_source(src))
        recv = src.channel.recv_raw

        def run(k: int) -> None:
            for _ in range(k):
                recv(WAIT)

        return run

    def sink(self, ack: bool, batch: int) -> Callable[[int], None]:
        snk = self.host.start_sink("snk", {"requireAck": ack, "sendSingle": batch == 1}, rule=self.rule(), op="k")
        self.running.append(lambda: self.host.stop_sink(snk))
        row = {"name": "bench", "value": 2021}
        payload = json.dumps(row if batch == 1 else [row] * batch, separators=(",", ":")).encode()

        def run(k: int) -> None:
            for _ in range(k):
                assert snk.send(payload, ack_timeout=WAIT) is None

        return run

    def idle(self, seconds: float) -> float:
        """Instructions per second of the plugin doing nothing."""
        quiet(self.pid)
        vgdb(self.pid, "zero")
        time.sleep(seconds)
        return self.dump() / seconds

    def close(self) -> None:
        self.host.close()
        if self.sockets:
            shutil.rmtree(self.sockets, ignore_errors=True)


def totals(path: Path) -> int:
    """The instruction total of one callgrind dump."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def measure(spec: Dict[str, Any], paths: List[Tuple[str, str, int]], scale: float, idle: float
            ) -> Dict[str, Tuple[float, float]]:
    """Every path of one plugin: ``{key: (per op over N, per op over 2N)}``."""
    out: Dict[str, Tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ekdsl-callgrind-") as work:
        counted = Counted(spec, work)
        try:
            counted.start()
            for key, _, _n in paths:  # the idle plugin first: nothing started yet
                if key == "idle":
                    per_s = counted.idle(idle)
                    out[key] = (per_s, per_s)
            for key, _, n in paths:
                n = max(10, int(n * scale))
                if key == "func_echo":
                    out[key] = counted.per_op(n, counted.function("echo", ["hello"]))
                elif key == "func_agg":
                    out[key] = counted.per_op(n, counted.function("agg", [list(range(1000))]))
                elif key == "source":
                    out[key] = counted.per_op(n, counted.source())
                elif key == "sink_row":
                    out[key] = counted.per_op(n, counted.sink(False, 1))
                elif key == "sink_ack":
                    out[key] = counted.per_op(n, counted.sink(True, 1))
                elif key == "sink_batch":
                    out[key] = counted.per_op(n, counted.sink(False, 50))
        finally:
            counted.close()
    return out


def table(res: Dict[str, Dict[str, Tuple[float, float]]], paths: List[Tuple[str, str, int]]) -> str:
    cols = [p for p in PLUGINS if p in res]
    ratios = [p for p in ("ekdsl", "ekdsl+orjson") if p in res and "sdk" in res]
    head = f"{'path':44}" + "".join(f"{c:>14}" for c in cols) + "".join(
        f"{('ekdsl' if p == 'ekdsl' else '+orjson') + '/sdk':>13}" for p in ratios) + f"{'2N':>8}"
    lines = [head, "-" * len(head)]
    for key, label, _ in paths:
        cells = [res[c].get(key) for c in cols]
        row = f"{label:44}" + "".join(f"{c[0]:>14,.0f}" if c else f"{'-':>14}" for c in cells)
        sdk = res.get("sdk", {}).get(key)
        for p in ratios:
            mine = res[p].get(key)
            row += f"{mine[0] / sdk[0]:>12.2f}x" if mine and sdk and sdk[0] else f"{'-':>13}"
        spread = max((abs(c[1] - c[0]) / c[0] for c in cells if c and c[0] and key != "idle"), default=None)
        row += f"{spread * 100:>7.1f}%" if spread is not None else f"{'':>8}"
        lines.append(row)
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(PLUGINS), help=f"comma-separated, of: {','.join(PLUGINS)}")
    ap.add_argument("--paths", default=",".join(k for k, _, _ in PATHS), help="comma-separated path keys")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every window's operations by this")
    ap.add_argument("--idle", type=float, default=20.0, help="seconds the idle plugin is counted")
    ap.add_argument("--quick", action="store_true", help="windows a tenth as long, 6 s idle (a smoke run)")
    ap.add_argument("--sdk-python", help="a python with ekuiper==2.4.2 installed (default: a cached venv)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("vgdb") is None:
        print("instructions: valgrind (with vgdb) is not installed; nothing counted (apt-get install valgrind)")
        return 0
    only = [p for p in args.only.split(",") if p]
    keys = [k for k in args.paths.split(",") if k]
    bad = (set(only) - set(PLUGINS)) | (set(keys) - {k for k, _, _ in PATHS})
    if bad:
        ap.error(f"unknown plugin or path: {', '.join(sorted(bad))}")
    paths = [p for p in PATHS if p[0] in keys]
    scale, idle = (args.scale / 10, 6.0) if args.quick else (args.scale, args.idle)
    sdk_py = sdk_python(args.sdk_python)
    if "ekdsl+orjson" in only and not has_orjson(sdk_py):
        print(f"note: {sdk_py} has no orjson; ekdsl+orjson left out")
        only.remove("ekdsl+orjson")
    res: Dict[str, Dict[str, Tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ekdsl-icount-") as work:
        all_specs = specs(sdk_py, 0.0, work)
        for name in only:
            res[name] = measure(all_specs[name], paths, scale, idle)
    print(f"instructions per operation (callgrind, plugin process only), Python {sys.version.split()[0]} host, "
          f"plugins on {sdk_py}")
    print(table(res, paths))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
