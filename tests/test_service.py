"""``python -m ekdsl service`` over real sockets, called as eKuiper calls it, against the portable runtime."""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
import threading
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from ekdsl.host import Emulator

from .conftest import ROOT, wait_for
from .service_clients import (
    PLUGIN,
    PROTO,
    CallFailed,
    GrpcClient,
    Gunicorn,
    MsgpackClient,
    RestClient,
    Service,
    jsonpb,
)

PROTOCOLS = ["rest", "grpc", "msgpack-rpc"]

# (function, arguments): one argument, several, none, zero values, lists, an object, bytes, a default
CASES: List[Tuple[str, Tuple[Any, ...]]] = [
    ("shout", ("hello",)),
    ("add", (2, 40)),
    ("add", (0, -7)),
    ("tau", ()),
    ("stats", ([1.5, 2.5, 5.0],)),
    ("scale", ([1.0, 2.0], 3.0)),
    ("flip", (b"abc\x00\xff",)),
    ("positive", (-1.5,)),
    ("positive", (0.0,)),
]


def client(protocol: str, port: int) -> Any:
    if protocol == "grpc":
        return GrpcClient(port, str(PROTO))
    return RestClient(port) if protocol == "rest" else MsgpackClient(port)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(str(PLUGIN), socket_dir=str(tmp_path_factory.mktemp("sock"))) as emu:
        yield emu


@pytest.fixture(scope="module", params=PROTOCOLS)
def service(request: pytest.FixtureRequest) -> Iterator[Tuple[str, Service]]:
    svc = Service(request.param)
    yield request.param, svc
    assert svc.stop() == 0, "".join(svc.output)
    assert "stopped serving 'svcfuncs'" in "".join(svc.output)


_HANDLES: Dict[Tuple[int, str], Any] = {}


def portable(emulator: Emulator, name: str, args: Tuple[Any, ...]) -> Tuple[bool, Any]:
    """The same call through eKuiper's portable function channel (one handle per function and emulator)."""
    key = (id(emulator), name)
    if key not in _HANDLES:
        _HANDLES[key] = emulator.function(name)
    ok, result = _HANDLES[key].exec(*args)
    if ok and name == "flip":
        result = base64.b64decode(result)  # the function channel carries bytes as base64, like Go's []byte
    return ok, result


def unwrap(name: str, value: Any) -> Any:
    """What SQL sees from a service reply, in the portable function's terms: a list comes in ``result``."""
    return value["result"] if name == "scale" else value


@pytest.mark.parametrize(("name", "args"), CASES, ids=[f"{n}{len(a)}" for n, a in CASES])
def test_service_answers_as_the_portable_runtime(service, emulator, name, args):
    protocol, svc = service
    c = client(protocol, svc.port)
    try:
        got = unwrap(name, c.call(name, *args))
    finally:
        c.close()
    assert (True, got) == portable(emulator, name, args)


def test_a_raising_function_fails_the_call_not_the_connection(service, emulator):
    protocol, svc = service
    c = client(protocol, svc.port)
    try:
        for name in ("boom", "leave"):  # an exception, and SystemExit
            with pytest.raises(CallFailed) as failed:
                c.call(name, 7)
            ok, error = portable(emulator, name, (7,))
            assert not ok
            assert error in str(failed.value)
        assert c.call("add", 1, 2) == 3  # the same connection serves on
    finally:
        c.close()


def test_an_integer_past_int64_is_a_call_error_not_a_wrapped_bigint(service):
    """eKuiper turns a reply's integers into int64 without a range check (``pkg/cast/cast.go`` ``ToInt64``: a uint64
    or a float64 is cast as it is), and reads a rest reply's JSON numbers as float64 (``internal/service/schema.go``
    ``ConvertReturnJson``): seen on the real server, 2**63 + 1 came back from msgpack-rpc as -2**63 + 1, and from a
    rest JSON reply as -2**63, as did 2**63 - 1. The service refuses such results instead."""
    protocol, svc = service
    c = client(protocol, svc.port)
    try:
        assert c.call("ipow", 2, 62) == 2**62
        assert c.call("ipow", -2, 63) == -(2**63)  # the smallest int64 is one
        for name, args, text in [("ipow", (2, 63), "ipow() returned 9223372036854775808, past int64"),
                                 ("ipows", (2, [3, 64]), "ipows() returned 18446744073709551616 in result[1], "
                                                         "past int64")]:
            with pytest.raises(CallFailed) as failed:
                c.call(name, *args)
            assert text in str(failed.value)
        top = 2**63 - 1  # exact in a wrapper's text and in grpc and msgpack; a JSON number rounds it to 2**63
        assert c.call("ipow", top, 1) == top
        if protocol == "rest":
            with pytest.raises(CallFailed) as failed:
                c.call("ipows", top, [1])
            assert "ipows() result cannot be sent: 9223372036854775807 in result[0] rounds past int64" in str(
                failed.value)
        else:
            assert c.call("ipows", top, [1]) == {"result": [top]}
        assert c.call("add", 1, 2) == 3
    finally:
        c.close()


def test_wrong_arity_is_a_call_error(service, emulator):
    protocol, svc = service
    c = client(protocol, svc.port)
    try:
        if protocol == "msgpack-rpc":
            msgid = c.send("add", [1, 2, 3])
            assert c.receive() == (msgid, portable(emulator, "add", (1, 2, 3))[1].encode(), None)
            msgid = c.send("shout", [None])  # one null argument where a string is required
            assert c.receive() == (msgid, portable(emulator, "shout", (None,))[1].encode(), None)
            with pytest.raises(CallFailed, match="no function 'nosuch'"):
                c.call("nosuch")
        elif protocol == "grpc":  # eKuiper refuses a wrong count before it calls; an unknown rpc is UNIMPLEMENTED
            with pytest.raises(CallFailed) as failed:
                c.call_raw("nosuch", b"")
            assert failed.value.args[0] == "UNIMPLEMENTED"
            with pytest.raises(CallFailed) as failed:
                c.call_raw("add", b"\xff\xff\xff")  # not a protobuf message
            assert failed.value.args[0] in ("INTERNAL", "UNKNOWN", "INVALID_ARGUMENT")
        else:
            with pytest.raises(CallFailed) as failed:
                c.call("add", body=b'{"a": "1", "b": "2", "c": "3"}')
            assert failed.value.args == (400, "add() has no parameter 'c': it takes a, b")
            with pytest.raises(CallFailed) as failed:
                c.call("add", body=b"[1, 2]")
            assert failed.value.args[0] == 400
            with pytest.raises(CallFailed) as failed:
                _raise_rest(c, "nosuch")
            assert failed.value.args[0] == 404 and "no function 'nosuch'" in failed.value.args[1]
        assert c.call("add", 20, 22) == 42
    finally:
        c.close()


def _raise_rest(c: RestClient, method: str) -> None:
    c.conn.request("POST", f"/{method}", body=b"{}", headers={"Content-Type": "application/json"})
    resp = c.conn.getresponse()
    raise CallFailed(resp.status, resp.read().decode())


def test_eight_concurrent_clients(service):
    protocol, svc = service
    errors: List[str] = []

    def run(k: int) -> None:
        c = client(protocol, svc.port)
        try:
            for i in range(25):
                got = c.call("add", i, k * 1000)
                if got != i + k * 1000:
                    errors.append(f"client {k} call {i}: {got!r}")
        except Exception as exc:  # collected, the test fails below
            errors.append(f"client {k}: {exc!r}")
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_msgpack_calls_on_one_connection_overlap_and_keep_their_ids(tmp_path):
    svc = Service("msgpack-rpc")
    c = MsgpackClient(svc.port)
    try:
        marker = tmp_path / "started"
        slow = c.send("nap", [str(marker), 1.0])
        assert wait_for(marker.exists, 10)
        fast = c.send("add", [1, 1])
        assert c.receive() == (fast, None, 2)  # answered while the slow call still runs
        assert c.receive() == (slow, None, b"rested")
    finally:
        c.close()
        assert svc.stop() == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sigterm_lets_the_call_in_flight_answer(protocol, tmp_path):
    svc = Service(protocol)
    marker = tmp_path / "started"
    answer: List[Any] = []
    c = client(protocol, svc.port)
    caller = threading.Thread(target=lambda: answer.append(c.call("nap", str(marker), 1.0)))
    caller.start()
    try:
        assert wait_for(marker.exists, 10)
        svc.proc.send_signal(signal.SIGTERM)
        caller.join(20)
        assert answer == ["rested"]
        assert svc.proc.wait(timeout=20) == 0
        assert "stopped serving 'svcfuncs'" in "".join(svc.output)
    finally:
        c.close()
        svc.stop()


def test_workers_run_calls_in_other_processes():
    svc = Service("msgpack-rpc", "--workers", "2")
    try:
        assert "with 2 workers" in "".join(svc.output)
        clients = [MsgpackClient(svc.port) for _ in range(4)]
        pids = {c.call("whoami") for c in clients for _ in range(3)}
        assert svc.proc.pid not in pids and len(pids) <= 2
        assert clients[0].call("add", 2, 3) == 5
        with pytest.raises(CallFailed, match="RuntimeError: boom 1"):
            clients[1].call("boom", 1)
        with pytest.raises(CallFailed, match="worker process failed"):
            clients[2].call("crash", 3)
        assert clients[2].call("add", 4, 5) == 9  # a new pool took over
        for c in clients:
            c.close()
    finally:
        assert svc.stop() == 0


def test_jsonpb_names_and_int64_strings_are_read():
    assert jsonpb("add", (0, 5)) == b'{"b": "5"}'  # the client follows jsonpb: zero left out, int64 as text
    from ekdsl.plugin import load_target
    from ekdsl.service.functions import Functions

    functions = Functions(load_target(str(PLUGIN)).model())
    shape = functions.shape("add")
    assert shape is not None
    assert shape.args_from_json({"b": "5"}) == [0, "5"]
    assert functions.run("add", shape.args_from_json({"b": "5"})).value == 5
    assert functions.shape("tau").args_from_msgpack([None]) == []  # type: ignore[union-attr]
    assert [s.symbol for s in functions.skipped] == ["anything"]


def test_integers_past_int64_are_found_in_nested_replies(make_module):
    path = make_module("""
        from typing import List
        from typing_extensions import TypedDict
        from ekdsl import Plugin

        plugin = Plugin("nested", version="1.0.0")

        class Cell(TypedDict):
            n: int
            x: float

        class Grid(TypedDict):
            cells: List[Cell]
            ids: List[int]

        @plugin.function
        def grid(n: int) -> Grid:
            return {"cells": [{"n": 1, "x": 2.0**70}, {"n": n, "x": 0.0}], "ids": [n, 2]}
    """)
    from ekdsl.plugin import load_target
    from ekdsl.service.functions import Functions

    functions = Functions(load_target(str(path)).model())
    shape = functions.shape("grid")
    assert shape is not None
    # an integer in a double field is not an int64
    assert list(shape.reply_ints({"cells": [{"n": 1, "x": 5}], "ids": [7]})) == [("cells[0].n", 1), ("ids[0]", 7)]
    assert functions.run("grid", [3]).ok
    failed = functions.run("grid", [2**63])
    assert (failed.ok, failed.status) == (False, "failed")
    assert failed.value == ("grid() returned 9223372036854775808 in cells[1].n, past int64 (eKuiper's bigint): "
                            "return a float or a str for numbers this large")


def test_cli_service_help_and_lazy_imports():
    proc = subprocess.run([sys.executable, "-m", "ekdsl", "service", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0
    assert "--listen" in proc.stdout and "--workers" in proc.stdout and "msgpack-rpc" in proc.stdout
    code = ("import sys, ekdsl.cli as c; c._parser().parse_args(['run', 'x']); "
            "print(sorted(m for m in sys.modules if m.startswith(('ekdsl.service', 'uvicorn', 'grpc', 'google', "
            "'msgpack', 'pebble', 'http.server'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    # building every command's options reads the service's defaults, and nothing else of it
    assert out.stdout.strip() == "['ekdsl.service', 'ekdsl.service.options']", out.stderr


def test_cli_service_refuses_a_bad_listen_address():
    proc = subprocess.run([sys.executable, "-m", "ekdsl", "service", str(PLUGIN), "--listen", "nowhere"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert "--listen expects HOST:PORT" in proc.stderr



def test_service_benchmark_takes_its_arguments():
    proc = subprocess.run([sys.executable, "benchmarks/services.py", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0
    assert "--seconds" in proc.stdout and "--json" in proc.stdout


def test_gunicorn_with_several_workers_answers_as_the_portable_runtime(emulator, tmp_path):
    server = Gunicorn(2, EKDSL_SERVICE_CALL_TIMEOUT="1")
    clients = [RestClient(server.port) for _ in range(6)]
    try:
        for name, args in CASES:
            assert (True, unwrap(name, clients[0].call(name, *args))) == portable(emulator, name, args)
        pids = {c.call("whoami") for c in clients for _ in range(3)}
        assert server.proc.pid not in pids and len(pids) == 2  # both workers serve
        with pytest.raises(CallFailed) as failed:
            clients[1].call("nap", str(tmp_path / "m"), 3600.0)
        assert failed.value.args[0] == 504 and "deadline" in failed.value.args[1]
        assert clients[1].call("add", 1, 2) == 3
    finally:
        for c in clients:
            c.close()
        assert server.stop() == 0
    assert "Shutting down: Master" in "".join(server.output)


def test_rest_app_mounted_under_a_prefix_takes_the_function_from_the_rest_of_the_path():
    import asyncio

    from ekdsl.plugin import load_target
    from ekdsl.service.calls import Calls
    from ekdsl.service.functions import Functions
    from ekdsl.service.rest import RestApp

    app = RestApp(Calls(Functions(load_target(str(PLUGIN)).model())))

    async def post(path: str, root: str) -> Tuple[int, bytes]:
        sent: List[Dict[str, Any]] = []
        body = [{"type": "http.request", "body": b'{"a": "2", "b": "3"}', "more_body": False}]

        async def receive() -> Dict[str, Any]:
            return body.pop(0)

        async def send(message: Dict[str, Any]) -> None:
            sent.append(message)

        await app({"type": "http", "method": "POST", "path": path, "root_path": root, "headers": []}, receive, send)
        return sent[0]["status"], sent[1]["body"]

    try:
        assert asyncio.run(post("/geo/add", "/geo")) == (200, b"5")  # Ray Serve's route_prefix="/geo"
        assert asyncio.run(post("/add", "")) == (200, b"5")
        assert asyncio.run(post("/geo/add", ""))[0] == 404
    finally:
        app.calls.close()


def test_service_settings_from_text_or_numbers_name_the_one_at_fault():
    from ekdsl.errors import UsageError
    from ekdsl.service.options import from_env, from_values

    assert from_values({"call_timeout": 2, "max_body": 4096, "grace": "0.5"}, str)[3:] == from_values(
        {"call_timeout": "2", "max_body": "4096", "grace": 0.5}, str)[3:]
    for values, error in [({"max_body": 1.5}, "max_body=1.5 is not a valid int"),
                          ({"call_timeout": True}, "call_timeout=True is not a valid float"),
                          ({"call_timeout": "0"}, "call_timeout must be a positive number of seconds")]:
        with pytest.raises(UsageError, match=error):
            from_values(values, lambda name: name)
    with pytest.raises(UsageError, match="EKDSL_SERVICE_MAX_BODY='x' is not a valid int"):
        from_env({"EKDSL_SERVICE_MAX_BODY": "x"})
