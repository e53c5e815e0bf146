"""How fast a plugin starts: process start → handshake, cold and warm bytecode, and install → running on a
real eKuiper server; ekdsl vs the official Python SDK, side by side.

    python benchmarks/start.py                          # 7 starts of each kind, medians
    python benchmarks/start.py --runs 11 --json out.json
    EKDSL_EKUIPER_URL=http://127.0.0.1:9081 python benchmarks/start.py   # and install → running there
    python benchmarks/start.py --ekdsl-from ../old      # the ekdsl plugin carrying another checkout's ekdsl

The plugins are ``run.py``'s (``plugins/benchek.py`` and ``plugins/benchsdk/``), each in a folder as eKuiper
unpacks it: the ekdsl plugin as exported (ekdsl vendored beside ``main.py``), the SDK plugin with the SDK's
package copied beside its script, as its zip carries it. Both run with the SDK's interpreter (``--sdk-python``,
default ``run.py``'s cached venv; pynng comes from there). The host is ekdsl's emulator in this process; the
time runs from just before the process is spawned until the handshake arrives.

* **cold**: a fresh copy of the folder, no ``__pycache__`` (a plugin's first start after an install);
* **warm**: the same folder started again (its bytecode written by the first start);
* **CPU ms**: the plugin process's CPU time (all threads, ``/proc``) when the handshake has arrived, which
  does not swing with the machine's load as the wall-clock time does (it includes the little the plugin did
  after sending the handshake, before the host looked);
* **ready**: process start → the answer to a first function call (its start command, then one call): the
  plugin has imported its module and serves. Cold, like an install.

With a server (``--url`` or ``$EKDSL_EKUIPER_URL``), each plugin is also installed ``--runs`` times (a zip of
its own name each time, alternating between the two): **install → running** runs from ``POST
/plugins/portables`` until ``GET /plugins/portables/NAME/status`` says ``running`` (eKuiper answers the POST
once the handshake came: unzipping, starting the process and the handshake, with the server's
``portable.pythonBin``). Every plugin installed is deleted again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
URL_ENV = "EKDSL_EKUIPER_URL"
sys.path[:0] = [str(ROOT), str(HERE)]

from driver import plugin_cpu  # noqa: E402
from ekuiper_e2e import Rest, build_ekdsl, build_sdk  # noqa: E402
from run import export_with, sdk_python, sdk_source  # noqa: E402

from ekdsl.host import Host  # noqa: E402

IMPLS = ("ekdsl", "sdk")
LOCAL = (("cold", "start → handshake, cold bytecode"), ("warm", "start → handshake, warm bytecode"),
         ("cold_cpu", "  its CPU ms, cold"), ("warm_cpu", "  its CPU ms, warm"),
         ("ready", "start → first call answered, cold"))


class Plugin:
    """One plugin's unpacked folder: ``fresh()`` copies it anew (no bytecode)."""

    def __init__(self, name: str, folder: Path, script: str, func: str, python: str, work: Path,
                 tmp_sockets: bool = False) -> None:
        self.name, self.folder, self.script, self.func, self.python = name, folder, script, func, python
        self.work = work
        self.tmp_sockets = tmp_sockets  # the SDK's are fixed /tmp paths named after the plugin (unique to a run)
        self.copies = 0

    def fresh(self) -> Path:
        self.copies += 1
        dest = self.work / f"{self.folder.name}-{self.copies}"
        shutil.copytree(self.folder, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return dest

    def host(self, folder: Path, sockets: Path) -> Host:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
        sockets.mkdir(exist_ok=True)
        return Host(self.name, str(folder / self.script), python=self.python, init_timeout=60, env=env,
                    socket_dir=None if self.tmp_sockets else str(sockets))


def ekdsl_plugin(work: Path, python: str, source: Path) -> Plugin:
    export_with(source, HERE / "plugins" / "benchek.py", work / "ek")
    return Plugin("benchek", work / "ek" / "benchek", "main.py", "echo", python, work)


def sdk_plugin(work: Path, python: str) -> Plugin:
    name = f"bsdk{os.getpid()}"
    code, syms = sdk_source(name)
    folder = work / "sdk" / name
    folder.mkdir(parents=True)
    (folder / f"{name}.py").write_text(code, encoding="utf-8")
    where = subprocess.run([python, "-c", "import ekuiper, os; print(os.path.dirname(ekuiper.__file__))"],
                           capture_output=True, text=True, check=True)
    shutil.copytree(where.stdout.strip(), folder / "ekuiper", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return Plugin(name, folder, f"{name}.py", syms["echo"], python, work, tmp_sockets=True)


def start_once(plugin: Plugin, folder: Path, sockets: Path, first_command: bool) -> Dict[str, float]:
    """Start the plugin in ``folder``: ms to its handshake and, with ``first_command``, to the answer to a
    first function call."""
    host = plugin.host(folder, sockets)
    try:
        host.start()
        assert host.process is not None
        out = {"handshake": host.handshake_ms, "cpu": plugin_cpu(host.process.pid) * 1000}
        if first_command:
            host.function(plugin.func).exec("hello")
            out["ready"] = (time.monotonic() - host.process.started) * 1000
        return out
    finally:
        host.close()


def local(plugins: Dict[str, Plugin], runs: int, work: Path,
          log: Callable[[str], None]) -> Dict[str, Dict[str, List[float]]]:
    samples: Dict[str, Dict[str, List[float]]] = {impl: {key: [] for key, _ in LOCAL} for impl in plugins}
    for run in range(runs):
        for impl, plugin in plugins.items():
            sockets = work / f"sockets-{impl}-{run}"
            got = start_once(plugin, plugin.fresh(), sockets, first_command=True)
            folder = plugin.fresh()
            start_once(plugin, folder, sockets, first_command=False)  # writes the bytecode
            again = start_once(plugin, folder, sockets, first_command=False)
            warm = again["handshake"]
            for key, value in (("cold", got["handshake"]), ("cold_cpu", got["cpu"]), ("ready", got["ready"]),
                               ("warm", warm), ("warm_cpu", again["cpu"])):
                samples[impl][key].append(value)
            log(f"{impl:6} run {run + 1}: cold {got['handshake']:6.1f} ms  warm {warm:6.1f} ms  "
                f"ready {got['ready']:6.1f} ms")
    return samples


def install_running(rest: Rest, name: str, zip_path: Path) -> float:
    """ms from POST /plugins/portables until the plugin's status is ``running``; the plugin is deleted after."""
    t0 = time.monotonic()
    try:
        rest.call("POST", "/plugins/portables", {"name": name, "file": f"file://{zip_path}"})
        while True:
            status = rest.call("GET", f"/plugins/portables/{name}/status")
            if status.get("status") == "running":
                return (time.monotonic() - t0) * 1000
            if time.monotonic() - t0 > 60:
                raise SystemExit(f"start.py: plugin {name} is {status.get('status')} after 60 s: {status}")
            time.sleep(0.001)
    finally:
        rest.call("DELETE", f"/plugins/portables/{name}", ok=(200, 400, 404))


def server(url: str, runs: int, work: Path, sdk_py: str, source: Path,
           log: Callable[[str], None]) -> Dict[str, List[float]]:
    """install → running, ``runs`` times per plugin, alternating; names unique to each install (eKuiper keeps
    a deleted plugin's control socket bound)."""
    rest = Rest(url)
    tag = uuid.uuid4().hex[:6]
    samples: Dict[str, List[float]] = {"ekdsl": [], "sdk": []}
    for run in range(runs):
        for impl in IMPLS:
            name = f"{'sek' if impl == 'ekdsl' else 'ssdk'}{tag}n{run}"
            folder = work / name
            folder.mkdir()
            zip_path = build_ekdsl(name, folder, source) if impl == "ekdsl" else build_sdk(name, folder, sdk_py)
            ms = install_running(rest, name, zip_path)
            samples[impl].append(ms)
            log(f"{impl:6} install {run + 1}: {ms:6.1f} ms")
    return samples


def row(label: str, values: Dict[str, List[float]]) -> str:
    a, b = (statistics.median(values[impl]) for impl in IMPLS)
    return f"{label:40} {a:10.1f} {b:10.1f} {a / b:9.2f}x"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, choices=range(1, 51), default=7, metavar="N",
                    help="starts (and installs) of each kind per plugin; medians are reported (default 7)")
    ap.add_argument("--url", default=os.environ.get(URL_ENV, ""),
                    help=f"eKuiper's REST URL for install → running (default: ${URL_ENV}; none: left out)")
    ap.add_argument("--sdk-python", help="a python with ekuiper==2.4.2 installed (default: run.py's cached venv)")
    ap.add_argument("--ekdsl-from", metavar="DIR", type=Path, default=ROOT,
                    help="the checkout whose ekdsl the ekdsl plugin carries (default: this one)")
    ap.add_argument("--json", metavar="PATH", help="also write every sample to PATH")
    args = ap.parse_args(argv)
    if not (args.ekdsl_from / "ekdsl" / "__init__.py").is_file():
        ap.error(f"--ekdsl-from: no ekdsl package in {args.ekdsl_from}")
    sdk_py = sdk_python(args.sdk_python)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="ekdsl-start-") as tmp:
        work = Path(tmp)
        plugins = {"ekdsl": ekdsl_plugin(work, sdk_py, args.ekdsl_from), "sdk": sdk_plugin(work, sdk_py)}
        samples: Dict[str, Any] = {"local": local(plugins, args.runs, work, log)}
        if args.url:
            samples["server"] = server(args.url, args.runs, work, sdk_py, args.ekdsl_from, log)
    version = subprocess.run([sdk_py, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                             text=True).stdout.strip()
    print(f"medians of {args.runs} run(s) in ms, Python {version}, {os.cpu_count()} CPUs"
          + ("" if args.ekdsl_from.resolve() == ROOT else f"; ekdsl from {args.ekdsl_from}"))
    head = f"{'':40} {'ekdsl':>10} {'sdk':>10} {'ekdsl/sdk':>10}"
    lines = [head, "-" * len(head)]
    for key, label in LOCAL:
        lines.append(row(label, {impl: samples["local"][impl][key] for impl in IMPLS}))
    if args.url:
        lines.append(row(f"install → running ({args.url})", samples["server"]))
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": args.runs, "samples": samples}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
