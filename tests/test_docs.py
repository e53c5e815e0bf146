"""Every code example in README.md and docs/ runs.

For each document, its ``python`` blocks are joined into ``plugin.py`` in a fresh folder and run; then
its ``console`` lines that start with ``$ python -m ekdsl`` run there, in order, and must succeed.
"""

from __future__ import annotations

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


def blocks(path: Path, lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(path.read_text(encoding="utf-8")) if kind == lang]


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_doc_examples_run(doc, tmp_path):
    code = "\n".join(blocks(doc, "python"))
    commands = [line[2:] for body in blocks(doc, "console") for line in body.splitlines()
                if line.startswith("$ python -m ekdsl ")]
    if not code and not commands:
        pytest.skip("no runnable example")
    (tmp_path / "plugin.py").write_text(code, encoding="utf-8")
    if code:
        proc = subprocess.run([sys.executable, "plugin.py"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
    for command in commands:
        argv = shlex.split(command, comments=True)
        argv[0] = sys.executable
        if argv[3:4] == ["service"]:
            run_service(argv, tmp_path)
            continue
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"


def run_service(argv: list[str], cwd: Path) -> None:
    """A ``service`` command serves until SIGTERM: start it on a free port, wait for it to serve, stop it."""
    if "--listen" in argv:
        i = argv.index("--listen") + 1
        argv[i] = argv[i].rpartition(":")[0] + ":0"
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        seen = [proc.stdout.readline()]
        while seen[-1] and not seen[-1].startswith("serving "):
            seen.append(proc.stdout.readline())
        assert seen[-1].startswith("serving "), "".join(seen)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_cmd = "pip install -e '.[test]' && python -m pytest"
    assert f"\n{test_cmd}\n" in readme
    assert ci.rstrip().endswith(test_cmd)
