"""Security: owner-only sockets, a careful unzip, and nothing from config or payloads ever evaluated."""

from __future__ import annotations

import ast
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from ekdsl import PackagingError
from ekdsl.checks import check_package
from ekdsl.host import Emulator, InProcess
from ekdsl.transport import open_socket

from .conftest import LAB, ROOT


@pytest.mark.parametrize("impl", ["native", "pynng"])
def test_listener_sockets_are_owner_only(sockdir, impl):
    path = os.path.join(sockdir, "sink.ipc")
    sock = open_socket("pull", f"ipc://{path}", listen=True, impl=impl)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        sock.close()


def hostile_zip(tmp_path, name, member):
    meta = {"version": "1", "language": "python", "executable": "main.py", "functions": ["f"]}
    path = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}.json", json.dumps(meta))
        zf.writestr("main.py", "print('hi')\n")
        zf.writestr(member[0], member[1])
    return path


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        (zipfile.ZipInfo("../escape.sh"), "path escapes from parent"),
        (zipfile.ZipInfo("/etc/evil.conf"), "path escapes from parent"),
        (zipfile.ZipInfo("sources/../../evil.yaml"), "path escapes from parent"),
    ],
)
def test_unzip_refuses_escaping_paths(tmp_path, entry, needle):
    path = hostile_zip(tmp_path, "bad", (entry, b"x"))
    with pytest.raises(PackagingError, match=needle):
        Emulator(str(path))
    assert not (tmp_path.parent / "escape.sh").exists()


def test_unzip_refuses_symlinks(tmp_path):
    link = zipfile.ZipInfo("lib.py")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = hostile_zip(tmp_path, "linky", (link, b"/etc/passwd"))
    with pytest.raises(PackagingError, match=r"entry 'lib\.py' is a symbolic link \(to '/etc/passwd'\)"):
        Emulator(str(path))
    folder = tmp_path / "linkdir"
    folder.mkdir()
    (folder / "linkdir.json").write_text(json.dumps({"version": "1", "language": "python", "executable": "main.py",
                                                     "functions": ["f"]}))
    (folder / "main.py").write_text("")
    (folder / "secret.py").symlink_to("/etc/passwd")
    assert any("symbolic link" in f.message for f in check_package(str(folder)).findings)


def test_nothing_is_evaluated_or_run_through_a_shell():
    """No eval/exec/compile, no shell=True, no os.system or pickle anywhere in ekdsl."""
    for path in (ROOT / "ekdsl").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                if isinstance(node.func, ast.Name):  # the builtins, not re.compile
                    assert node.func.id not in {"eval", "exec", "compile", "__import__"}, (path, node.func.id)
                if isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "os":
                    assert node.func.attr not in {"system", "popen", "execv", "execvp", "spawnl"}, path
                for kw in node.keywords:
                    assert not (kw.arg == "shell" and getattr(kw.value, "value", False) is True), path
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert "pickle" not in names and "marshal" not in names, path


def test_hostile_config_values_stay_data(tmp_path):
    payloads = ["$(touch /tmp/ekdsl-pwned)", "__import__('os').system('id')", "{{7*7}}", "`id`; rm -rf /"]
    with InProcess(str(LAB)) as symbols:
        for text in payloads:
            rows = symbols.source("ticker", {"period": 0, "label": text}).rows(1)
            assert rows[0]["label"] == text
    assert not Path("/tmp/ekdsl-pwned").exists()
