"""What a dynamic property and a shared connection cost a sink, per row, in this process.

    python benchmarks/dynamic.py                # 50,000 rows per case, 7 runs
    python benchmarks/dynamic.py --quick --json out.json

A ``dict`` sink (one call per row) runs on the runtime's own runner under ``InProcess`` (no sockets), fed
messages of 100 rows with ``requireAck``: plain; with a shared connection; with a dynamic property holding a
constant; with ``{{.device}}`` and ``sendSingle`` off (evaluated per event); with ``{{.device}}``
and ``{{.site.floor}}`` per row (``sendSingle`` on, a batch of rows). The CPU microseconds per row (this
process, ``time.process_time``) are the median of ``--runs`` runs, the cases alternating; the template's own
render is timed apart.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Dict, Iterator, List, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ekdsl import Param, Plugin, Template  # noqa: E402
from ekdsl.codec import dumps  # noqa: E402
from ekdsl.host import InProcess  # noqa: E402

plugin = Plugin("benchdynamic")
ROWS = 100


class Client:
    def __init__(self) -> None:
        self.n = 0


@plugin.connection
def client(name: str = "c") -> Iterator[Client]:
    yield Client()


@plugin.sink
def plain(row: Dict[str, Any]) -> None:
    pass


@plugin.sink
def shared(row: Dict[str, Any], c: Annotated[Client, client]) -> None:
    c.n += 1


@plugin.sink
def dynamic(row: Dict[str, Any], topic: Annotated[str, Param(dynamic=True)] = "t",
            floor: Annotated[int, Param(dynamic=True)] = 0) -> None:
    pass


CASES: List[Tuple[str, str, Dict[str, Any]]] = [
    ("plain", "plain", {}),
    ("shared connection", "shared", {}),
    ("dynamic, a constant", "dynamic", {"topic": "devices"}),
    ("dynamic per event", "dynamic", {"topic": '{{index . 0 "device"}}'}),
    ("dynamic per row (2 templates)", "dynamic", {"topic": "devices/{{.device}}", "floor": "{{.site.floor}}",
                                                  "sendSingle": True}),
]


def per_row(symbols: InProcess, symbol: str, config: Dict[str, Any], messages: int) -> float:
    """CPU microseconds per row for ``messages`` messages of ROWS rows."""
    snk = symbols.sink(symbol, {**config, "requireAck": True}, rule=f"{symbol}{len(config)}")
    rows = [{"device": f"d{i % 7}", "site": {"floor": i % 3}, "v": i} for i in range(ROWS)]
    payload = dumps(rows)
    assert snk.send(payload) is None  # warm up
    cpu = time.process_time()
    for _ in range(messages):
        snk.send(payload)
    cpu = time.process_time() - cpu
    snk.stop()
    return cpu / (messages * ROWS) * 1e6


def render_us(n: int) -> float:
    tpl, row = Template("devices/{{.device}}/{{.site.floor}}"), {"device": "d1", "site": {"floor": 2}}
    cpu = time.process_time()
    for _ in range(n):
        tpl.render(row)
    return (time.process_time() - cpu) / n * 1e6


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000, help="rows per case and run")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="2,000 rows, 1 run (a smoke run)")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args(argv)
    rows, runs = (2_000, 1) if args.quick else (args.rows, args.runs)
    samples: Dict[str, List[float]] = {label: [] for label, _, _ in CASES}
    samples["Template.render, 2 fields"] = []
    with InProcess(plugin) as symbols:
        for _ in range(runs):  # the cases alternate, so that the machine's drift spreads over all of them
            for label, symbol, config in CASES:
                samples[label].append(per_row(symbols, symbol, config, max(1, rows // ROWS)))
            samples["Template.render, 2 fields"].append(render_us(rows))
    figures = {label: statistics.median(values) for label, values in samples.items()}
    base = figures["plain"]
    print(f"CPU per row, dict sink, messages of {ROWS} rows, median of {runs} run(s)")
    print(f"{'case':<34}{'µs/row':>9}{'vs plain':>10}")
    for label, value in figures.items():
        ratio = f"{value / base:.2f}x" if not label.startswith("Template") else ""
        print(f"{label:<34}{value:>9.2f}{ratio:>10}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
