"""Wheels carried in a plugin package: unpacked, checked, and imported by the running plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from ekdsl import load_target
from ekdsl.checks import check_package
from ekdsl.errors import PackagingError
from ekdsl.host import Host
from ekdsl.package import export
from ekdsl.wheels import read_wheel

from .conftest import PYSAM

PLUGIN = '''
from ekdsl import Plugin

plugin = Plugin("wheely", version="1")


@plugin.function
def answer() -> int:
    import tinyextra
    import tinylib

    return tinylib.VALUE + tinyextra.EXTRA


@plugin.function
def codec() -> str:
    from ekdsl.codec import json_backend

    return json_backend()
'''


def make_wheel(folder: Path, name: str, entries: dict, unix_modes: bool = True) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w") as zf:
        for entry, data in entries.items():
            info = zipfile.ZipInfo(entry)
            if unix_modes:
                info.create_system = 3
                info.external_attr = (0o100755 if entry.endswith(".so") else 0o100644) << 16
            zf.writestr(info, data)
    return path


TINY = {
    "tinylib/__init__.py": "VALUE = 40\n",
    "tinylib-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinylib\nVersion: 1.0\n",
    "tinylib-1.0.data/purelib/tinyextra.py": "EXTRA = 2\n",
    "tinylib/_speedups.so": b"\x7fELF",
}


@pytest.fixture
def wheely(tmp_path: Path) -> Path:
    module = tmp_path / "src" / "wheely.py"
    module.parent.mkdir()
    module.write_text(textwrap.dedent(PLUGIN))
    return module


def test_wheel_is_unpacked_into_the_package(tmp_path, wheely):
    wheel = make_wheel(tmp_path, "tinylib-1.0-py3-none-any.whl", TINY)
    read = read_wheel(str(wheel))
    assert (read.dist, read.version, read.tags, read.pure) == ("tinylib", "1.0", "py3-none-any", True)
    result = export(load_target(str(wheely)).model(), str(tmp_path / "out"), make_zip=True, wheels=[str(wheel)])
    pkg = Path(result.directory)
    assert (pkg / "tinylib" / "__init__.py").read_text() == "VALUE = 40\n"
    assert (pkg / "tinyextra.py").read_text() == "EXTRA = 2\n"  # .data/purelib goes to the library root
    assert (pkg / "tinylib-1.0.dist-info" / "METADATA").exists()  # licences and metadata travel along
    assert not any(p.name.endswith(".data") for p in pkg.iterdir())
    assert (pkg / "tinylib" / "_speedups.so").stat().st_mode & 0o777 == 0o755
    assert (pkg / "tinylib" / "__init__.py").stat().st_mode & 0o777 == 0o644
    for package in (result.zip_path, result.directory):
        report = check_package(str(package))
        assert report.ok, report.findings


def test_carried_wheel_imports_in_the_running_plugin(tmp_path, wheely, sockdir):
    wheel = make_wheel(tmp_path, "tinylib-1.0-py3-none-any.whl", {k: v for k, v in TINY.items() if ".so" not in k})
    result = export(load_target(str(wheely)).model(), str(tmp_path / "out"), wheels=[str(wheel)])
    with Host("wheely", f"{result.directory}/main.py", socket_dir=sockdir) as host:
        assert host.function("answer").exec() == (True, 42)


@pytest.mark.parametrize(
    ("name", "entries", "message"),
    [
        ("tinylib.zip", TINY, r"'.*tinylib.zip' is not a wheel file name .*pip download"),
        ("tinylib-1.0-py3-none-any.whl", None, r"cannot read wheel: .* is not a readable zip file \(File is not a zip"),
        ("tinylib-1.0-py3-none-any.whl", {"../evil.py": ""}, r"has an unsafe entry '../evil.py'"),
        ("tinylib-1.0-py3-none-any.whl", {"/abs.py": ""}, r"has an unsafe entry '/abs.py'"),
        ("tinylib-1.0-py3-none-any.whl", {"tinylib-1.0.data/scripts/tiny": "#!/bin/sh\n"},
         r"installs 'tinylib-1.0.data/scripts/tiny' outside the library .* vendor library wheels only"),
        ("tinylib-1.0-py3-none-any.whl", {}, r"holds no files"),
        ("evil-1.0-py3-none-any.whl", {"ekdsl/__init__.py": ""},
         r"has a file 'ekdsl/__init__.py' that the package already holds"),
        ("evil-1.0-py3-none-any.whl", {"main.py": ""}, r"has a file 'main.py' that the package already holds"),
        ("evil-1.0-py3-none-any.whl", {"functions/answer.json": "{}"},
         r"has a file 'functions/answer.json' that the package already holds"),
    ],
)
def test_bad_wheels_are_refused(tmp_path, wheely, name, entries, message):
    if entries is None:
        path = tmp_path / name
        path.write_bytes(b"not a zip")
    else:
        path = make_wheel(tmp_path, name, entries)
    with pytest.raises(PackagingError, match=message):
        export(load_target(str(wheely)).model(), str(tmp_path / "out"), wheels=[str(path)])


def test_a_zip_bomb_wheel_is_refused_as_it_decompresses(tmp_path):
    path = tmp_path / "bomb-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("bomb/zeros.bin", "w") as fh:
        for _ in range(64):
            fh.write(bytes(1 << 20))
    with pytest.raises(PackagingError, match=r"cannot read wheel: .* entry 'bomb/zeros.bin' decompresses to more "
                                             r"than 100 times"):
        read_wheel(str(path))


def test_the_same_wheel_twice_is_refused(tmp_path, wheely):
    wheel = str(make_wheel(tmp_path, "tinylib-1.0-py3-none-any.whl", TINY))
    with pytest.raises(PackagingError, match="vendor each distribution once"):
        export(load_target(str(wheely)).model(), str(tmp_path / "out"), wheels=[wheel, wheel])


def test_cli(tmp_path):
    wheel = make_wheel(tmp_path, "tinylib-1.0-py3-none-any.whl", TINY, unix_modes=False)
    run = [sys.executable, "-m", "ekdsl", "export", str(PYSAM), "-o", str(tmp_path / "out"), "--wheel", str(wheel)]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "carries tinylib 1.0 (4 files) for any platform" in proc.stdout
    assert (tmp_path / "out" / "pysam" / "tinylib" / "_speedups.so").stat().st_mode & 0o777 == 0o644  # no Unix mode
    proc = subprocess.run([*run, "--check"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "up to date" in proc.stdout, proc.stdout + proc.stderr
    proc = subprocess.run([*run[:-1], str(tmp_path / "missing-1.0-py3-none-any.whl")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("ekdsl: error: cannot read wheel") and len(proc.stderr.splitlines()) == 1


def _installed_wheel(folder: Path, dist: str) -> Path:
    """A wheel of an installed distribution, rebuilt from its RECORD (no network needed)."""
    from importlib.metadata import distribution

    d = distribution(dist)
    tag = next(line.split(": ", 1)[1] for line in (d.read_text("WHEEL") or "").splitlines()
               if line.startswith("Tag: "))
    entries = {}
    for f in d.files or []:
        if f.parts[0] in ("..", "__pycache__") or "__pycache__" in f.parts or f.name.endswith(".pyc"):
            continue
        entries[str(f).replace(os.sep, "/")] = Path(str(f.locate())).read_bytes()
    return make_wheel(folder, f"{d.metadata['Name']}-{d.version}-{tag}.whl", entries)


def test_carried_orjson_is_used_where_nothing_is_installed(tmp_path, wheely, sockdir):
    """A real compiled wheel (this machine's orjson), in a bare virtual environment without orjson."""
    pytest.importorskip("orjson")
    import venv

    bare = tmp_path / "bare"
    venv.EnvBuilder(with_pip=False).create(bare)
    python = str(bare / "bin" / "python")
    assert subprocess.run([python, "-c", "import orjson"], capture_output=True).returncode != 0
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EKDSL_JSON")}
    wheel = _installed_wheel(tmp_path, "orjson")
    model = load_target(str(wheely)).model()
    for wheels, backend in (([], "stdlib"), ([str(wheel)], "orjson")):
        result = export(model, str(tmp_path / backend), wheels=wheels)
        with Host("wheely", f"{result.directory}/main.py", python=python, socket_dir=sockdir, env=env) as host:
            assert host.function("codec").exec() == (True, backend)
            assert host.process is not None and f"(JSON: {backend})" in host.process.output


def test_documented_orjson_download_and_export(tmp_path):
    """docs/cli.md's example: a wheel for another platform, from PyPI, carried in the zip."""
    import glob
    import re
    import shlex

    from .conftest import ROOT

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"^```text\n(.*?)^```", text, re.S | re.M) if "pip download" in b)
    download, export_line = block.strip().splitlines()
    (tmp_path / "plugin.py").write_text(PYSAM.read_text(encoding="utf-8"), encoding="utf-8")
    argv = shlex.split(download)
    assert argv[:2] == ["pip", "download"]
    proc = subprocess.run([sys.executable, "-m", *argv], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    argv = shlex.split(export_line)
    assert argv[:3] == ["python", "-m", "ekdsl"]
    argv = [sys.executable, *argv[1:]]
    argv = [a for arg in argv for a in (sorted(glob.glob(str(tmp_path / arg))) if "*" in arg else [arg])]
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"carries orjson \S+ \(\d+ files\) for cp312-cp312-musllinux_1_2_aarch64 only", proc.stdout)
    with zipfile.ZipFile(tmp_path / "dist" / "pysam.zip") as zf:
        assert any(n.startswith("orjson/") and ".so" in n and "aarch64" in n for n in zf.namelist())
    assert check_package(str(tmp_path / "dist" / "pysam.zip")).ok
