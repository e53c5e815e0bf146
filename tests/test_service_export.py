"""``export --service``: the description json, the proto3 schema and the zip eKuiper's ``POST /services`` takes."""

from __future__ import annotations

import json
import keyword
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ekdsl.errors import EkdslError, PackagingError
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
    ("10.0.0.2:50051", "grpc", "tcp://10.0.0.2:50051"),
])
def test_service_address(address, protocol, url):
    assert service_address(address, protocol) == url


@pytest.mark.parametrize(("address", "protocol"), [
    ("http://h:1", "msgpack-rpc"), ("h:port", "rest"), ("h:1", "soap"), ("tcp://h:1", "rest"), ("http://h:1", "grpc")])
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


def test_grpc_export_dials_tcp_and_names_the_protocol(tmp_path):
    assert export(tmp_path, "--protocol", "grpc").returncode == 0
    iface = json.loads((tmp_path / "svcfuncs.json").read_text(encoding="utf-8"))["interfaces"]["svcfuncs"]
    assert (iface["address"], iface["protocol"]) == ("tcp://127.0.0.1:8000", "grpc")


def _protoc(tmp_path: Path, proto_text: str, name: str) -> int:
    grpc_tools = pytest.importorskip("grpc_tools", reason="grpcio-tools is not installed")
    from grpc_tools import protoc

    folder = tmp_path / f"p{abs(hash(proto_text))}"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.proto").write_text(proto_text, encoding="utf-8")
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    return int(protoc.main(["protoc", f"-I{folder}", f"-I{well_known}", f"--descriptor_set_out={folder / 'set.pb'}",
                            str(folder / f"{name}.proto")]))


def test_names_that_are_not_proto_identifiers_are_mapped(make_module, tmp_path):
    path = make_module("""
        from ekdsl import Plugin

        plugin = Plugin("1geo")

        @plugin.function(name="c-to-f")
        def c_to_f(celsius: float) -> float:
            return celsius * 9 / 5 + 32

        @plugin.function(name="2x")
        def twice(x: int) -> int:
            return 2 * x
        """)
    model = load_target(str(path)).model()
    files, skipped = service_files(model, "h:1", "grpc")
    assert skipped == []
    text = files["schemas/1geo.proto"][0].decode()
    assert "package ekdsl._1geo;" in text and "service _1geo {" in text
    assert "rpc c_to_f(CToFRequest)" in text and "rpc _2x(_2xRequest)" in text
    assert _protoc(tmp_path, text, "1geo") == 0
    functions = json.loads(files["1geo.json"][0])["interfaces"]["1geo"]["functions"]
    assert [(f["name"], f["serviceName"]) for f in functions] == [("c-to-f", "c_to_f"), ("2x", "_2x")]


def test_names_that_would_collide_in_the_proto_are_refused_with_the_fix(make_module, tmp_path):
    path = make_module("""
        from typing_extensions import TypedDict
        from ekdsl import Plugin

        plugin = Plugin("stats")

        class Stats(TypedDict):
            n: int

        class Pair(TypedDict):
            max_value: int
            maxValue: int

        @plugin.function(name="c-to-f")
        def a(x: float) -> float:
            return x

        @plugin.function(name="c_to_f")
        def b(x: float) -> float:
            return x

        @plugin.function
        def summary(x: int) -> Stats:
            return {"n": x}

        @plugin.function
        def pair(x: int) -> Pair:
            return {"max_value": x, "maxValue": x}
        """)
    model = load_target(str(path)).model()
    files, skipped = service_files(model, "h:1", "grpc")
    reasons = {s.symbol: s.reason for s in skipped}
    assert "rpc name 'c_to_f' is taken by function 'c-to-f'" in reasons["c_to_f"]
    assert "message Stats has the name of the service" in reasons["summary"]
    assert "fields 'max_value' and 'maxValue'" in reasons["pair"]
    assert _protoc(tmp_path, files["schemas/stats.proto"][0].decode(), "stats") == 0


def test_the_runtime_descriptor_is_the_one_protoc_makes(tmp_path):
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2

    from ekdsl.service.proto import file_descriptor
    from ekdsl.service.schema import proto_text, shapes

    model = load_target(str(PLUGIN)).model()
    served, _ = shapes(model)
    assert _protoc(tmp_path, proto_text(model, served), "svcfuncs") == 0
    folder = next(p for p in tmp_path.iterdir() if (p / "set.pb").exists())
    theirs = descriptor_pb2.FileDescriptorSet.FromString((folder / "set.pb").read_bytes()).file[0]
    assert file_descriptor(model, served) == theirs


NAMES = st.from_regex(r"[A-Za-z0-9_\-]{1,12}", fullmatch=True)
PARAMS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(lambda n: not keyword.iskeyword(n))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plugin=NAMES, functions=st.lists(st.tuples(NAMES, st.lists(PARAMS, max_size=3, unique=True)),
                                        min_size=1, max_size=4))
def test_any_plugin_and_function_names_give_a_proto_protoc_accepts(tmp_path, plugin, functions):
    from ekdsl import Plugin

    p = Plugin(plugin)
    for i, (fname, params) in enumerate(functions):
        namespace: dict = {}
        exec(f"def f{i}({', '.join(f'{n}: int' for n in params)}) -> int:\n    return 0", namespace)
        p.function(name=fname)(namespace[f"f{i}"])
    try:
        model = p.model()
    except EkdslError:
        return  # a definition ekdsl refuses anyway (duplicate names, reserved ones)
    try:
        files, _skipped = service_files(model, "h:1", "grpc")
    except PackagingError:
        return  # nothing left to serve: every function was refused, each with its reason
    assert _protoc(tmp_path, files[f"schemas/{plugin}.proto"][0].decode(), plugin) == 0
