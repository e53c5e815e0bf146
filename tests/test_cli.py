"""The CLI as users run it: exit codes and one-line errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import PYSAM, ROOT, WEATHER


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ekdsl", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=60)


def test_export_examples(tmp_path):
    for target in (PYSAM, WEATHER):
        proc = run("export", str(target), "-o", str(tmp_path), "--zip")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("exported plugin '")
    assert (tmp_path / "pysam.zip").exists() and (tmp_path / "weather.zip").exists()


def test_export_module_attr_form(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ekdsl", "export", "pysam:plugin", "-o", str(tmp_path)],
                          capture_output=True, text=True, cwd=PYSAM.parent, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ekdsl import Plugin\nplugin = Plugin('p')\n@plugin.source\ndef s():\n    return 1\n",
         "ekdsl: error: @source 's' ({file}:3) must be a generator function: use 'yield' to emit rows"),
        ("import not_a_real_module_q\n",
         "ekdsl: error: cannot load '{path}': ModuleNotFoundError: No module named 'not_a_real_module_q'"),
        ("from ekdsl import Plugin\nplugin = Plugin('p')\n",
         "ekdsl: error: plugin 'p' ({file}:0) declares no source, sink or function"),
    ],
)
def test_errors_are_one_line_and_exit_1(make_module, tmp_path, source, expected):
    path = make_module(source)
    proc = run("export", str(path), "-o", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2
    assert lines[0].startswith(expected.format(file=path.name, path=path))
    assert proc.stdout == ""


def test_usage_error_exit_2():
    proc = run("export")
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


LAZY = ("ekdsl.runtime", "ekdsl.host", "ekdsl.package", "ekdsl.deploy", "ekdsl.checks", "ekdsl.metadata",
        "ekdsl.service", "ekdsl.invoke", "ekdsl.transport", "ekdsl.protocol")


@pytest.mark.parametrize("args", [["--help"], ["export", "--help"], ["check", "--help"]])
def test_help_imports_no_command_module(args):
    """Building the parser for ``--help`` imports none of the runtime, host, packaging or deploy modules."""
    code = ("import sys, runpy; sys.argv = ['ekdsl', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('ekdsl', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            f"print(' '.join(sorted(m for m in sys.modules if m.startswith({LAZY!r}))), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "usage: python -m ekdsl" in proc.stdout
    assert proc.stderr.strip() == ""


def test_a_command_builds_its_own_arguments_only():
    code = ("import sys; from ekdsl.cli import _parser; _parser('export').parse_args(['export', 'x']); "
            f"print(' '.join(sorted(m for m in sys.modules if m.startswith({LAZY!r}))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
    proc = run("dev", "--help")
    assert proc.returncode == 0 and "TARGET MODE" in proc.stdout
