"""Instructions per row and per call, counted by valgrind's callgrind in the plugin process only.

    python benchmarks/instructions.py               # every path, ekdsl (stdlib JSON), ekdsl+orjson, the SDK
    python benchmarks/instructions.py --only ekdsl,sdk --paths func_echo,sink_row
    python benchmarks/instructions.py --quick       # small windows, a short idle (a smoke run)
    python benchmarks/instructions.py --json out.json --keep dumps/   # and each window's dump, for callgrind_annotate
    python benchmarks/instructions.py --only ekdsl --ekdsl-from ../old    # the ekdsl of another checkout

Wall-clock figures on a shared machine swing with wake-up latency; instruction counts do not. Each plugin
runs under ``valgrind --tool=callgrind --instr-atstart=no``, driven as eKuiper drives it (``driver.py``'s host,
on pynng, in this process, not counted). For each path the host warms the path up, waits until the plugin is
quiet (no thread runnable, no CPU used, twice in a row), zeroes the counters (``vgdb --pid=P zero``), performs
exactly N operations, waits until the plugin is quiet again and dumps the counters (``vgdb --pid=P dump``): the
user-mode instructions of every thread of the plugin in that window, divided by N. A second window of 2N
operations follows from there (a dump holds what came since the last one); the two per-op figures agree
within about 1 % (the "2N" column says how far apart they were; more than 5 % apart, or an operation that
never ends, and the path is counted again, up to three times). A source is measured against backpressure: the
host stops reading until the plugin blocks on its full socket, so that each window starts and ends with the
same rows in flight.

Idle: a plugin of its own per column, started first, that only ever sends its handshake and keepalives. It is
counted twice: over ``--idle`` seconds once it is quiet after start (its module imported), and over
``--idle-window`` seconds once ``--idle-after`` seconds have passed since its start. An idle plugin's only
work is the keepalive every 5 s; CPython specialises the code a keepalive runs only after it has run some
hundreds of times, so the first minutes cost several times what every later one does. The second figure is
what an idle plugin costs from then on, for as long as it runs.

The plugins are those of ``run.py`` (``plugins/benchek.py`` exported; ``plugins/benchsdk``, the official SDK
2.4.2 in its own virtual environment, under names of this run), with that environment's interpreter. Without
valgrind this prints one line and exits 0.
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
from run import has_orjson, sdk_python, specs, symbol  # noqa: E402

from ekdsl.host import Host  # noqa: E402
from ekdsl.protocol import encode_func_request, func_context  # noqa: E402
from ekdsl.transport import Timeout  # noqa: E402

PLUGINS = ("ekdsl", "ekdsl+orjson", "sdk")
# key, label, operations per window (the second window has twice as many)
PATHS = [
    ("func_echo", "function call (identity)", 1000),
    ("func_agg", "aggregate function (1,000 ints)", 100),
    ("source", "source row (40 B)", 2000),
    ("sink_row", "sink row, no ack", 2000),
    ("sink_ack", "sink row, requireAck", 1000),
    ("sink_batch", "sink batch of 50 rows, no ack (per batch)", 1000),
    ("idle", "idle plugin, first seconds (per second)", 0),
    ("idle_warm", "idle plugin, from then on (per second)", 0),
]
IDLE = ("idle", "idle_warm")
WAIT = 30.0  # seconds any single operation may take under valgrind
Window = Tuple[float, float]


def vgdb(pid: int, *command: str) -> str:
    proc = subprocess.run(["vgdb", f"--pid={pid}", *command], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"vgdb {' '.join(command)} failed: {proc.stdout}{proc.stderr}")
    return proc.stdout


def runnable(pid: int) -> bool:
    """Whether a thread of ``pid`` is running, ready to run, or waiting for the disk (``R``/``D``)."""
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/stat") as fh:
                state = fh.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if state in ("R", "D"):
            return True
    return False


def quiet(pid: int, step: float = 0.05, limit: float = 300.0) -> None:
    """Wait until the plugin is idle or blocked: twice in a row, no thread runnable and (almost) no CPU used
    over ``step``. (CPU alone is not enough: on a loaded machine a busy plugin may get none for a while.)"""
    deadline = time.monotonic() + limit
    last, calm = plugin_cpu(pid), 0
    while time.monotonic() < deadline:
        time.sleep(step)
        now = plugin_cpu(pid)
        calm = calm + 1 if now - last < step * 0.02 and not runnable(pid) else 0
        if calm >= 2:
            return
        last = now
    raise RuntimeError(f"plugin {pid} never went quiet")


class Counted:
    """A plugin under callgrind, and the host driving it."""

    def __init__(self, spec: Dict[str, Any], out: str, keep: Optional[str] = None, label: str = "") -> None:
        self.spec, self.out = spec, out
        self.keep, self.label = keep, label or spec["name"]
        self.dumps = 0
        self.what = "idle"  # the path being counted
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "EKDSL_JSON")}
        env.update(spec.get("env", {}))
        wrapper = ["valgrind", "-q", "--tool=callgrind", "--instr-atstart=no", "--vgdb=yes",
                   f"--callgrind-out-file={out}/callgrind.%p"]
        if keep:  # each dump names every function itself, so that it can be read alone
            wrapper[-1:-1] = ["--compress-strings=no", "--compress-pos=no"]
        self.host = Host(spec["name"], spec["exe"], python=spec["python"], init_timeout=300, env=env,
                         wrapper=wrapper, socket_dir=spec.get("socket_dir"))
        self.rules = 0
        self.started = 0.0
        self.running: List[Callable[[], None]] = []  # stops for the source or sink of the path measured

    def start(self) -> None:
        self.host.start()
        self.started = time.monotonic()
        vgdb(self.pid, "instrumentation", "on")

    @property
    def pid(self) -> int:
        assert self.host.process is not None
        return self.host.process.pid

    def rule(self) -> str:
        self.rules += 1
        return f"icount{os.getpid()}r{self.rules}"

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
        if self.keep:  # for callgrind_annotate: the window's dump, named after the plugin, path and window
            self.dumps += 1
            shutil.move(str(Path(self.out) / new[-1]), str(Path(self.keep) / f"{self.label}.{self.dumps}.{self.what}"))
        for name in new:
            if (Path(self.out) / name).exists():
                os.unlink(Path(self.out) / name)
        return total

    def per_op(self, n: int, run: Callable[[int], None]) -> Window:
        """``(instructions per op over n ops, over 2n ops)``, after a warm-up; each window ends quiet.

        A dump holds what came since the last one, so the second window starts at the first one's dump: a
        stalled source waits no longer than it takes to see it quiet and dump (the SDK's gives up after 1 s)."""
        run(max(20, n // 10))
        quiet(self.pid)
        vgdb(self.pid, "zero")
        per_op = []
        for k in (n, 2 * n):
            run(k)
            quiet(self.pid)
            per_op.append(self.dump() / k)
        while self.running:
            self.running.pop()()
        return per_op[0], per_op[1]

    # ---- paths: each returns "run k operations"

    def function(self, name: str, args: List[Any]) -> Callable[[int], None]:
        fn = self.host.function(symbol(self.spec, name))
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
        src = self.host.start_source(symbol(self.spec, "src"), {"size": 40}, rule=self.rule(), op="s")
        self.running.append(lambda: self.host.stop_source(src))
        recv = src.channel.recv_raw

        def run(k: int) -> None:
            for _ in range(k):
                recv(WAIT)

        return run

    def sink(self, ack: bool, batch: int) -> Callable[[int], None]:
        snk = self.host.start_sink(symbol(self.spec, "snk"), {"requireAck": ack, "sendSingle": batch == 1},
                                   rule=self.rule(), op="k")
        self.running.append(lambda: self.host.stop_sink(snk))
        row = {"name": "bench", "value": 2021}
        payload = json.dumps(row if batch == 1 else [row] * batch, separators=(",", ":")).encode()

        def run(k: int) -> None:
            for _ in range(k):
                assert snk.send(payload, ack_timeout=WAIT) is None

        return run

    def close(self) -> None:
        self.host.close()


def totals(path: Path) -> int:
    """The instruction total of one callgrind dump."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def measure(counted: Counted, paths: List[Tuple[str, str, int]], scale: float) -> Dict[str, Window]:
    """Every path but idle of one plugin: ``{key: (per op over N, per op over 2N)}``."""
    ops: Dict[str, Callable[[], Callable[[int], None]]] = {
        "func_echo": lambda: counted.function("echo", ["hello"]),
        "func_agg": lambda: counted.function("agg", [list(range(1000))]),
        "source": counted.source,
        "sink_row": lambda: counted.sink(False, 1),
        "sink_ack": lambda: counted.sink(True, 1),
        "sink_batch": lambda: counted.sink(False, 50),
    }
    out: Dict[str, Window] = {}
    for key, _, n in paths:
        n = max(10, int(n * scale))
        counted.what = key
        for attempt in range(1, 4):  # the SDK's source gives up when eKuiper stalls it for 1 s: start it again
            try:
                out[key] = counted.per_op(n, ops[key]())
            except Timeout:
                while counted.running:
                    counted.running.pop()()
                print(f"note: {counted.label} {key}: no reply or row within {WAIT:g} s (attempt {attempt})",
                      file=sys.stderr)
                continue
            first, second = out[key]
            if abs(second - first) <= 0.05 * first:
                break
            print(f"note: {counted.label} {key}: windows of N and 2N differ ({first:,.0f}, {second:,.0f}; attempt "
                  f"{attempt})", file=sys.stderr)
    return out


def idle_windows(plugins: Dict[str, Counted], seconds: float, key: str) -> Dict[str, Window]:
    """Instructions per second of every idle plugin over the same ``seconds`` (counted side by side)."""
    for counted in plugins.values():
        quiet(counted.pid)
    for counted in plugins.values():
        counted.what = key
        vgdb(counted.pid, "zero")
    t0 = time.monotonic()
    time.sleep(seconds)
    out: Dict[str, Window] = {}
    for name, counted in plugins.items():
        per_s = counted.dump() / (time.monotonic() - t0)
        out[name] = (per_s, per_s)
    return out


def table(res: Dict[str, Dict[str, Window]], paths: List[Tuple[str, str, int]]) -> str:
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
        spread = max((abs(c[1] - c[0]) / c[0] for c in cells if c and c[0] and key not in IDLE), default=None)
        row += f"{spread * 100:>7.1f}%" if spread is not None else f"{'':>8}"
        lines.append(row)
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(PLUGINS), help=f"comma-separated, of: {','.join(PLUGINS)}")
    ap.add_argument("--paths", default=",".join(k for k, _, _ in PATHS), help="comma-separated path keys")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every window's operations by this")
    ap.add_argument("--idle", type=float, default=20.0, help="seconds an idle plugin is counted after its start")
    ap.add_argument("--idle-after", type=float, default=1800.0,
                    help="seconds after its start an idle plugin is counted again (default: 30 minutes)")
    ap.add_argument("--idle-window", type=float, default=60.0, help="seconds it is counted then")
    ap.add_argument("--quick", action="store_true", help="windows a tenth as long, idle 6 s after 30 s (a smoke run)")
    ap.add_argument("--sdk-python", help="a python with ekuiper==2.4.2 installed (default: a cached venv)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--keep", metavar="DIR", help="keep each window's callgrind dump here (for callgrind_annotate)")
    ap.add_argument("--ekdsl-from", metavar="DIR", type=Path, default=ROOT,
                    help="the checkout whose ekdsl the ekdsl plugins carry (default: this one)")
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
    busy = [p for p in paths if p[0] not in IDLE]
    if args.quick:
        args.scale, args.idle, args.idle_after, args.idle_window = args.scale / 10, 6.0, 30.0, 6.0
    sdk_py = sdk_python(args.sdk_python)
    if "ekdsl+orjson" in only and not has_orjson(sdk_py):
        print(f"note: {sdk_py} has no orjson; ekdsl+orjson left out")
        only.remove("ekdsl+orjson")
    res: Dict[str, Dict[str, Window]] = {name: {} for name in only}
    with tempfile.TemporaryDirectory(prefix="ekdsl-icount-") as work:
        idle: Dict[str, Counted] = {}
        try:
            if any(k in IDLE for k in keys):  # started first, side by side; they wait while the rest is counted
                idle_specs = specs(sdk_py, 0.0, work, args.ekdsl_from)
                for name in only:
                    os.makedirs(f"{work}/idle-{name}")
                    idle[name] = Counted(idle_specs[name], f"{work}/idle-{name}", args.keep, f"{name}-idle")
                    idle[name].start()
                if "idle" in keys:
                    for name, window in idle_windows(idle, args.idle, "idle").items():
                        res[name]["idle"] = window
            if busy:
                busy_specs = specs(sdk_py, 0.0, work, args.ekdsl_from)
                for name in only:
                    os.makedirs(f"{work}/{name}")
                    counted = Counted(busy_specs[name], f"{work}/{name}", args.keep, name)
                    try:
                        counted.start()
                        res[name].update(measure(counted, busy, args.scale))
                    finally:
                        counted.close()
            if "idle_warm" in keys:
                time.sleep(max(0.0, max(c.started for c in idle.values()) + args.idle_after - time.monotonic()))
                for name, window in idle_windows(idle, args.idle_window, "idle_warm").items():
                    res[name]["idle_warm"] = window
        finally:
            for counted in idle.values():
                counted.close()
    print(f"instructions per operation (callgrind, plugin process only), Python {sys.version.split()[0]} host, "
          f"plugins on {sdk_py}")
    if any(k in IDLE for k in keys):
        print(f"idle: over {args.idle:g} s once quiet after start, then over {args.idle_window:g} s from "
              f"{args.idle_after:g} s after start")
    print(table(res, paths))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
