"""The emulator: install like eKuiper, drive any portable plugin, report what eKuiper would suffer."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import zipfile

import pytest

from ekdsl import PackagingError, load_target
from ekdsl.host import Emulator
from ekdsl.host.install import install, load_source_config
from ekdsl.package import export

from .conftest import LAB, PYSAM, SDK_PYSAM, WEATHER, wait_for


def test_official_sdk_pysam(sdk_python, official_sdk_alone):
    with Emulator(str(SDK_PYSAM), python=sdk_python) as emu:
        assert emu.sdk
        src = emu.start_source("pyjson", datasource="topicX", rule="rulePort1")
        assert src.rows(2, timeout=5) == [{"name": "pyjson", "value": 2021}] * 2
        emu.stop(src)

        acked = emu.start_sink("print", {"requireAck": True}, rule="rulePort1")
        assert acked.send(b'[{"name":"pyjson","value":2021}]') is None
        emu.stop(acked)

        unacked = emu.start_sink("print", {}, rule="rulePort2")
        for _ in range(3):
            unacked.send(b'[{"a":1}]')
        assert wait_for(lambda: emu.output.count("receive: ") >= 4)
        emu.stop(unacked)

        revert = emu.function("revert")
        assert revert.exec("pyjson") == (True, "nosjyp")
        assert revert.is_aggregate() == (True, False)
        assert "configuring with datasource ''" in emu.output  # the SDK really lost the DATASOURCE

    findings = "\n".join(emu.findings)
    assert ("sources/pyjson.json: 'properties' must be a map like {\"default\": [...]}; eKuiper fails with "
            "'json map does not have properties value' and silently ignores sources/pyjson.yaml") in findings
    assert "DATASOURCE 'topicX' reaches the plugin only as config['datasource']" in findings
    assert "sink 'print' sent 3 ack(s) without requireAck" in findings


def test_ekdsl_plugin_from_module_and_from_zip(tmp_path):
    with Emulator(str(PYSAM)) as emu:
        assert not emu.sdk and emu.socket_dir and emu.socket_dir.startswith("/tmp/ek")
        src = emu.start_source("pyjson", datasource="t")
        assert src.rows(1)
        emu.stop(src)
        assert emu.findings == []
    assert not os.path.exists(emu.root) and not os.path.exists(emu.socket_dir)
    zipped = export(load_target(str(WEATHER)).model(), str(tmp_path), make_zip=True).zip_path
    with Emulator(zipped) as emu:
        src = emu.start_source("readings", conf_key="fast", datasource="north")
        assert src.rows(2)[0]["station"] == "north"
        assert emu.function("c_to_f").exec(0) == (True, 32.0)


def test_install_layout_and_yaml_semantics(tmp_path):
    pkg = export(load_target(str(WEATHER)).model(), str(tmp_path / "out")).directory
    inst = install(pkg, str(tmp_path / "root"))
    assert os.path.isfile(os.path.join(inst.plugin_dir, "main.py"))
    assert os.path.isfile(inst.etc("sources", "readings.yaml"))
    assert os.path.isfile(os.path.join(inst.root, "data", "functions", "c_to_f.json"))
    assert not os.path.exists(os.path.join(inst.plugin_dir, "sources"))
    conf = load_source_config(inst, "readings", "fast", "north")
    assert conf["period"] == 0.01 and conf["mode"] == "burst" and conf["datasource"] == "north"
    assert conf["format"] == "json" and conf["retainSize"] == 0 and conf["strictValidation"] is False
    # keys not named in the json are lower-cased, as eKuiper's yaml loader does
    with open(inst.etc("sources", "readings.yaml"), "a") as fh:
        fh.write("camel:\n  MyKey: 1\n  Period: 2\n")
    conf = load_source_config(inst, "readings", "camel")
    assert conf["mykey"] == 1 and conf["period"] == 2
    load_source_config(inst, "readings", "nosuch")
    assert any("confKey 'nosuch' is not in sources/readings.yaml" in f for f in inst.findings)


def test_broken_package_is_refused_with_ekuipers_message(tmp_path):
    bad = tmp_path / "pysam.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("other.txt", "x")
    with pytest.raises(PackagingError, match=r"^fail to install plugin: missing or invalid json file pysam\.json"):
        Emulator(str(bad))


def test_native_executable_plugin(tmp_path, sockdir):
    """A Go-style plugin: the executable itself is run, with only the launch argument."""
    pkg = tmp_path / "lab"
    pkg.mkdir()
    exe = pkg / "server"
    exe.write_text(f"#!{sys.executable}\nimport sys\nfrom ekdsl.runtime import main\n"
                   f"sys.exit(main({str(LAB)!r}, sys.argv[1:]))\n")
    exe.chmod(0o755)
    (pkg / "lab.json").write_text(json.dumps({"version": "1", "language": "go", "executable": "server",
                                              "sources": [], "sinks": [], "functions": ["add"]}))
    with Emulator(str(pkg), socket_dir=sockdir) as emu:
        assert emu.host.process.argv == [emu.installed.executable, '{"sendTimeout":1000}']
        assert stat.S_IMODE(os.stat(emu.installed.executable).st_mode) == 0o755
        assert emu.function("add").exec(1, 2) == (True, 3)


def test_unknown_symbol(tmp_path):
    with Emulator(str(PYSAM)) as emu, pytest.raises(PackagingError, match="declares no source 'nope'"):
        emu.start_source("nope")


def _interpreter(version: str) -> str:
    import glob

    found = sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python")) or [
        p for p in (shutil.which(f"python{version}"),) if p]
    return found[0] if found else ""


@pytest.mark.parametrize("version", ["3.9", "3.12"])
def test_plugin_runs_on_other_pythons(version):
    """eKuiper's slim image runs Python 3.12; ekdsl supports 3.9+. The exported plugin needs nothing installed
    there: ekdsl is vendored and the native transport needs no pynng."""
    python = _interpreter(version)
    if not python:
        pytest.skip(f"no Python {version} on this machine")
    with Emulator(str(WEATHER), python=python) as emu:
        assert emu.host.process.argv[0] == python
        assert emu.start_source("readings", conf_key="one").rows(2)
        assert emu.start_sink("archive", {"path": "x.jsonl", "requireAck": True}).send(b'[{"a":1}]') is None
        assert emu.function("spread").exec([1.0, 4.0]) == (True, 3.0)
