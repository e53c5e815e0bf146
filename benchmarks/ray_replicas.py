"""The REST service on Ray Serve with 1, 2 and 4 replicas: calls/s and latency, trivial and CPU-heavy functions.

    python benchmarks/ray_replicas.py               # 3 s per row (needs pip install -e '.[ray]')
    python benchmarks/ray_replicas.py --seconds 1 --replicas 1 2 --json out.json

A local Ray cluster is started here (its replicas take half a logical CPU each, so 4 fit on 2 cores) and torn down.
Each row is ``ekdsl.service.ray_serve:app`` with that many replicas (Ray's other defaults), called through Ray's
HTTP proxy by 1 or 8 clients (threads of this process, one keep-alive connection each) sending what eKuiper's
REST executor sends. ``add`` is trivial; ``burn`` spends about ``--burn-ms`` of pure-Python CPU per call (its
rounds are measured here first). The ``uvicorn`` rows are ``python -m ekdsl service --protocol rest``, one
process, for reference. Latencies are per call as each client sees it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from services import measure  # noqa: E402

from tests.service_clients import FIELDS, REPLY, RestClient, Service  # noqa: E402

PLUGIN = HERE / "plugins" / "benchserve.py"
FIELDS["burn"] = [("rounds", "int64", False)]  # the client's proto types for benchserve's burn (add has the test's)
REPLY["burn"] = "int64"
REPLICAS = (1, 2, 4)
CLIENTS = (1, 8)


def rounds_for(ms: float) -> int:
    """How many ``burn`` rounds take ``ms`` of CPU time here (the best of three tries)."""
    sys.path.insert(0, str(PLUGIN.parent))
    from benchserve import burn

    probe = 100_000
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        burn(probe)
        best = min(best, time.process_time() - t0)
    return max(1, int(probe * ms / 1e3 / best))


def rows(port: int, prefix: str, label: str, calls: Dict[str, List[Any]], seconds: float,
         results: Dict[str, Dict[str, float]]) -> None:
    """Measure each function with 1 and 8 clients against the service at ``port``/``prefix``."""
    for function, args in calls.items():
        first = RestClient(port, timeout=60, prefix=prefix)
        first.call(function, *args)  # fails here, not in a client thread; the replicas have started
        first.close()
        for clients in CLIENTS:
            opened: List[RestClient] = []

            def make_call(function: str = function, args: List[Any] = args,
                          opened: List[RestClient] = opened) -> Callable[[int], Any]:
                conn = RestClient(port, timeout=60, prefix=prefix)
                opened.append(conn)
                return lambda i: conn.call(function, *args)

            try:
                results[f"{label}|{function}|{clients}"] = measure(make_call, clients, seconds)
            finally:
                for conn in opened:
                    conn.close()


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each row (default 3)")
    parser.add_argument("--burn-ms", type=float, default=20.0, help="CPU per burn call (default 20 ms)")
    parser.add_argument("--replicas", type=int, nargs="+", default=list(REPLICAS),
                        help="replica counts to measure (default 1 2 4)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    from ray import serve

    from ekdsl.service.ray_serve import app
    from tests.ray_local import local_cluster

    rounds = rounds_for(args.burn_ms)
    calls: Dict[str, List[Any]] = {"add": [2, 40], "burn": [rounds]}
    results: Dict[str, Dict[str, float]] = {}
    svc = Service("rest", plugin=PLUGIN)
    try:
        rows(svc.port, "", "uvicorn, 1 proc", calls, args.seconds, results)
    finally:
        svc.stop()
    with local_cluster(num_cpus=os.cpu_count() or 2) as cluster:
        for n in args.replicas:
            serve.run(app({"target": str(PLUGIN), "num_replicas": str(n), "num_cpus": "0.5"}), name="bench",
                      route_prefix="/bench")
            rows(cluster.port, "/bench", f"ray, {n} replica{'s' if n > 1 else ''}", calls, args.seconds, results)
            serve.delete("bench")
    print(f"{os.cpu_count()} CPUs; burn({rounds}) is about {args.burn_ms:g} ms of CPU here; {args.seconds:g} s a row")
    print(f"{'server':16} {'call':5} {'clients':>7} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in results.items():
        server, function, clients = name.split("|")
        print(f"{server:16} {function:5} {clients:>7} {r['calls_per_s']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": rounds, "results": results}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
