"""One trivial ``@function`` called through eKuiper's portable function channel and as an external service.

    python benchmarks/services.py              # 2 s per path
    python benchmarks/services.py --seconds 0.3 --json out.json
    python benchmarks/services.py --ray        # and the Ray Serve replica table (needs pip install -e '.[ray]')

The portable path is the emulator's host calling ``Exec`` over nng IPC (one call at a time, as one rule does);
the services are ``python -m ekdsl service`` processes called by clients that send what eKuiper's rest, grpc and
msgpack-rpc executors send, over TCP on 127.0.0.1, with 1 and 8 concurrent clients (one connection each, threads
of this process). Latencies are per call as each client sees it.

A second table gives the REST service's memory for one request body: the peak resident size of a fresh service
process after one call whose body is a JSON list of numbers (floats, or small ints, which become floats) of the
given size, minus its size before, per byte of body.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.service_clients import PLUGIN, PROTO, GrpcClient, MsgpackClient, RestClient, Service  # noqa: E402

CLIENTS: Dict[str, Callable[[int], Any]] = {
    "rest": RestClient,
    "grpc": lambda port: GrpcClient(port, str(PROTO)),
    "msgpack-rpc": MsgpackClient,
}


def measure(make_call: Callable[[], Callable[[int], Any]], clients: int, seconds: float) -> Dict[str, float]:
    """Run ``clients`` threads, each calling its own ``make_call()`` for ``seconds``; calls/s and latencies."""
    latencies: List[List[float]] = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)

    def run(k: int) -> None:
        call = make_call()
        start.wait()
        end = time.perf_counter() + seconds
        i = 0
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                return
            call(i)
            latencies[k].append(time.perf_counter() - t0)
            i += 1

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    flat = sorted(x for per in latencies for x in per)
    return {"calls": len(flat), "calls_per_s": len(flat) / elapsed,
            "p50_ms": statistics.median(flat) * 1e3, "p99_ms": flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1e3}


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each path (default 2)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--ray", action="store_true",
                        help="also print the Ray Serve table: 1, 2 and 4 replicas (benchmarks/ray_replicas.py)")
    parser.add_argument("--body-mib", type=float, action="append", default=None, metavar="MIB",
                        help="REST body sizes for the memory table (repeatable; default 1 and 8)")
    args = parser.parse_args(argv)
    args.body_mib = args.body_mib or [1.0, 8.0]
    from ekdsl.host import Emulator

    results: Dict[str, Dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as sock, Emulator(str(PLUGIN), socket_dir=sock) as emu:
        handle = emu.function("add")
        results["portable function Exec, 1 caller"] = measure(lambda: lambda i: handle.exec(i, 1), 1, args.seconds)
    for protocol, client in CLIENTS.items():
        svc = Service(protocol)
        opened: List[Any] = []

        def make_call(client: Any = client, port: int = svc.port, opened: List[Any] = opened) -> Callable[[int], Any]:
            conn = client(port)
            opened.append(conn)
            return lambda i: conn.call("add", i, 1)

        try:
            for clients in (1, 8):
                name = f"service {protocol}, {clients} client{'s' if clients > 1 else ''}"
                results[name] = measure(make_call, clients, args.seconds)
        finally:
            for conn in opened:
                conn.close()
            svc.stop()
    print(f"{'path':44} {'calls/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in results.items():
        print(f"{name:44} {r['calls_per_s']:10.0f} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f}")
    memory = body_memory(args.body_mib)
    print()
    print(f"{'REST request body':44} {'peak RSS +MiB':>14} {'bytes/byte':>10}")
    for name, grown in memory.items():
        mib = float(name.split()[0])
        print(f"{name:44} {grown / 2**20:14.1f} {grown / (mib * 2**20):10.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"calls": results, "body_memory": memory}, indent=2),
                                   encoding="utf-8")
    if args.ray:
        print()
        sys.path.insert(0, str(HERE))
        import ray_replicas

        return int(ray_replicas.main(["--seconds", str(args.seconds)]))
    return 0


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


BODIES = {"floats": "1.25", "small ints": "7"}  # list items of the request body


def body_memory(sizes: List[float]) -> Dict[str, int]:
    """Peak resident growth of a fresh REST service for one ``stats(values)`` call per body size (MiB) and kind."""
    grown: Dict[str, int] = {}
    for mib, (kind, item) in ((m, k) for m in sizes for k in BODIES.items()):
        size = int(mib * 2**20)
        count = size // len(item + ", ")
        body = ('{"values": [' + ", ".join([item] * count) + "]}").encode()
        svc = Service("rest", "--max-body", str(len(body) + 1024), "--body-timeout", "60", "--call-timeout", "60")
        try:
            client = RestClient(svc.port, timeout=120)
            client.call("add", 1, 1)  # warmed up: the first call's imports are not the body's
            before = _status(svc.proc.pid, "VmRSS")
            client.call("stats", body=body)
            grown[f"{mib:g} MiB list of {kind}"] = _status(svc.proc.pid, "VmHWM") - before
            client.close()
        finally:
            svc.stop()
    return grown


if __name__ == "__main__":
    sys.exit(main())
