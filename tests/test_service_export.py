"""``export --service``: the description json, the proto3 schema and the zip eKuiper's ``POST /services`` takes."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ekdsl.errors import PackagingError
from ekdsl.plugin import load_target
from ekdsl.service.export import service_address, service_files
from ekdsl.service.schema import NotServable, json_name, shape_of

from .conftest import ROOT

PLUGIN = Path(__file__).resolve().parent / "plugins" / "svcfuncs.py"
GOLDEN = Path(__file__).resolve().parent / "golden" / "service"


def export(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ekdsl", "export", str(PLUGIN), "-o", str(tmp_path),
                           "--service", "127.0.0.1:8000", *extra], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


def test_export_service_writes_golden_json_and_proto_in_the_registration_zip(tmp_path):
    proc = export(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "not served: anything(): parameter 'x' is any" in proc.stdout
    with zipfile.ZipFile(tmp_path / "svcfuncs.service.zip") as zf:
        assert zf.namelist() == ["schemas/", "schemas/svcfuncs.proto", "svcfuncs.json"]
        for name, golden in (("svcfuncs.json", "svcfuncs.json"), ("schemas/svcfuncs.proto", "svcfuncs.proto")):
            assert zf.read(name).decode() == (GOLDEN / golden).read_text(encoding="utf-8"), name
    assert (tmp_path / "schemas" / "svcfuncs.proto").read_bytes() == (GOLDEN / "svcfuncs.proto").read_bytes()
    first = (tmp_path / "svcfuncs.service.zip").read_bytes()
    assert export(tmp_path).returncode == 0
    assert (tmp_path / "svcfuncs.service.zip").read_bytes() == first  # deterministic


def test_msgpack_rpc_export_dials_tcp(tmp_path):
    assert export(tmp_path, "--protocol", "msgpack-rpc").returncode == 0
    desc = json.loads((tmp_path / "svcfuncs.json").read_text(encoding="utf-8"))
    iface = desc["interfaces"]["svcfuncs"]
    assert (iface["address"], iface["protocol"], iface["schemaFile"]) == (
        "tcp://127.0.0.1:8000", "msgpack-rpc", "svcfuncs.proto")


def test_generated_proto_compiles_with_protoc(tmp_path):
    grpc_tools = pytest.importorskip("grpc_tools", reason="grpcio-tools is not installed")
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(["protoc", f"-I{GOLDEN}", f"-I{well_known}", f"--python_out={tmp_path}",
                        f"--descriptor_set_out={tmp_path / 'set.pb'}", str(GOLDEN / "svcfuncs.proto")])
    assert code == 0
    assert (tmp_path / "svcfuncs_pb2.py").exists()


@pytest.mark.parametrize(("address", "protocol", "url"), [
    ("127.0.0.1:8000", "rest", "http://127.0.0.1:8000"),
    ("https://svc.example:443/", "rest", "https://svc.example:443"),
    ("localhost:9", "msgpack-rpc", "tcp://localhost:9"),
])
def test_service_address(address, protocol, url):
    assert service_address(address, protocol) == url


@pytest.mark.parametrize(("address", "protocol"), [
    ("http://h:1", "msgpack-rpc"), ("h:port", "rest"), ("h:1", "grpc"), ("tcp://h:1", "rest")])
def test_service_address_refuses(address, protocol):
    with pytest.raises(PackagingError):
        service_address(address, protocol)


def test_a_plugin_without_servable_functions_is_refused(make_module):
    path = make_module("""
        from ekdsl import function

        @function
        def ident(x):
            return x
        """)
    with pytest.raises(PackagingError, match=r"no function to serve: ident\(\): parameter 'x' is any"):
        service_files(load_target(str(path)).model(), "h:1", "rest")


def test_unservable_signatures_say_why(make_module):
    path = make_module("""
        from typing import List
        from ekdsl import function

        @function
        def grid(rows: List[List[int]]) -> int:
            return 0

        @function
        def many(*xs: int) -> int:
            return 0

        @function
        def untyped(x: int):
            return 0
        """)
    reasons = {}
    for sym in load_target(str(path)).model().functions:
        with pytest.raises(NotServable) as err:
            shape_of(sym)
        reasons[sym.name] = err.value.reason
    assert "list of lists" in reasons["grid"]
    assert "variadic" in reasons["many"]
    assert reasons["untyped"].startswith("the result is any")


def test_json_names_follow_protoc():
    assert [json_name(n) for n in ("a", "max_value", "x_1_y")] == ["a", "maxValue", "x1Y"]
