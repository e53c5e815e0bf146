"""What each running instance costs a plugin process: threads, file descriptors and memory.

    python benchmarks/instances.py                   # 0, 100 and 500 of each, both transports
    python benchmarks/instances.py --counts 0,10 --transports native
    python benchmarks/instances.py --json out.json

For each transport and count N a fresh plugin (``plugins/benchidle.py``) is driven by the eKuiper
emulator: N sources (each sends one row, then waits), N sinks (each takes one payload and acks it), then
N of both; the plugin's threads, open descriptors and RSS are read from ``/proc`` while they all run.
"Per source" and "per sink" are the differences from the plugin with no instance, divided by N.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from driver import settle  # noqa: E402

from ekdsl import load_target  # noqa: E402
from ekdsl.host import Host  # noqa: E402
from ekdsl.package import export  # noqa: E402

Figures = Dict[str, float]


def sample(pid: int) -> Figures:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {line.split(":")[0]: line.split(":", 1)[1].split() for line in status}
    return {"threads": float(fields["Threads"][0]), "fds": float(len(os.listdir(f"/proc/{pid}/fd"))),
            "rss_mib": int(fields["VmRSS"][0]) / 1024}


def measure(main: str, transport: str, sources: int, sinks: int) -> Figures:
    """Start a plugin, run ``sources`` sources and ``sinks`` sinks, sample it, kill it."""
    with tempfile.TemporaryDirectory(prefix="ekb", dir="/tmp") as sockdir:
        env = {**os.environ, "EKDSL_TRANSPORT": transport}
        with Host("benchidle", main, socket_dir=sockdir, env=env, init_timeout=60) as host:
            assert host.process is not None
            for i in range(sources):
                host.start_source("once", {}, op=f"s{i}").rows(1)
            for i in range(sinks):
                host.start_sink("drop", {"requireAck": True}, op=f"k{i}").send(b"{}")
            settle(host.process.pid)  # the handshake comes before the runtime is imported: let it finish
            return sample(host.process.pid)


def run(counts: List[int], transports: List[str]) -> Dict[str, Dict[str, Figures]]:
    model = load_target(str(HERE / "plugins" / "benchidle.py")).model()
    out: Dict[str, Dict[str, Figures]] = {}
    with tempfile.TemporaryDirectory() as workdir:
        main = f"{export(model, workdir).directory}/main.py"
        for transport in transports:
            res = out.setdefault(transport, {})
            for n in counts:
                shapes: List[Tuple[int, int]] = [(0, 0)] if n == 0 else [(n, 0), (0, n), (n, n)]
                for src, snk in shapes:
                    res[f"{src}+{snk}"] = measure(main, transport, src, snk)
    return out


def per_instance(res: Dict[str, Figures], n: int) -> Tuple[Optional[Figures], Optional[Figures]]:
    base = res.get("0+0")
    src, snk = res.get(f"{n}+0"), res.get(f"0+{n}")
    if base is None or src is None or snk is None or n == 0:
        return None, None
    return ({k: (src[k] - base[k]) / n for k in base}, {k: (snk[k] - base[k]) / n for k in base})


def table(out: Dict[str, Dict[str, Figures]], counts: List[int]) -> str:
    head = f"{'transport':10}{'sources':>9}{'sinks':>7}{'threads':>9}{'fds':>7}{'RSS MiB':>9}"
    lines = [head, "-" * len(head)]
    for transport, res in out.items():
        for key, fig in res.items():
            src, snk = key.split("+")
            lines.append(f"{transport:10}{src:>9}{snk:>7}{fig['threads']:>9.0f}{fig['fds']:>7.0f}"
                         f"{fig['rss_mib']:>9.1f}")
    lines += ["", f"{'transport':10}{'N':>5}  {'per source: threads, fds, KiB':32}{'per sink: threads, fds, KiB':30}"]
    for transport, res in out.items():
        for n in counts:
            src, snk = per_instance(res, n)
            if src is None or snk is None:
                continue
            cells = [f"{fig['threads']:>6.2f} {fig['fds']:>7.2f} {fig['rss_mib'] * 1024:>8.0f}" for fig in (src, snk)]
            lines.append(f"{transport:10}{n:>5}  {cells[0]}{'':9}{cells[1]}")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="0,100,500", help="instances of each kind, comma-separated")
    ap.add_argument("--transports", default="native,pynng", help="the plugin's transports, comma-separated")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    counts = sorted({0, *(int(x) for x in args.counts.split(","))})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8 * max(counts) + 256  # the emulator's own sockets: about 5 per source and sink pair
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
    out = run(counts, args.transports.split(","))
    print(table(out, counts))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
