"""What ctx.state costs: calls per second on each backend, and the CPU a source adds by saving its cursor per row.

    python benchmarks/state.py                  # SQLite (synchronous normal and full) and Redis
    python benchmarks/state.py --quick --json out.json

Part 1 calls the public API (``State.put/get/incr``, JSON and scope included) in this process, one thread:
the default SQLite store (WAL, write-through, ``synchronous=NORMAL``), the same with ``EKDSL_STATE_SYNC=full``
(an fsync per commit), 100 puts per ``transaction()`` (what group commit would cost per put), and Redis on
loopback (a ``redis-server`` the benchmark starts; skipped where there is none). Part 2 runs a plugin process
(``plugins/benchstate.py``) under the emulator's host: a source sends rows as fast as the host reads them,
without state, then saving ``next`` after every row; the plugin's CPU time (``/proc``) per row is compared.
Each figure is the median of ``--runs`` runs; the machine's other load shows in the spread, not the median.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from ekdsl import Context, load_target  # noqa: E402
from ekdsl.host import Host  # noqa: E402
from ekdsl.package import export  # noqa: E402
from ekdsl.state import State, Stores, find_location  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

Figures = Dict[str, float]


def _state(where: str, sync: str = "normal") -> State:
    env = {"EKDSL_STATE": where, "EKDSL_STATE_SYNC": sync}
    ctx = Context(plugin="bench", symbol="s", rule_id="r", op_id="o", kind="source",
                  stores=Stores(find_location(env)))
    return ctx.state


def _rate(n: int, work: Callable[[int], object]) -> Tuple[float, float]:
    """(calls per second, CPU microseconds per call) of ``work(i)`` for i < n."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        work(i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu / n * 1e6


def calls(where: str, sync: str, n: int) -> Figures:
    state = _state(where, sync)
    state.put("warm", 0)
    put = _rate(n, lambda i: state.put("cursor", {"offset": i, "line": i}))
    get = _rate(n, lambda i: state.get("cursor"))
    incr = _rate(n, lambda i: state.incr("count"))

    def batch(i: int) -> None:
        with state.transaction() as tx:
            for j in range(100):
                tx.put(f"k{j}", i)

    grouped = _rate(max(1, n // 100), batch)
    return {"put_per_s": put[0], "put_cpu_us": put[1], "get_per_s": get[0], "get_cpu_us": get[1],
            "incr_per_s": incr[0], "incr_cpu_us": incr[1], "batched_put_per_s": grouped[0] * 100,
            "batched_put_cpu_us": grouped[1] / 100}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def source_cpu(main: str, env: Dict[str, str], save: bool, rows: int) -> Figures:
    """The plugin's CPU per row while the host reads ``rows`` rows (after the first 1,000)."""
    with tempfile.TemporaryDirectory(prefix="ekb", dir="/tmp") as sockdir, \
            Host("benchstate", main, socket_dir=sockdir, env=env, init_timeout=60) as host:
        assert host.process is not None
        src = host.start_source("count", {"save": save})
        src.rows(1000)
        cpu, wall = _cpu_seconds(host.process.pid), time.perf_counter()
        for _ in range(rows):
            src.channel.recv_raw(10)
        cpu, wall = _cpu_seconds(host.process.pid) - cpu, time.perf_counter() - wall
        return {"cpu_us_per_row": cpu / rows * 1e6, "rows_per_s": rows / wall}


def median(runs: List[Figures]) -> Figures:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def run(n: int, rows: int, runs: int, redis_url: Optional[str]) -> Dict[str, Dict[str, Figures]]:
    out: Dict[str, Dict[str, Figures]] = {"calls": {}, "source": {}}
    with tempfile.TemporaryDirectory() as workdir:
        stores = {"SQLite": (os.path.join(workdir, "s1"), "normal", n),
                  "SQLite, sync full": (os.path.join(workdir, "s2"), "full", max(100, n // 10))}
        if redis_url:
            stores["Redis"] = (redis_url, "normal", n)
        for name, (where, sync, count) in stores.items():
            out["calls"][name] = median([calls(where, sync, count) for _ in range(runs)])
        main = f"{export(load_target(str(HERE / 'plugins' / 'benchstate.py')).model(), workdir).directory}/main.py"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("EKDSL_STATE", "KUIPER__"))}
        modes = {"no state": ({}, False), "SQLite": ({"EKDSL_STATE": os.path.join(workdir, "p1")}, True),
                 "SQLite, sync full": ({"EKDSL_STATE": os.path.join(workdir, "p2"), "EKDSL_STATE_SYNC": "full"}, True)}
        if redis_url:
            modes["Redis"] = ({"EKDSL_STATE": redis_url}, True)
        for name, (extra, save) in modes.items():
            count = rows if "full" not in name else max(500, rows // 10)
            out["source"][name] = median([source_cpu(main, {**base, **extra}, save, count) for _ in range(runs)])
    return out


def table(out: Dict[str, Dict[str, Figures]]) -> str:
    head = f"{'store':20}{'put/s':>10}{'µs CPU':>8}{'get/s':>10}{'µs CPU':>8}{'incr/s':>10}{'µs CPU':>8}" \
           f"{'put/s, 100 a tx':>17}{'µs CPU':>8}"
    lines = [head, "-" * len(head)]
    for name, f in out["calls"].items():
        lines.append(f"{name:20}{f['put_per_s']:>10,.0f}{f['put_cpu_us']:>8.1f}{f['get_per_s']:>10,.0f}"
                     f"{f['get_cpu_us']:>8.1f}{f['incr_per_s']:>10,.0f}{f['incr_cpu_us']:>8.1f}"
                     f"{f['batched_put_per_s']:>17,.0f}{f['batched_put_cpu_us']:>8.1f}")
    base = out["source"].get("no state", {}).get("cpu_us_per_row", 0.0)
    head = f"{'source, cursor per row':24}{'rows/s':>10}{'µs CPU/row':>12}{'added µs/row':>14}"
    lines += ["", head, "-" * len(head)]
    for name, f in out["source"].items():
        added = "" if name == "no state" else f"{f['cpu_us_per_row'] - base:>14.1f}"
        lines.append(f"{name:24}{f['rows_per_s']:>10,.0f}{f['cpu_us_per_row']:>12.1f}{added}")
    return "\n".join(lines)


def start_redis(folder: Path) -> Optional[RedisServer]:
    """A redis-server of the benchmark's own, or ``None`` (said on stdout) where there is none or no client."""
    binary = shutil.which("redis-server")
    try:
        import redis  # noqa: F401
    except ImportError:
        binary = None
    if binary is None:
        print("(no redis-server or no redis client: Redis left out)")
        return None
    server = RedisServer(folder, binary)
    server.start()
    return server


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few seconds: fewer calls and rows, one run")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure; the median is shown (default 3)")
    ap.add_argument("--no-redis", action="store_true", help="leave Redis out")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    n, rows, runs = (500, 2000, 1) if args.quick else (20000, 20000, args.runs)
    with tempfile.TemporaryDirectory(prefix="ekb-redis-") as folder:
        redis = None if args.no_redis else start_redis(Path(folder))
        try:
            out = run(n, rows, runs, redis.url if redis else None)
        finally:
            if redis is not None:
                redis.kill()
    print(table(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
