"""Small pure-Python wheels written by hand, so tests install requirements without network."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from typing import Dict, Sequence

import pytest

OFFLINE = {"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""}


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def make_wheel(folder: Path, dist: str, version: str, modules: Dict[str, str], *,
               tags: str = "py3-none-any", requires: tuple = ()) -> Path:
    """Write ``<dist>-<version>-<tags>.whl`` into ``folder`` holding ``modules`` (path → source text)."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{dist}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {path: text.encode() for path, text in modules.items()}
    files[f"{info}/METADATA"] = meta.encode()
    files[f"{info}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: wheelkit\nRoot-Is-Purelib: true\nTag: {tags}\n".encode()
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in files.items()) + f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    path = folder / f"{dist}-{version}-{tags}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def version_wheel(folder: Path, dist: str, version: str) -> Path:
    """A wheel of module ``<dist>`` whose ``VERSION`` is ``version``."""
    return make_wheel(folder, dist, version, {f"{dist}.py": f"VERSION = {version!r}\n"})


def offline_env() -> dict:
    """This process's environment, with pip kept off its index and every user setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV", "PYTHONPATH"))}
    return {**env, **OFFLINE}


def plain_python(factory: pytest.TempPathFactory, absent: Sequence[str]) -> str:
    """A Python with pip where none of the modules ``absent`` imports (checked): the base Python, or else (someone
    installed one of them there) a venv of it, made once per run for every worker. With pip, install.sh builds
    each plugin's venv without pip (seconds); without it, with ensurepip (several times longer)."""
    from .conftest import shared

    probe = (f"import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in {tuple(absent)!r}) or "
             "not u.find_spec('pip'))")
    base = os.path.join(sys.base_prefix, "bin", "python3")
    cwd = str(factory.mktemp("probe"))
    if subprocess.run([base, "-c", probe], cwd=cwd, env={"PATH": os.environ["PATH"]}).returncode == 0:
        return base
    with shared(factory, "bare-python") as path:  # a fresh venv: none of any test's modules
        python = str(path / "bin" / "python")
        if not (path / "ready").exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(path)
            (path / "ready").touch()
    assert subprocess.run([python, "-c", probe], cwd=cwd).returncode == 0
    return python
