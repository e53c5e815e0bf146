"""ekdsl vs the official Python SDK through a real eKuiper server: rows/s and eKuiper's own latency metrics.

    EKDSL_EKUIPER_URL=http://127.0.0.1:9081 python benchmarks/ekuiper_e2e.py
    python benchmarks/ekuiper_e2e.py --url http://127.0.0.1:9081 --seconds 5 --runs 3 --json out.json

The same minimal plugin in both (``plugins/benchek.py`` and ``plugins/benchsdk/``), installed side by side on
the same server under names unique to the run, drives the same rules (each run of a rule alternates between
the plugins, each run starting with the next one, so that all see the same machine load):

* plugin source -> ``SELECT *`` -> built-in ``nop`` sink;
* built-in ``simulator`` source (one row per 1 µs tick) -> plugin function -> ``nop``;
* ``simulator`` -> ``SELECT *`` -> plugin sink, without and with ``requireAck``.

The rules wait rather than drop when a node's buffer is full (``disableBufferFullDiscard``): the simulator runs
faster than any plugin, and eKuiper logs one error line per dropped row (gigabytes a run), whose writes stalled
whole rules for seconds. Rows/s is the growth of the rule's ``records_out`` metric at its last node over
``--seconds``; the latencies are eKuiper's ``process_latency_us`` of the node that runs plugin code (median of
samples taken every 0.25 s); with eKuiper on this machine, the CPU µs per row are the user + system time of the
plugin's processes and of the kuiperd that started them over the same seconds, from ``/proc``. The server runs the
plugins with its ``portable.pythonBin``, which needs pynng for the SDK plugin; the SDK itself is carried in that
plugin's zip (taken from ``--sdk-python``'s installation, as ``run.py`` makes it), as ekdsl is in its own.

``--ekdsl-from DIR`` vendors the ekdsl of another checkout (say, an older commit's worktree) in the ekdsl
plugin; ``--baseline DIR`` adds a third plugin carrying that checkout's ekdsl, whose runs alternate with the
other two, to compare two versions in pairs under the same load (columns ``base`` and ``ekdsl/base``).
``--only sink,function`` measures some of the paths.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
URL_ENV = "EKDSL_EKUIPER_URL"
sys.path[:0] = [str(ROOT), str(HERE)]

from run import export_with, renamed, sdk_python, sdk_source  # noqa: E402

# (key, title, stream kind, select, sink kind, sink props, node whose latency is eKuiper's cost of plugin code)
SCENARIOS: List[Tuple[str, str, str, str, str, Dict[str, Any], str]] = [
    ("source", "plugin source -> nop", "plugin", "*", "nop", {}, "source_"),
    ("function", "simulator -> plugin function -> nop", "sim", "{echo}(value) AS v", "nop", {}, "op_2_project_"),
    ("sink", "simulator -> plugin sink", "sim", "*", "plugin", {}, "sink_{snk}_"),
    ("sink_ack", "simulator -> plugin sink, requireAck", "sim", "*", "plugin", {"requireAck": True}, "sink_{snk}_"),
]


class Rest:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def call(self, method: str, path: str, body: Any = None, ok: Tuple[int, ...] = (200, 201)) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        text = raw.decode("utf-8", "replace")
        if status not in ok:
            raise SystemExit(f"ekuiper_e2e: {method} {path} -> {status} {text}")
        try:
            return json.loads(text)
        except ValueError:
            return text


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get(URL_ENV, ""), help=f"eKuiper's REST URL (default: ${URL_ENV})")
    ap.add_argument("--seconds", type=positive, default=5.0, help="measuring time per rule (default 5)")
    ap.add_argument("--runs", type=int, choices=range(1, 21), default=3, metavar="N",
                    help="runs of every rule per plugin; medians are reported (default 3)")
    ap.add_argument("--json", metavar="PATH", help="also write every sample and the medians to PATH")
    ap.add_argument("--sdk-python", help="a python with ekuiper==2.4.2 installed, whose SDK the SDK plugin carries "
                                         "(default: run.py's cached venv)")
    ap.add_argument("--ekdsl-from", metavar="DIR", default=str(ROOT),
                    help="the checkout whose ekdsl the ekdsl plugin carries (default: this one)")
    ap.add_argument("--baseline", metavar="DIR",
                    help="also run a plugin carrying the ekdsl of checkout DIR, alternating with the others")
    keys = [s[0] for s in SCENARIOS]
    ap.add_argument("--only", metavar="PATHS", default=",".join(keys),
                    help=f"comma-separated paths to measure, of {', '.join(keys)} (default: all)")
    args = ap.parse_args(argv)
    for option, folder in (("--ekdsl-from", args.ekdsl_from), ("--baseline", args.baseline)):
        if folder is not None and not (Path(folder) / "ekdsl" / "__init__.py").is_file():
            ap.error(f"{option}: no ekdsl package in {folder}")
    args.only = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = sorted(set(args.only) - set(keys))
    if unknown or not args.only:
        ap.error(f"--only: unknown path(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(keys)}")
    if not args.url:
        ap.error(f"needs a running eKuiper: pass --url or set {URL_ENV}")
    return args


def build_ekdsl(name: str, work: Path, source: Path = ROOT) -> Path:
    """benchek.py renamed to ``name``, its symbols to ``<name>src`` etc.; exported to a zip by, and carrying,
    the ekdsl of checkout ``source``."""
    text = renamed((HERE / "plugins" / "benchek.py").read_text(encoding="utf-8"), [
        ('Plugin("benchek"', f'Plugin("{name}"'),
        ("@plugin.source\n", f'@plugin.source(name="{name}src")\n'),
        ("@plugin.sink\n", f'@plugin.sink(name="{name}snk")\n'),
        ("@plugin.function\n", f'@plugin.function(name="{name}echo")\n'),
        ("@plugin.function(aggregate=True)", f'@plugin.function(name="{name}agg", aggregate=True)'),
    ])
    src = work / f"{name}.py"
    src.write_text(text, encoding="utf-8")
    export_with(source, src, work, "--zip")
    return work / f"{name}.zip"


def build_sdk(name: str, work: Path, sdk_py: str) -> Path:
    """The SDK plugin renamed likewise: ``<name>.json``, ``<name>.py``, ``sources/<name>src.yaml``, and the SDK
    package of ``sdk_py`` beside them (the plugin's folder comes first on its path)."""
    from ekdsl.package import FILE_MODE, zip_bytes

    code, syms = sdk_source(name)
    where = subprocess.run([sdk_py, "-c", "import ekuiper, os; print(os.path.dirname(ekuiper.__file__))"],
                           capture_output=True, text=True)
    if where.returncode != 0:
        raise SystemExit(f"ekuiper_e2e: {sdk_py} has no SDK (pip install ekuiper==2.4.2): {where.stderr[-300:]}")
    package = Path(where.stdout.strip())
    meta = {"version": "1", "language": "python", "executable": f"{name}.py", "sources": [syms["src"]],
            "sinks": [syms["snk"]], "functions": [syms["echo"], syms["agg"]]}
    files = {f"{name}.json": (json.dumps(meta).encode(), FILE_MODE), f"{name}.py": (code.encode(), 0o755),
             f"sources/{syms['src']}.yaml": (b"default: {}\n", FILE_MODE)}
    for path in sorted(package.rglob("*.py")):
        files[f"ekuiper/{path.relative_to(package).as_posix()}"] = (path.read_bytes(), FILE_MODE)
    path = work / f"{name}.zip"
    path.write_bytes(zip_bytes(files))
    return path


def _median(values: List[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def _stat(pid: int) -> List[str]:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...); none once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def _plugin_processes(plugin: str) -> Tuple[List[int], List[int]]:
    """Pids of the processes running ``plugin``'s files (its folder under plugins/portable) and of their parents
    (the kuiperd that started them); none of either when eKuiper runs on another machine."""
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:  # no /proc here
        return [], []
    needle = f"/plugins/portable/{plugin}/".encode()
    pids = []
    for entry in entries:
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    parents = {int(fields[1]) for fields in map(_stat, pids) if fields} - set(pids)
    return pids, sorted(parents)


def _cpu_ticks(pids: List[int]) -> Dict[int, int]:
    """User + system CPU clock ticks of each of ``pids`` still alive."""
    out = {}
    for pid in pids:
        fields = _stat(pid)
        if fields:
            out[pid] = int(fields[11]) + int(fields[12])
    return out


def _cpu_us_per_row(before: Dict[int, int], after: Dict[int, int], rows: float) -> float:
    """CPU µs per row of the processes alive at both readings (0 when there are none, or no rows)."""
    alive = before.keys() & after.keys()
    if not alive or rows <= 0:
        return 0.0
    return sum(after[p] - before[p] for p in alive) / os.sysconf("SC_CLK_TCK") / rows * 1e6


def measure(rest: Rest, rule: str, seconds: float, latency_prefix: str, plugin: str) -> Dict[str, float]:
    """Rows/s at the rule's last node and the median latency of the plugin's node, after a 1 s warm-up; with
    eKuiper on this machine, also the CPU µs per row of the plugin's processes and of kuiperd."""

    def status() -> Dict[str, Any]:
        s = rest.call("GET", f"/rules/{rule}/status")
        if s.get("status") != "running":
            raise SystemExit(f"ekuiper_e2e: rule {rule} is {s.get('status')}: {s.get('message')}")
        return dict(s)

    def out_total(s: Dict[str, Any]) -> float:
        return float(sum(v for k, v in s.items() if k.startswith("sink_") and k.endswith("_records_out_total")))

    time.sleep(1.0)
    plugin_pids, server_pids = _plugin_processes(plugin)
    cpu0 = _cpu_ticks(plugin_pids), _cpu_ticks(server_pids)
    first, t0 = status(), time.monotonic()
    lat: List[float] = []
    while time.monotonic() - t0 < seconds:
        time.sleep(0.25)
        s = status()
        lat += [float(v) for k, v in s.items() if k.startswith(latency_prefix) and k.endswith("_process_latency_us")]
    last, elapsed = status(), time.monotonic() - t0
    cpu1 = _cpu_ticks(plugin_pids), _cpu_ticks(server_pids)
    rows = out_total(last) - out_total(first)
    errors = float(sum(v for k, v in last.items() if k.endswith("_exceptions_total")))
    return {"rows_per_s": rows / elapsed, "latency_us": _median(lat),
            "plugin_cpu_us": _cpu_us_per_row(cpu0[0], cpu1[0], rows),
            "server_cpu_us": _cpu_us_per_row(cpu0[1], cpu1[1], rows), "exceptions": errors}


def run_rule(rest: Rest, name: str, key: str, run: int, args: argparse.Namespace, sim_key: str) -> Dict[str, float]:
    """One measurement of scenario ``key`` with plugin ``name``; its stream and rule are deleted afterwards."""
    _key, _title, stream_kind, select, sink_kind, props, lat = next(s for s in SCENARIOS if s[0] == key)
    # new names per run: right after a delete, eKuiper may still hold the old rule's sockets
    stream, rule = f"{name}_{key}_s{run}", f"{name}_{key}_r{run}"
    typ = f'TYPE="{name}src"' if stream_kind == "plugin" else f'TYPE="simulator", CONF_KEY="{sim_key}"'
    sink = {"nop": {}} if sink_kind == "nop" else {f"{name}snk": dict(props)}
    rest.call("POST", "/streams", {"sql": f'CREATE STREAM {stream} () WITH ({typ}, FORMAT="JSON")'})
    try:
        rest.call("POST", "/rules", {"id": rule, "sql": f"SELECT {select.format(echo=name + 'echo')} FROM {stream}",
                                     "actions": [sink], "options": {"disableBufferFullDiscard": True}})
        try:
            return measure(rest, rule, args.seconds, lat.format(snk=name + "snk"), name)
        finally:
            rest.call("DELETE", f"/rules/{rule}", ok=(200, 400, 404))
    finally:
        rest.call("DELETE", f"/streams/{stream}", ok=(200, 400, 404))


def run_all(rest: Rest, plugins: Dict[str, Tuple[str, Path]], args: argparse.Namespace, sim_key: str,
            log: Callable[[str], None]) -> Dict[str, Dict[str, List[Dict[str, float]]]]:
    """Every scenario, runs interleaved between the plugins so that all see the same machine load; each run
    starts with the next plugin, so that none always comes first."""
    samples: Dict[str, Dict[str, List[Dict[str, float]]]] = {impl: {} for impl in plugins}
    installed: List[str] = []
    try:
        for name, zip_path in plugins.values():
            rest.call("POST", "/plugins/portables", {"name": name, "file": f"file://{zip_path}"})
            installed.append(name)
        for key, *_rest in SCENARIOS:
            if key not in args.only:
                continue
            for run in range(args.runs):
                order = list(plugins.items())
                for impl, (name, _zip) in order[run % len(order):] + order[:run % len(order)]:
                    got = run_rule(rest, name, key, run, args, sim_key)
                    log(f"{impl:6} {key:9} run {run + 1}: {got['rows_per_s']:10.0f} rows/s  "
                        f"{got['latency_us']:8.0f} µs  CPU µs/row: plugin {got['plugin_cpu_us']:6.1f}, "
                        f"eKuiper {got['server_cpu_us']:6.1f}")
                    samples[impl].setdefault(key, []).append(got)
    finally:
        for name in installed:
            rest.call("DELETE", f"/plugins/portables/{name}", ok=(200, 400, 404))
    return samples


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def table(medians: Dict[str, Dict[str, Dict[str, float]]]) -> List[str]:
    base = "base" in medians
    head = f"{'path':40} {'metric':18} {'ekdsl':>10} {'sdk':>10} {'ekdsl/sdk':>10}"
    head += f" {'base':>10} {'ekdsl/base':>10}" if base else ""
    lines = [head, "-" * len(head)]
    for key, title, *_rest in SCENARIOS:
        if key not in medians["ekdsl"]:
            continue
        for metric, label in (("rows_per_s", "rows/s"), ("latency_us", "latency µs"),
                              ("plugin_cpu_us", "plugin CPU µs/row"), ("server_cpu_us", "eKuiper CPU µs/row")):
            if metric.endswith("_cpu_us") and not any(m[key][metric] for m in medians.values()):
                continue  # no CPU figures: eKuiper runs on another machine
            a, b = medians["ekdsl"][key][metric], medians["sdk"][key][metric]
            digits = 1 if metric.endswith("cpu_us") else 0
            line = (f"{title if metric == 'rows_per_s' else '':40} {label:18} {a:10.{digits}f} {b:10.{digits}f}"
                    f" {_ratio(a, b):>10}")
            if base:
                c = medians["base"][key][metric]
                line += f" {c:10.{digits}f} {_ratio(a, c):>10}"
            lines.append(line)
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    rest = Rest(args.url)
    about = rest.call("GET", "/")
    tag = uuid.uuid4().hex[:6]
    sim_key = f"bench{tag}"
    rest.call("PUT", f"/metadata/sources/simulator/confKeys/{sim_key}",
              {"interval": "1us", "loop": True, "data": [{"name": "bench", "value": 2021, "temp": 22.5}]})
    try:
        with tempfile.TemporaryDirectory(prefix="ek-e2e-") as tmp:
            work = Path(tmp)
            plugins = {"ekdsl": (f"bek{tag}", build_ekdsl(f"bek{tag}", work, Path(args.ekdsl_from))),
                       "sdk": (f"bsdk{tag}", build_sdk(f"bsdk{tag}", work, sdk_python(args.sdk_python)))}
            if args.baseline:
                plugins["base"] = (f"bbase{tag}", build_ekdsl(f"bbase{tag}", work, Path(args.baseline)))
            samples = run_all(rest, plugins, args, sim_key, lambda m: print(m, file=sys.stderr, flush=True))
    finally:
        rest.call("DELETE", f"/metadata/sources/simulator/confKeys/{sim_key}", ok=(200, 400, 404))
    medians = {impl: {key: {m: _median([s[m] for s in runs]) for m in runs[0]} for key, runs in by_key.items()}
               for impl, by_key in samples.items()}
    print(f"eKuiper {about.get('version')} at {args.url}; {args.runs} runs of {args.seconds:g} s per rule; medians"
          + ("" if Path(args.ekdsl_from).resolve() == ROOT else f"; ekdsl from {args.ekdsl_from}")
          + (f"; base: ekdsl from {args.baseline}" if args.baseline else ""))
    print("\n".join(table(medians)))
    if args.json:
        Path(args.json).write_text(json.dumps({"ekuiper": about, "seconds": args.seconds, "runs": args.runs,
                                               "samples": samples, "medians": medians}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
