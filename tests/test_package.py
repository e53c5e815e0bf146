"""Export: layout, zip entries and modes, determinism, and --check drift detection."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import pytest

from ekdsl import PackagingError, load_target
from ekdsl.cli import main
from ekdsl.host import Emulator
from ekdsl.package import export, package_files, zip_bytes

from .conftest import PYSAM, WEATHER


def test_zip_layout_and_modes(tmp_path):
    model = load_target(str(PYSAM)).model()
    result = export(model, str(tmp_path), make_zip=True)
    with zipfile.ZipFile(result.zip_path) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    for required in ("pysam.json", "main.py", "pysam.py", "sources/pyjson.yaml", "sources/pyjson.json",
                     "sinks/print.json", "functions/revert.json", "ekdsl/", "ekdsl/__init__.py",
                     "typing_extensions.py"):
        assert required in names
    assert not any(n.startswith("ekdsl/host") or "__pycache__" in n for n in names)
    seen_dirs = set()
    for info in infos:
        parent = info.filename.rstrip("/").rpartition("/")[0]
        assert parent == "" or parent + "/" in seen_dirs, f"{info.filename} comes before its directory"
        mode = info.external_attr >> 16
        assert info.create_system == 3 and info.date_time == (1980, 1, 1, 0, 0, 0)
        if info.is_dir():
            seen_dirs.add(info.filename)
            assert stat.S_ISDIR(mode) and mode & 0o777 == 0o755
        elif info.filename == "main.py":
            assert mode == 0o100755
        else:
            assert mode == 0o100644
    assert (tmp_path / "pysam" / "main.py").stat().st_mode & 0o777 == 0o755


def test_main_script_names_the_target(tmp_path):
    model = load_target(str(WEATHER)).model()
    files = package_files(model)
    script = files["main.py"][0].decode()
    assert script.startswith("#!/usr/bin/env python3\n")
    assert "sys.exit(main('weather:plugin', sys.argv[1:], name='weather'))" in script
    assert "weather.py" in files


def test_export_is_byte_identical(tmp_path):
    model = load_target(str(WEATHER)).model()
    a = export(model, str(tmp_path / "a"), make_zip=True)
    b = export(model, str(tmp_path / "b"), make_zip=True)
    zip_b = Path(b.zip_path).read_bytes()
    assert Path(a.zip_path).read_bytes() == zip_b
    for rel in a.files:
        assert (tmp_path / "a" / "weather" / rel).read_bytes() == (tmp_path / "b" / "weather" / rel).read_bytes()
    again = export(model, str(tmp_path / "a"), make_zip=True)
    assert Path(again.zip_path).read_bytes() == zip_b


def test_check_flag_detects_drift(tmp_path, capsys):
    out = str(tmp_path)
    assert main(["export", str(PYSAM), "-o", out, "--zip"]) == 0
    assert main(["export", str(PYSAM), "-o", out, "--zip", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    yaml_path = tmp_path / "pysam" / "sources" / "pyjson.yaml"
    yaml_path.write_text("default:\n  period: 5\n")
    (tmp_path / "pysam" / "stale.txt").write_text("x")
    assert main(["export", str(PYSAM), "-o", out, "--zip", "--check"]) == 1
    captured = capsys.readouterr()
    assert f"differs: {yaml_path}" in captured.out
    assert "-  period: 5" in captured.out and "+  period: 0.2" in captured.out
    assert "not generated:" in captured.out and "stale.txt" in captured.out
    assert "is out of date: run 'python -m ekdsl export" in captured.err


def test_refuses_to_overwrite_foreign_folder(tmp_path):
    (tmp_path / "pysam").mkdir()
    (tmp_path / "pysam" / "precious.txt").write_text("keep me")
    with pytest.raises(PackagingError, match="refusing to overwrite"):
        export(load_target(str(PYSAM)).model(), str(tmp_path))
    assert (tmp_path / "pysam" / "precious.txt").exists()


def test_no_vendor(tmp_path):
    files = package_files(load_target(str(PYSAM)).model(), vendor=False)
    assert not any(p.startswith("ekdsl/") for p in files)


def test_package_module_and_include(tmp_path, make_module):
    pkg = tmp_path / "mypkg_incl"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "plug.py").write_text(
        "from ekdsl import Plugin\nplugin = Plugin('deep', include=['data.csv'])\n"
        "@plugin.function\ndef f(x: int) -> int:\n    return x\n")
    (tmp_path / "data.csv").write_text("a,b\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        model = load_target("mypkg_incl.sub.plug").model()
    finally:
        sys.path.remove(str(tmp_path))
    files = package_files(model, vendor=False)
    assert {"mypkg_incl/__init__.py", "mypkg_incl/sub/__init__.py", "mypkg_incl/sub/plug.py",
            "data.csv"} <= set(files)
    assert "main('mypkg_incl.sub.plug:plugin'" in files["main.py"][0].decode()
    with zipfile.ZipFile(io.BytesIO(zip_bytes(files))) as zf:
        names = zf.namelist()
    assert names.index("mypkg_incl/") < names.index("mypkg_incl/sub/") < names.index("mypkg_incl/sub/plug.py")


def test_module_named_main_collides(make_module):
    path = make_module("from ekdsl import Plugin\nplugin = Plugin('m')\n"
                       "@plugin.function\ndef f(x: int) -> int:\n    return x\n", name="main")
    with pytest.raises(PackagingError, match=r"'main\.py' collides"):
        package_files(load_target(str(path)).model(), vendor=False)


def test_executable_option_names_the_script(tmp_path):
    """--executable: the plugin json and the script agree; the plugin's module moves aside when it would be shadowed."""
    out = tmp_path / "out"
    assert main(["export", str(PYSAM), "-o", str(out), "--zip", "--executable", "pysam.py"]) == 0
    with zipfile.ZipFile(out / "pysam.zip") as zf:
        names = zf.namelist()
        meta = json.loads(zf.read("pysam.json"))
        script = zf.read("pysam.py").decode()
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    assert meta["executable"] == "pysam.py" and "main.py" not in names
    assert modes["pysam.py"] == 0o100755 and modes["lib/pysam.py"] == 0o100644
    assert "lib/" in names and names.index("lib/") < names.index("lib/pysam.py")
    assert "sys.exit(main('pysam:plugin', sys.argv[1:], name='pysam'))" in script and "'lib'" in script
    assert (out / "pysam" / "lib" / "pysam.py").read_bytes() == PYSAM.read_bytes()
    with Emulator(str(out / "pysam.zip")) as emu:
        assert emu.installed.executable.endswith("pysam/pysam.py")
        assert emu.function("revert").exec("abc") == (True, "cba")


def test_executable_option_other_name_keeps_the_layout(tmp_path):
    model = load_target(str(WEATHER)).model()
    default = package_files(model)
    named = package_files(model, executable="station.py")
    assert set(named) == set(default) - {"main.py"} | {"station.py"}
    assert named["station.py"] == default["main.py"]
    assert json.loads(named["weather.json"][0])["executable"] == "station.py"
    assert package_files(model, executable="main.py") == default


@pytest.mark.parametrize(("name", "message"), [
    ("../x.py", "is not a plain file name"),
    ("sub/x.py", "is not a plain file name"),
    (".hidden.py", "is not a plain file name"),
    ("", "is not a plain file name"),
    ("json.py", "would shadow the module 'json'"),
    ("msgpack.py", "would shadow the module 'msgpack'"),
    ("ekdsl.py", "would shadow the module 'ekdsl'"),
    ("weather.json", "collides with a file of the package"),
    ("typing_extensions.py", "would shadow the module 'typing_extensions'"),
])
def test_executable_option_refuses_bad_names(tmp_path, name, message):
    model = load_target(str(WEATHER)).model()
    with pytest.raises(PackagingError, match=message):
        export(model, str(tmp_path), executable=name)
    assert not (tmp_path / "weather").exists()


def test_executable_option_in_check_mode(tmp_path, capsys):
    out = str(tmp_path)
    assert main(["export", str(PYSAM), "-o", out, "--executable", "pysam.py"]) == 0
    assert main(["export", str(PYSAM), "-o", out, "--executable", "pysam.py", "--check"]) == 0
    assert main(["export", str(PYSAM), "-o", out, "--check"]) == 1
    assert "missing: " in capsys.readouterr().out
