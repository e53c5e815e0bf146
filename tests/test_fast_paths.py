"""Each hot loop's fast path against its general path: the same inputs give the same bytes on the wire.

Function replies, source messages, sink acks and the plugin side of the inverted REQ/REP (answers and
keepalives, with an injected clock) are compared byte for byte, with both JSON codecs.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from typing import Any, Iterator, List, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typing_extensions import Annotated

from ekdsl import Context, Param, Plugin
from ekdsl.codec import json_backend, select_json
from ekdsl.protocol import HANDSHAKE, encode_func_request, func_context
from ekdsl.runtime.answer import answer_loop
from ekdsl.runtime.function import FunctionHandler
from ekdsl.runtime.sink import SinkRunner
from ekdsl.runtime.source import SourceRunner
from ekdsl.transport import BadState, Closed, Socket, Timeout

LOG = logging.getLogger("test.fast")
CTX = func_context("r1", "op1", 0, 0)


@pytest.fixture(params=["stdlib", "orjson"])
def codec_choice(request: Any) -> Iterator[str]:
    before = json_backend()
    select_json(request.param)
    yield request.param
    select_json(before)


def _functions() -> Plugin:
    p = Plugin("fast")

    @p.function
    def echo(x: Any) -> Any:
        return x

    @p.function
    def add(a: int, b: int = 10, c: Optional[float] = None) -> float:
        return a + b + (c or 0)

    @p.function
    def join(sep: str, *parts: str) -> str:
        return sep.join(parts)

    @p.function(aggregate=True)
    def total(values: list[float], scale: float = 1.0) -> float:
        return sum(v for v in values if v is not None) * scale

    @p.function
    def raw(b: bytes) -> int:
        return len(b)

    @p.function
    def who(ctx: Context, x: int) -> str:
        return f"{ctx.rule_id}/{ctx.op_id}/{x}"

    @p.function
    def pads(a: str, b: Optional[int], c: Optional[bool]) -> Any:
        return [a, b, c]

    @p.function
    def scalars(f: float, flag: bool, items: list, d: dict) -> Any:
        return [f, flag, items, d]

    @p.function
    def bounded(n: Annotated[int, Param(gt=0)], label: Annotated[str, Param(max_length=3)] = "a") -> str:
        return f"{label}{n}"

    @p.function(aggregate=True)
    def first(column: Any, default: Any = "none") -> Any:
        return [column, default]

    @p.function
    def odd(kind: str) -> Any:
        if kind == "raise":
            raise ValueError("nope")
        if kind == "exit":
            raise SystemExit(3)
        if kind == "object":
            return {"a": [object()]}
        if kind == "nan":
            return [math.nan, math.inf]
        if kind == "when":
            return dt.datetime(2024, 5, 6, 10, 0, tzinfo=dt.timezone.utc)
        if kind == "surrogate":
            return "\udc80"
        return {"kind": kind, "keys": {1: "int key"}}

    return p


def _pair(name: str) -> tuple[FunctionHandler, FunctionHandler]:
    sym = _functions().model().get("function", name)  # type: ignore[arg-type]
    assert sym is not None
    return FunctionHandler("fast", sym, LOG), FunctionHandler("fast", sym, LOG)


REQUESTS = [
    ("echo", ["hello", CTX]), ("echo", [None, CTX]), ("echo", [{"a": [1, 2.5, "x"]}, CTX]), ("echo", [CTX]),
    ("echo", [1, 2, CTX]), ("echo", []), ("echo", "not a list"), ("echo", [1.5, CTX]),
    ("add", [1, CTX]), ("add", [1, 2, CTX]), ("add", [1, None, 2.5, CTX]), ("add", ["x", CTX]), ("add", [CTX]),
    ("add", [1, 2, 3, 4, CTX]), ("add", [True, CTX]), ("add", [2**70, CTX]),
    ("join", ["-", "a", "b", "c", CTX]), ("join", ["-", CTX]), ("join", [CTX]), ("join", ["-", 1, CTX]),
    ("total", [[1.0, 2.0, None], [0.5, 0.5, 0.5], CTX]), ("total", [[], CTX]), ("total", [3.0, CTX]),
    ("total", [["a"], CTX]),
    ("raw", ["aGVsbG8=", CTX]), ("raw", ["plain text", CTX]), ("raw", [None, CTX]),
    ("who", [7, CTX]), ("who", [7, "not json"]), ("who", [7, '{"ruleId":"x","funcId":"y"}']), ("who", [7, 5]),
    ("pads", ["a", CTX]), ("pads", ["a", 2, CTX]), ("pads", ["a", None, True, CTX]), ("pads", [1, CTX]),
    ("pads", ["a", 2.0, CTX]), ("pads", ["a", True, CTX]), ("pads", ["a", 2, 1, CTX]),
    ("scalars", [1.5, True, [1], {"a": 1}, CTX]), ("scalars", [1, False, [], {}, CTX]),
    ("scalars", [1.5, 1, [1], {}, CTX]), ("scalars", [1.5, True, (1,), {}, CTX]),
    ("scalars", [None, True, [], {}, CTX]),
    ("first", [[None, 2, 3], CTX]), ("first", [5, CTX]), ("first", [[1], None, CTX]), ("first", [[1], "x", CTX]),
    ("bounded", [1, CTX]), ("bounded", [0, CTX]), ("bounded", [2, "abcd", CTX]), ("bounded", [2, "ab", CTX]),
    ("odd", ["raise", CTX]), ("odd", ["exit", CTX]), ("odd", ["object", CTX]), ("odd", ["nan", CTX]),
    ("odd", ["when", CTX]), ("odd", ["surrogate", CTX]), ("odd", ["other", CTX]),
]


@pytest.mark.parametrize(("name", "arg"), REQUESTS)
def test_function_fast_path_replies_as_the_general_path(codec_choice, name, arg):
    fast, general = _pair(name)
    for payload in (encode_func_request("Exec", arg), encode_func_request("Validate", arg),
                    encode_func_request("IsAggregate", None), encode_func_request("Exec", arg)):
        assert fast.handle(payload) == general.general(payload)
    assert fast.calls == general.calls


def test_plans_cover_the_arguments_passed_on_unchanged():
    """Per count of arguments: the positions whose exact class says they pass unchanged; converted ones have none."""
    plans = {name: _pair(name)[0].invoker.plans for name in ("echo", "add", "join", "total", "raw", "pads", "first",
                                                             "scalars")}
    assert plans["echo"] == {1: ((), 0)}
    assert plans["add"] == {1: (((0, int),), 0), 2: (((0, int), (1, int)), 0),
                            3: (((0, int), (1, int), (2, float)), 0)}
    assert plans["join"] == {1: (((0, str),), 0)}  # the variadic part is converted item by item
    assert plans["total"] == {} and plans["raw"] == {}  # list[float] and bytes are converted
    assert plans["pads"] == {1: (((0, str),), 2), 2: (((0, str), (1, int)), 1),
                             3: (((0, str), (1, int), (2, bool)), 0)}
    assert plans["first"] == {1: ((), 0)}  # a null for an argument with a default takes the default
    assert plans["scalars"] == {}  # a dict is copied
    assert _pair("bounded")[0].invoker.plans == {}  # a constrained argument is checked, whatever its class


def test_the_fast_path_checks_constraints():
    fast, _ = _pair("bounded")
    reply = fast.handle(encode_func_request("Exec", [0, CTX]))
    assert b"argument 'n' expects int > 0, got 0" in reply and b'"state":false' in reply.replace(b" ", b"")


@pytest.mark.parametrize("payload", [b"", b"\x00garbage", b"[]", b'{"func":"Exec"}', b'{"func":1,"arg":[]}',
                                     b'{"func":"Exec","arg":{}}', b' {"func":"Exec","arg":["a","{}"]} ',
                                     b'{"func":"Nope","arg":[]}', b'{"func":"Exec","arg":[NaN,"{}"]}'])
def test_malformed_requests_take_the_general_path(codec_choice, payload):
    fast, general = _pair("echo")
    assert fast.handle(payload) == general.general(payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["echo", "add", "join", "total", "raw", "pads", "scalars", "first"]),
       args=st.lists(json_values, max_size=4))
def test_any_exec_replies_as_the_general_path(codec_choice, name, args):
    fast, general = _pair(name)
    payload = encode_func_request("Exec", [*args, CTX])
    assert fast.handle(payload) == general.general(payload)


# ---- sources: one message per row


class Capture(Socket):
    """A PUSH socket that keeps what is sent."""

    interruptible = True

    def __init__(self) -> None:
        super().__init__("push", "ipc:///capture")
        self.sent: List[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    def recv(self) -> bytes:
        raise BadState("push", self.url)

    def close(self) -> None:
        pass


class Unknown:
    pass


rows = st.dictionaries(st.text(max_size=6), json_values | st.floats() | st.datetimes() | st.builds(Unknown)
                       | st.just("\ud800") | st.binary(max_size=4), max_size=5)


def _source_runner() -> tuple[SourceRunner, Capture]:
    p = Plugin("fast")

    @p.source
    def src() -> Iterator[dict]:
        yield {}

    model_sym = p.model().get("source", "src")  # type: ignore[arg-type]
    sock = Capture()
    return SourceRunner(model_sym, {}, Context(symbol="src"), sock, LOG), sock  # type: ignore[arg-type]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(rows, max_size=4))
def test_source_rows_are_sent_as_the_general_path_sends_them(codec_choice, items):
    fast, fast_sock = _source_runner()
    general, general_sock = _source_runner()
    for item in items:
        fast._emit(item)
        general._emit_general(item)
    assert fast_sock.sent == general_sock.sent
    assert (fast.rows, fast.skipped) == (general.rows, general.skipped)


# ---- sinks: one call and one ack per message


def _sink_runner(annotation: Any, ack: bool, bare: bool = False) -> tuple[SinkRunner, Capture, List[Any]]:
    """A sink with a property and the context; ``bare``: with neither, so that its function itself is called."""
    p = Plugin("fast")
    calls: List[Any] = []

    def snk(ctx: Context, data: Any, fail: str = "boom") -> None:
        calls.append((ctx.symbol, data))
        if data in (b"boom", "boom", fail) or (isinstance(data, dict) and data.get("fail")):
            raise RuntimeError(f"failed on {data!r}")

    def bare_snk(data: Any) -> None:
        calls.append(data)
        if data in (b"boom", "boom"):
            raise RuntimeError("boom")

    func = bare_snk if bare else snk
    func.__annotations__["data"] = annotation
    p.sink(name="snk")(func)
    sym = p.model().get("sink", "snk")  # type: ignore[arg-type]
    ack_sock = Capture()
    kwargs = {} if bare else {"fail": "boom"}
    runner = SinkRunner(sym, kwargs, Context(symbol="snk"), Capture(), ack_sock, ack, LOG)  # type: ignore[arg-type]
    return runner, ack_sock, calls


PAYLOADS = [b"{}", b'{"a":1}', b"boom", b'"boom"', b"not json", b"\xff\xfe", b"", b'[{"fail":1}]', b"[1,2]"]


@pytest.mark.parametrize("annotation", [bytes, str, Any])
@pytest.mark.parametrize(("ack", "bare"), [(True, False), (False, False), (True, True)])
def test_sink_acks_as_the_general_path(codec_choice, annotation, ack, bare):
    fast, fast_acks, fast_calls = _sink_runner(annotation, ack, bare)
    general, general_acks, general_calls = _sink_runner(annotation, ack, bare)
    deliver = fast._fast_delivery()
    assert deliver is not None
    for payload in PAYLOADS:
        deliver(payload)
        general._deliver(payload)
    assert fast_acks.sent == general_acks.sent
    assert fast_calls == general_calls and len(fast_calls) == len(PAYLOADS)
    assert (fast.received, fast.failed) == (general.received, general.failed)
    assert fast.failed and fast.received == len(PAYLOADS)


def test_row_sinks_have_no_fast_path():
    runner, _, _ = _sink_runner(dict, True)
    assert runner._fast_delivery() is None


# ---- the inverted REQ/REP: answers and keepalives


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Scripted(Socket):
    """A REQ socket whose receives follow a script (a timeout advances the clock by its step).

    ``holds_one``: the peer reads as eKuiper's REP does while it has no command to send: it takes one
    handshake and leaves the next ones unread until it replies."""

    def __init__(self, clock: Clock, script: List[Any], interruptible: bool, holds_one: bool = False) -> None:
        super().__init__("req", "ipc:///scripted")
        self.clock, self.script, self.sent = clock, list(script), []  # type: ignore[var-annotated]
        self.interruptible = interruptible
        self.lane_receives = 0
        self.holds_one, self.waiting = holds_one, -1  # handshakes sent since the peer last replied (the first is read)

    def send(self, data: bytes) -> None:
        step = self.script.pop(0) if self.script and self.script[0] == "refuse" else None
        if step:
            raise Timeout("send timed out", self.url)
        self.sent.append((self.clock.now, bytes(data)))
        self.waiting += data == HANDSHAKE

    def drained(self) -> bool:
        return not self.holds_one or self.waiting <= 1

    def recv(self) -> bytes:
        while self.script and self.script[0] == "refuse":  # meant for a send: none came
            self.script.pop(0)
        step = self.script.pop(0) if self.script else Closed("end of script", self.url)
        if isinstance(step, tuple):  # ("wait", seconds): a receive timeout
            self.clock.now += step[1]
            raise Timeout("timed out", self.url)
        if isinstance(step, Exception):
            raise step
        self.clock.now += 0.001
        self.waiting = 0
        return bytes(step)

    def recv_or_none(self) -> Optional[bytes]:
        self.lane_receives += 1
        return super().recv_or_none()

    def close(self) -> None:
        pass


def _wire(script: List[Any], interruptible: bool, holds_one: bool = False) -> List[Any]:
    clock = Clock()
    sock = Scripted(clock, script, interruptible, holds_one)
    answer_loop(sock, lambda m: b"" if m == b"empty" else b"ok:" + m, lambda: False, clock=clock,
                pause=lambda s: None)
    assert (sock.lane_receives > 0) == interruptible  # a socket close() interrupts takes the lane
    return sock.sent


SCRIPTS = [
    [b"a", b"b", b"c"],
    [("wait", 1.0)] * 7 + [b"cmd"],
    [("wait", 5.0), ("wait", 5.0), b"x", ("wait", 2.0), ("wait", 3.0), b"y"],
    [b"a", "refuse", ("wait", 1.0), b"b"],
    [b"empty", b"handshake?", BadState("no request", "x"), b"z"],
    [b"a", Timeout("late", "x"), b"b"],
]


@pytest.mark.parametrize("holds_one", [False, True])
@pytest.mark.parametrize("script", SCRIPTS)
def test_answer_lane_puts_the_same_bytes_on_the_wire_at_the_same_times(script, holds_one):
    lane = _wire(script, interruptible=True, holds_one=holds_one)
    general = _wire(script, interruptible=False, holds_one=holds_one)
    assert lane == general
    assert lane[0] == (1000.0, HANDSHAKE)


steps = st.one_of(st.binary(min_size=1, max_size=4), st.tuples(st.just("wait"), st.sampled_from([1.0, 2.5, 5.0])),
                  st.just("refuse"))


@given(st.lists(steps, max_size=12), st.booleans())
def test_any_script_puts_the_same_bytes_on_the_wire(script, holds_one):
    assert _wire(script, True, holds_one) == _wire(script, False, holds_one)


@pytest.mark.parametrize("interruptible", [True, False])
def test_keepalives_wait_until_the_peer_has_read_the_last(interruptible):
    """While eKuiper has no command it takes one keepalive and leaves the next unread: a third would only queue
    behind them (each queued one costs its next command a round trip, and a full buffer a send retried every
    second), so none goes until it replies."""
    script = [("wait", 5.0)] * 8 + [b"cmd", ("wait", 5.0)]
    reading = [t for t, data in _wire(script, interruptible) if data == HANDSHAKE]
    assert reading == [1000.0, 1005.0, 1010.0, 1015.0, 1020.0, 1025.0, 1030.0, 1035.0, 1040.0, 1045.001]
    holding = _wire(script, interruptible, holds_one=True)
    assert holding == [(1000.0, HANDSHAKE), (1005.0, HANDSHAKE), (1010.0, HANDSHAKE), (1040.001, b"ok:cmd"),
                       (1045.001, HANDSHAKE)]


@pytest.mark.parametrize("unread_wait", [None, 60.0])
def test_a_lane_waits_longer_while_a_keepalive_is_unread(unread_wait):
    """eKuiper reads a queued keepalive only when it sends a command, which wakes the receive: a channel whose
    stop and end interrupt the receive sleeps till then (None) or looks at its parent now and then (60 s),
    instead of waking every 5 s; the wire is the same."""
    script = [("wait", 5.0)] * 4 + [b"cmd", ("wait", 5.0)]
    clock = Clock()
    sock = Scripted(clock, script, interruptible=True, holds_one=True)
    sock.recv_timeout = 5.0
    timeouts = []
    receive = sock.recv_or_none

    def recv_or_none() -> Optional[bytes]:
        timeouts.append(sock.recv_timeout)
        return receive()

    sock.recv_or_none = recv_or_none  # type: ignore[method-assign]
    answer_loop(sock, lambda m: b"ok:" + m, lambda: False, clock=clock, unread_wait=unread_wait)
    assert timeouts == [5.0, 5.0, 5.0, unread_wait, unread_wait, 5.0, 5.0]
    assert sock.recv_timeout == 5.0
    assert sock.sent == _wire(script, interruptible=True, holds_one=True)


def test_the_lane_stops_when_asked_at_a_timeout():
    clock = Clock()
    stop = threading.Event()
    sock = Scripted(clock, [b"a", ("wait", 1.0), b"never"], interruptible=True)
    answer_loop(sock, lambda m: (stop.set(), b"ok")[1], stop.is_set, clock=clock)
    assert [d for _, d in sock.sent] == [HANDSHAKE, b"ok"]
