"""ekdsl vs the official Python SDK vs a raw pynng plugin, side by side, through one host driver.

    python benchmarks/run.py                 # 3 runs of 2 s per path; medians
    python benchmarks/run.py --quick         # a seconds-long smoke run
    python benchmarks/run.py --json out.json
    python benchmarks/run.py --ekdsl-from ../old   # the ekdsl plugin carrying another checkout's ekdsl

The official SDK (PyPI ``ekuiper`` 2.4.2, pinning ``pynng==0.8.1``) is installed in its own virtual
environment, with orjson beside it (``--sdk-python`` to reuse one). All plugins run with that interpreter,
as on eKuiper's slim-python image: the raw pynng plugin on the same pynng, the ekdsl plugin with ekdsl
vendored in its package (its native transport needs no pynng), twice: decoding JSON with the standard
library (``ekdsl``, what runs with nothing installed) and with orjson (``ekdsl+orjson``, left out when
that interpreter has no orjson).
Each plugin is driven by ``driver.py`` in its own process. "CPU µs" is the plugin process's CPU per
row or call, independent of the host's speed; "host µs" is the driver's own, to show when it is the
bottleneck.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PLUGINS = ("ekdsl", "ekdsl+orjson", "sdk", "raw")
SDK_VERSION = "2.4.2"

ROWS = [
    ("source, 40 B rows", "source_small", "rows/s"),
    ("source, 1 KiB rows", "source_1k", "rows/s"),
    ("sink, per row, no ack", "sink_row", "rows/s"),
    ("sink, per row, no ack, fast host", "sink_row_fast_host", "rows/s"),
    ("sink, per row, requireAck", "sink_row_ack", "rows/s"),
    ("sink, batches of 50, no ack", "sink_batch", "rows/s"),
    ("sink, batches of 50, requireAck", "sink_batch_ack", "rows/s"),
    ("function Exec, trivial", "func_echo", "calls/s"),
    ("function Exec, aggregate of 1000", "func_agg1000", "calls/s"),
]


def sdk_python(given: Optional[str]) -> str:
    if given:
        return given
    venv = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ekdsl-bench" / f"ekuiper-{SDK_VERSION}"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"ekuiper=={SDK_VERSION}", "orjson"], check=True)
    return str(python)


def has_orjson(python: str) -> bool:
    return subprocess.run([python, "-c", "import orjson"], capture_output=True).returncode == 0


def renamed(text: str, pairs: List[Tuple[str, str]]) -> str:
    """``text`` with each ``old`` of ``pairs`` replaced (each must be there)."""
    for old, new in pairs:
        if old not in text:
            raise SystemExit(f"cannot rename the benchmark plugin: {old!r} not found")
        text = text.replace(old, new)
    return text


def sdk_source(name: str) -> Tuple[str, Dict[str, str]]:
    """The SDK plugin's code renamed to plugin ``name`` with symbols ``<name>src`` etc., and those names.

    The SDK's sockets are fixed ``/tmp`` paths named after the plugin and its functions (``plugin_<name>.ipc``,
    ``func_<symbol>.ipc``): with names of its own, a run never meets another run's plugin, nor a server's."""
    syms = {k: f"{name}{k}" for k in ("src", "snk", "echo", "agg")}
    code = renamed((HERE / "plugins" / "benchsdk" / "benchsdk.py").read_text(encoding="utf-8"), [
        ('PluginConfig("benchsdk", {"src"', f'PluginConfig("{name}", {{"{syms["src"]}"'),
        ('{"snk"', f'{{"{syms["snk"]}"'),
        ('{"echo": lambda: echo, "agg"', f'{{"{syms["echo"]}": lambda: echo, "{syms["agg"]}"'),
    ])
    return code, syms


_RUNS = itertools.count(1)


def export_with(source: Path, plugin: Path, out: Path, *options: str) -> None:
    """``python -m ekdsl export PLUGIN -o OUT`` by the ekdsl of checkout ``source``, which the plugin then carries."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    subprocess.run([sys.executable, "-m", "ekdsl", "export", str(plugin), "-o", str(out), *options], check=True,
                   cwd=source, env=env, stdout=subprocess.DEVNULL)


def specs(sdk_py: str, secs: float, workdir: str, ekdsl_from: Path = ROOT) -> Dict[str, Dict[str, Any]]:
    """The plugins, each with sockets no other run shares: ekdsl's and the raw plugin's in a directory of this
    call's, the SDK's under names of this call's. The ekdsl plugin carries the ekdsl of ``ekdsl_from``."""
    tag = f"{os.getpid()}x{next(_RUNS)}"
    work = Path(workdir) / tag
    for sockets in ("s1", "s2", "s3"):
        (work / sockets).mkdir(parents=True)
    export_with(ekdsl_from, HERE / "plugins" / "benchek.py", work)
    exported = work / "benchek"
    sdk_name = f"bsdk{tag}"
    code, sdk_syms = sdk_source(sdk_name)
    (work / f"{sdk_name}.py").write_text(code, encoding="utf-8")
    common = {"python": sdk_py, "secs": secs}
    return {
        "ekdsl": {**common, "name": "benchek", "exe": f"{exported}/main.py", "env": {"EKDSL_JSON": "stdlib"},
                  "socket_dir": str(work / "s1")},
        "ekdsl+orjson": {**common, "name": "benchek", "exe": f"{exported}/main.py", "env": {"EKDSL_JSON": "orjson"},
                         "socket_dir": str(work / "s2")},
        "sdk": {**common, "name": sdk_name, "exe": str(work / f"{sdk_name}.py"), "symbols": sdk_syms},
        "raw": {**common, "name": "benchraw", "exe": str(HERE / "plugins" / "benchraw.py"),
                "socket_dir": str(work / "s3")},
    }


def symbol(spec: Dict[str, Any], name: str) -> str:
    """What the plugin of ``spec`` calls the benchmark's symbol ``name`` (src, snk, echo, agg)."""
    return str(spec.get("symbols", {}).get(name, name))


def drive(spec: Dict[str, Any]) -> Dict[str, Any]:
    proc = subprocess.run([sys.executable, str(HERE / "driver.py"), json.dumps(spec)], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"driver failed for {spec['name']}:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    result: Dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def median_of(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = {k: statistics.median(r[key][k] for r in runs) for k in value}
        else:
            out[key] = statistics.median(r[key] for r in runs)
    return out


def fmt(x: Optional[float], digits: int = 0) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def ratio(a: Optional[float], b: Optional[float]) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def table(res: Dict[str, Dict[str, Any]]) -> str:
    cols = [p for p in PLUGINS if p in res]
    ratios = [(p, f"{'+orjson' if p != 'ekdsl' else p}/sdk") for p in ("ekdsl", "ekdsl+orjson") if p in res]
    head = f"{'path':36} {'metric':10}" + "".join(f"{c:>13}" for c in cols) + "".join(f"{t:>13}" for _, t in ratios)
    lines = [head, "-" * len(head)]

    def row(label: str, metric: str, values: Dict[str, Optional[float]], digits: int = 0) -> None:
        cells = "".join(f"{fmt(values.get(c), digits):>13}" for c in cols)
        cells += "".join(f"{ratio(values.get(p), values.get('sdk')):>13}" for p, _ in ratios)
        lines.append(f"{label:36} {metric:10}{cells}")

    for label, key, unit in ROWS:
        row(label, unit, {c: res[c][key]["per_s"] for c in cols})
        row("", "CPU µs", {c: res[c][key]["plugin_us"] for c in cols}, 1)
        row("", "host µs", {c: res[c][key]["host_us"] for c in cols}, 1)
        if key.startswith("func"):
            row("", "p50 ms", {c: res[c][key]["p50_ms"] for c in cols}, 3)
            row("", "p99 ms", {c: res[c][key]["p99_ms"] for c in cols}, 3)
    row("start → handshake", "ms", {c: res[c]["handshake_ms"] for c in cols}, 1)
    row("idle RSS", "MiB", {c: res[c]["idle_rss_kib"] / 1024 for c in cols}, 1)
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--secs", type=float, default=2.0, help="seconds measured per path")
    ap.add_argument("--quick", action="store_true", help="one run, 0.3 s per path (a smoke test)")
    ap.add_argument("--only", default=",".join(PLUGINS), help=f"comma-separated, of: {','.join(PLUGINS)}")
    ap.add_argument("--sdk-python", help="a python with ekuiper==2.4.2 installed (default: a cached venv)")
    ap.add_argument("--json", help="also write the medians (and every run) to this file")
    ap.add_argument("--ekdsl-from", metavar="DIR", type=Path, default=ROOT,
                    help="the checkout whose ekdsl the ekdsl plugin carries (default: this one)")
    args = ap.parse_args(argv)
    runs, secs = (1, 0.3) if args.quick else (args.runs, args.secs)
    only = [p for p in args.only.split(",") if p]
    unknown = set(only) - set(PLUGINS)
    if unknown:
        ap.error(f"--only: unknown plugin(s) {', '.join(sorted(unknown))}; choose from {', '.join(PLUGINS)}")
    sdk_py = sdk_python(args.sdk_python)
    if "ekdsl+orjson" in only and not has_orjson(sdk_py):
        print(f"note: {sdk_py} has no orjson; ekdsl+orjson left out ({sdk_py} -m pip install orjson)")
        only.remove("ekdsl+orjson")
    with tempfile.TemporaryDirectory(prefix="ekdsl-bench-") as work:
        all_specs = specs(sdk_py, secs, work, args.ekdsl_from)
        raw: Dict[str, List[Dict[str, Any]]] = {p: [] for p in only}
        for _ in range(runs):
            for name in only:
                raw[name].append(drive(all_specs[name]))
    medians = {name: median_of(r) for name, r in raw.items()}
    print(f"medians of {runs} run(s), {secs:g} s per path, {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}")
    print(table(medians))
    if args.json:
        Path(args.json).write_text(json.dumps({"medians": medians, "runs": raw}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
