"""Every code example in README.md and docs/ runs.

For each document, its ``python`` blocks are joined into ``plugin.py`` in a fresh folder and run (a block of
any language whose first line is ``# file: NAME`` is written to ``NAME`` instead); then its ``console`` lines that start
with ``$ python -m ekdsl``, ``$ python -m pytest``, ``$ python -m gunicorn`` or ``$ python -m uvicorn`` (after
``NAME=value`` environment settings) run there, in order, and must succeed; a server (``ekdsl service``,
gunicorn, uvicorn) must start serving on a free port and stop on SIGTERM with status 0. Every page has at least
one runnable example. ``$ serve run`` lines (Ray Serve) run in tests/test_ray_serve.py (``-m ray``).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
FILE = re.compile(r"^# file: (\S+)\n")
RUN = ("python -m ekdsl ", "python -m pytest", "python -m gunicorn ", "python -m uvicorn ")
COMMAND = re.compile(r"^\$ ((?:[A-Z][A-Z0-9_]*=\S+ )*)(python -m .*)$")
# a server's module (argv[2]) → the line that says it serves
SERVERS = {"ekdsl": "serving ", "gunicorn": "Application startup complete", "uvicorn": "Application startup complete"}


def blocks(path: Path, lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(path.read_text(encoding="utf-8")) if kind == lang]


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_doc_examples_run(doc, tmp_path):
    files = {}
    for kind, body in FENCE.findall(doc.read_text(encoding="utf-8")):
        named = FILE.match(body)
        if named:
            files[named.group(1)] = body
        elif kind == "python":
            files["plugin.py"] = files.get("plugin.py", "") + body + "\n"
    commands = [match.groups() for body in blocks(doc, "console") for line in body.splitlines()
                for match in [COMMAND.match(line)] if match and match.group(2).startswith(RUN)]
    assert files or commands, f"{doc.name} has no runnable example: add a python block or a console line"
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    if "plugin.py" in files:
        proc = subprocess.run([sys.executable, "plugin.py"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
    for settings, command in commands:
        env = {**os.environ, **dict(pair.split("=", 1) for pair in settings.split())}
        argv = shlex.split(command, comments=True)
        argv[0] = sys.executable
        if argv[2] in ("gunicorn", "uvicorn") or argv[2:4] == ["ekdsl", "service"]:
            run_server(argv, tmp_path, env)
            continue
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)
        assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"


def run_server(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    """A server serves until SIGTERM: start it on a free port, wait for it to serve, stop it."""
    for option, free in (("--listen", "host:0"), ("-b", "host:0"), ("--bind", "host:0"), ("--port", "0")):
        if option in argv:
            i = argv.index(option) + 1
            argv[i] = argv[i].rpartition(":")[0] + ":0" if free == "host:0" else free
    if argv[2] == "gunicorn" and "--no-control-socket" in subprocess.run(
            [sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True, timeout=60).stdout:
        argv.insert(3, "--no-control-socket")  # several gunicorns at once must not share ~/.gunicorn/
    ready = SERVERS[argv[2]]
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert proc.stdout is not None
        seen = [proc.stdout.readline()]
        while seen[-1] and ready not in seen[-1]:
            seen.append(proc.stdout.readline())
        assert ready in seen[-1], "".join(seen)
        proc.send_signal(signal.SIGTERM)
        # uvicorn raises the signal again once it has shut down, so that its exit status tells the signal
        clean = (0, -signal.SIGTERM) if argv[2] == "uvicorn" else (0,)
        assert proc.wait(timeout=30) in clean, "".join(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_docs_say_ctx_sleep_raises_stopped():
    """``Context.sleep`` raises ``Stopped`` when the rule stops; no page may say it returns."""
    for doc in DOCS:
        text = " ".join(doc.read_text(encoding="utf-8").split())
        claim = re.search(r"sleep\([^.]*\breturns?\b[^.]*\b(early|at once)\b", text)
        assert claim is None, f"{doc.name}: {claim.group(0) if claim else ''}"


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_cmd = "pip install -e '.[test]' && python -m pytest"
    assert f"\n{test_cmd}\n" in readme
    assert ci.rstrip().endswith(test_cmd)


def test_ci_runs_the_runtime_tests_under_the_oldest_and_newest_python():
    """The plugin runs under eKuiper's portable.pythonBin, whatever it is: .ci/run runs the runtime tests under the
    oldest Python ekdsl supports (pyproject's requires-python) and the newest this machine has."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    oldest = re.search(r'requires-python = ">=(3\.\d+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    loop = re.search(r"^for minor in ([\d. ]+); do$", ci, re.M)
    assert loop is not None and loop.group(1).split() == [oldest, "3.13"]
    listed = re.search(r"runtime_tests=\((.*?)\)", ci, re.S).group(1).split()
    files = {p for pattern in listed for p in ROOT.glob(pattern)}
    assert all(list(ROOT.glob(pattern)) for pattern in listed), listed
    assert set((ROOT / "tests").glob("test_runtime_*.py")) <= files
    assert {ROOT / "tests" / "test_emulator.py", ROOT / "tests" / "test_process_life.py"} <= files
    assert ci.index('"${runtime_tests[@]}"') < ci.index("python -m pytest -m long")
