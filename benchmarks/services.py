"""One trivial ``@function`` called through eKuiper's portable function channel and as an external service.

    python benchmarks/services.py              # 2 s per path
    python benchmarks/services.py --seconds 0.3 --json out.json

The portable path is the emulator's host calling ``Exec`` over nng IPC (one call at a time, as one rule does);
the services are ``python -m ekdsl service`` processes called by clients that send what eKuiper's rest and
msgpack-rpc executors send, over TCP on 127.0.0.1, with 1 and 8 concurrent clients (one connection each).
Latencies are per call as each client sees it.
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

from tests.service_clients import MsgpackClient, RestClient  # noqa: E402
from tests.test_service import PLUGIN, Service  # noqa: E402


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
    args = parser.parse_args(argv)
    from ekdsl.host import Emulator

    results: Dict[str, Dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as sock, Emulator(str(PLUGIN), socket_dir=sock) as emu:
        handle = emu.function("add")
        results["portable function Exec, 1 caller"] = measure(lambda: lambda i: handle.exec(i, 1), 1, args.seconds)
    for protocol, client in (("rest", RestClient), ("msgpack-rpc", MsgpackClient)):
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
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
