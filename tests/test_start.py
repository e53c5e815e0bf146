"""A plugin's start: the handshake goes out before the runtime is imported, and a Python too old for ekdsl
says which one it needs in one line (speed is measured by benchmarks/start.py, never asserted)."""

from __future__ import annotations

import ast
import glob
import os
import subprocess
import sys
from typing import List

import pytest

from ekdsl.host.channels import ControlChannel
from ekdsl.package import main_script
from ekdsl.plugin import load_target

from .conftest import ROOT, WEATHER

OLD_PYTHONS = sorted(glob.glob("/root/.pyenv/versions/[23].[0-8].*/bin/python")) + [
    p for p in (f"/usr/bin/python3.{m}" for m in range(0, 9)) if os.path.exists(p)]
# what a plugin process imports before its handshake must not include any of these
AFTER_HANDSHAKE = ("ekdsl.codec", "ekdsl.protocol", "ekdsl.model", "ekdsl.session", "ekdsl.runtime.server",
                   "ekdsl.plugin", "ekdsl.decorators", "ekdsl.introspect", "ekdsl.context")


def _one_line_for_old_python(proc: subprocess.CompletedProcess, version: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"ekdsl needs Python 3.9 or newer, but this is Python {version} (")
    assert "set portable.pythonBin in etc/kuiper.yaml (or KUIPER__PORTABLE__PYTHONBIN)" in lines[0]


def _pretend_38(then: str) -> List[str]:
    """This interpreter, told it is 3.8.10 before anything of ekdsl runs."""
    return [sys.executable, "-c", "import sys; sys.version_info = (3, 8, 10, 'final', 0); " + then]


def test_generated_main_on_a_python_too_old_says_which_it_needs(exported):
    main = exported(WEATHER) / "main.py"
    run = f"sys.argv = [{str(main)!r}, '{{}}']; import runpy; runpy.run_path(sys.argv[0], run_name='__main__')"
    proc = subprocess.run(_pretend_38(run), capture_output=True, text=True, timeout=60)
    _one_line_for_old_python(proc, "3.8.10")


def test_python_m_ekdsl_on_a_python_too_old_says_which_it_needs():
    run = "sys.argv = ['ekdsl', 'run', 'x']; import runpy; runpy.run_module('ekdsl', run_name='__main__')"
    proc = subprocess.run(_pretend_38(run), capture_output=True, text=True, timeout=60, cwd=ROOT)
    _one_line_for_old_python(proc, "3.8.10")


@pytest.mark.skipif(not OLD_PYTHONS, reason="no Python older than 3.9 on this machine")
@pytest.mark.parametrize("python", OLD_PYTHONS)
def test_a_real_old_python_reads_the_guard(exported, python):
    """2.7 to 3.8 parse the main script and ekdsl/__init__.py up to the guard, which answers in one line."""
    version = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    proc = subprocess.run([python, str(exported(WEATHER) / "main.py"), "{}"], capture_output=True, text=True,
                          timeout=60)
    _one_line_for_old_python(proc, version)


@pytest.mark.parametrize("prelude", ["", "venv"])
def test_the_guard_comes_first_in_syntax_old_pythons_read(prelude):
    """The main script imports ekdsl (whose first statement is the guard) before anything else runs, and
    neither file holds syntax newer than Python 3.0's (2.7 reads them too: no annotations, no f-strings)."""
    from ekdsl.deploy.installer import main_prelude

    model = load_target(str(WEATHER)).model()
    script = main_script(model, "lib" if prelude else "", main_prelude(model.name) if prelude else "")
    body = ast.parse(script).body[1:]  # after the docstring
    assert [ast.unparse(s) for s in body[:4]] == [
        "import os", "import sys", "sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))", "import ekdsl"]
    init = (ROOT / "ekdsl" / "__init__.py").read_text(encoding="utf-8")
    first = ast.parse(init).body[1:3]
    assert ast.unparse(first[0]) == "import sys" and ast.unparse(first[1].test) == "sys.version_info < (3, 9)"
    for text in (script, init):
        for node in ast.walk(ast.parse(text)):
            assert not isinstance(node, (ast.JoinedStr, ast.AnnAssign, ast.ImportFrom)) or (
                isinstance(node, ast.ImportFrom) and node.module != "__future__"), ast.unparse(node)
            if isinstance(node, ast.FunctionDef):
                assert node.returns is None and all(a.annotation is None for a in node.args.args)


@pytest.mark.parametrize("transport", ["native", "pynng"])
def test_the_handshake_goes_out_before_the_runtime_is_imported(sockdir, transport):
    """``greet`` dials the control socket and sends the handshake having imported only ``ekdsl.hello`` (the
    native transport) or the pynng transport."""
    channel = ControlChannel("greeter", sockdir)
    code = ("import sys; from ekdsl.runtime import greet; sock = greet('greeter'); "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('ekdsl') or m == 'typing')))")
    env = {**os.environ, "EKDSL_SOCKET_DIR": sockdir, "EKDSL_TRANSPORT": transport}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    try:
        assert channel.handshake(30) == b"handshake"
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
        channel.sock.close()
    assert proc.returncode == 0, err
    imported = out.split()
    assert not set(imported) & set(AFTER_HANDSHAKE), imported
    if transport == "pynng":
        assert "ekdsl.runtime" in imported and "ekdsl.transport" in imported
        return
    assert imported == ["ekdsl", "ekdsl.hello", "ekdsl.runtime", "ekdsl.wire"] + (["typing"] if _site_typing() else [])


def _site_typing() -> bool:
    """Whether this interpreter imports typing before any code runs (a .pth file of its site-packages may)."""
    out = subprocess.run([sys.executable, "-c", "import sys; print('typing' in sys.modules)"], capture_output=True,
                         text=True, timeout=30).stdout
    return out.strip() == "True"
