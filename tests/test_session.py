"""The protocol core's state tables (``ekdsl.session``) and sink framings (``ekdsl.framing``), with an
injected clock: every rule about time is checked in microseconds here, and once in real time elsewhere."""

from __future__ import annotations

import json
from typing import Any, List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ekdsl.errors import TransportError
from ekdsl.framing import encode_sink_messages, sink_events, sink_rows
from ekdsl.protocol import HANDSHAKE
from ekdsl.runtime.answer import answer_loop
from ekdsl.session import (
    KEEPALIVE,
    Discarded,
    HostExchange,
    Keepalive,
    PluginSession,
    Reply,
    Request,
    Restart,
    SessionError,
    Stale,
    is_source_failure,
    safe_answer,
    source_error,
    source_failed,
)
from ekdsl.transport import BadState, Closed, Socket, Timeout


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedSocket(Socket):
    """A REQ socket whose receives follow a script; every timeout advances the fake clock by one second."""

    def __init__(self, clock: FakeClock, script: List[Any]) -> None:
        super().__init__("req", "ipc:///nowhere")
        self.clock, self.script, self.sent = clock, list(script), []  # type: ignore[var-annotated]

    def send(self, data: bytes) -> None:
        self.sent.append((self.clock.now, bytes(data)))

    def recv(self) -> bytes:
        step = self.script.pop(0) if self.script else Closed("end of script", self.url)
        if isinstance(step, Exception):
            if isinstance(step, Timeout):
                self.clock.now += 1.0
            raise step
        return bytes(step)

    def close(self) -> None:
        pass


def timeouts(n: int) -> List[Any]:
    return [Timeout("timed out", "ipc:///nowhere") for _ in range(n)]


# ---------------------------------------------------------------- plugin side


def test_plugin_session_follows_its_table():
    s = PluginSession()
    s.start(0.0)
    assert s.data_to_send() == HANDSHAKE
    s.sent(0.0)
    assert s.data_to_send() is None
    s.receive(b'{"cmd":"start"}', 1.0)
    assert s.next_event() == Request(b'{"cmd":"start"}')
    s.send(b"ok")
    assert s.data_to_send() == b"ok"
    s.sent(1.0)
    with pytest.raises(SessionError):
        s.send(b"ok")  # nothing asked


def test_keepalive_after_five_idle_seconds_of_an_injected_clock():
    s = PluginSession()
    s.start(0.0)
    s.sent(0.0)
    s.tick(KEEPALIVE - 0.001)
    assert s.data_to_send() is None and s.next_event() is None
    s.tick(KEEPALIVE)
    assert s.next_event() == Keepalive(KEEPALIVE)
    assert s.data_to_send() == HANDSHAKE


def test_answer_loop_sends_the_keepalive_after_five_seconds_idle():
    """The driver over a scripted socket: 7 fake seconds of silence pass in well under 0.1 s of real time."""
    clock = FakeClock()
    start = clock.now
    sock = ScriptedSocket(clock, [*timeouts(7), b"cmd"])
    answer_loop(sock, lambda m: b"ok:" + m, lambda: False, clock=clock)
    assert sock.sent == [(start, HANDSHAKE), (start + 5, HANDSHAKE), (start + 7, b"ok:cmd")]


def test_answer_loop_greets_again_after_a_broken_exchange():
    clock = FakeClock()
    pauses: List[float] = []
    sock = ScriptedSocket(clock, [BadState("no request", "x"), TransportError("Connection reset", "x"), b"cmd"])
    answer_loop(sock, lambda m: b"ok", lambda: False, clock=clock, pause=pauses.append)
    assert [d for _, d in sock.sent] == [HANDSHAKE, HANDSHAKE, HANDSHAKE, b"ok"]
    assert pauses == [0.1]  # only a dead connection waits before greeting again


def test_answer_loop_ends_when_idle_says_ekuiper_is_gone():
    clock = FakeClock()
    sock = ScriptedSocket(clock, timeouts(100))
    answer_loop(sock, lambda m: b"ok", lambda: False, lambda: clock.now >= 1003, clock=clock)
    assert [d for _, d in sock.sent] == [HANDSHAKE]


def test_broken_exchange_restarts_with_a_handshake():
    s = PluginSession()
    s.start(0.0)
    s.sent(0.0)
    s.broken(2.0)
    assert s.next_event() == Restart() and s.data_to_send() == HANDSHAKE


@pytest.mark.parametrize("answer", [b"", b"hello", b"handshake"])
def test_an_answer_the_host_would_take_for_a_keepalive_is_rewritten(answer):
    out = safe_answer(answer)
    assert out and out[:1] != b"h"


def test_a_source_error_is_a_json_string():
    assert source_error('bad "x"') == b'"bad \\"x\\""'
    last = source_error(source_failed("ticker", "ValueError: boom"))
    assert is_source_failure(last, "ticker")
    assert not is_source_failure(last, "other") and not is_source_failure(b'{"message":{}}', "ticker")


# ---------------------------------------------------------------- host side


def test_host_exchange_resends_after_a_stale_handshake():
    ex = HostExchange(b"cmd")
    assert ex.data_to_send() == b"cmd"
    ex.sent()
    assert ex.receive(b"handshake") == Stale(b"handshake")
    assert ex.data_to_send() == b"cmd"  # eKuiper sends its command again
    ex.sent()
    assert ex.receive(b"ok") == Reply(b"ok")
    assert ex.stale == 1 and ex.data_to_send() is None


def test_host_exchange_discards_a_pending_reply_when_the_send_is_refused():
    ex = HostExchange(b"call")
    ex.refused()  # ErrProtoState: the plugin's previous answer is still to be read
    assert ex.data_to_send() is None
    assert ex.receive(b'{"state":true}') == Discarded(b'{"state":true}')
    assert ex.data_to_send() == b"call"
    ex.sent()
    assert ex.receive(b"x") == Reply(b"x")
    with pytest.raises(SessionError):
        ex.receive(b"y")


# ---------------------------------------------------------------- sink framings

rows_st = st.lists(st.dictionaries(st.text(max_size=3), st.integers(), max_size=3), max_size=6)
events_st = st.lists(st.one_of(rows_st.filter(bool), st.dictionaries(st.text(max_size=3), st.integers())),
                     max_size=5)


@given(events_st, st.booleans(), st.integers(0, 4))
def test_every_framing_decodes_to_the_rows_sent(events, send_single, batch):
    flat = [r for e in events for r in (e if isinstance(e, list) else [e])]
    got = [r for p in encode_sink_messages(events, send_single, batch) for r in sink_rows(json.loads(p))]
    assert got == flat


def test_framings_as_eKuiper_sends_them():
    rows = [{"a": 1}, [{"a": 2}, {"a": 3}]]
    assert list(encode_sink_messages(rows)) == [b'[{"a":1}]', b'[{"a":2},{"a":3}]']  # Go's encoding/json
    assert list(encode_sink_messages(rows, send_single=True)) == [b'{"a":1}', b'{"a":2}', b'{"a":3}']
    assert list(encode_sink_messages(rows, batch=2)) == [b'[[{"a":1}],[{"a":2},{"a":3}]]']
    assert list(encode_sink_messages([{"b": "<&>", "a": 1}])) == [b'[{"a":1,"b":"\\u003c\\u0026\\u003e"}]']
    assert sink_events({"a": 1}) == [[{"a": 1}]]
    assert sink_events([[{"a": 1}], [{"a": 2}]]) == [[{"a": 1}], [{"a": 2}]]
    assert sink_events([{"a": 1}]) == [[{"a": 1}]]


def test_answer_loop_keeps_no_event_behind(monkeypatch):
    """The driver takes every event the session makes: a long-lived channel must not grow with its traffic."""
    sessions: List[PluginSession] = []
    real = PluginSession.__init__

    def spy(self: PluginSession, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        sessions.append(self)

    class Chatty:
        def __init__(self) -> None:
            self.incoming = [b"call %d" % i for i in range(1000)]
            self.sent = 0

        def send(self, data: bytes) -> None:
            self.sent += 1

        def recv(self) -> bytes:
            if not self.incoming:
                raise Closed("done")
            return self.incoming.pop()

    monkeypatch.setattr(PluginSession, "__init__", spy)
    sock = Chatty()
    answer_loop(sock, lambda m: b"ok", lambda: False)  # type: ignore[arg-type]
    assert sock.sent == 1001  # the handshake and one answer per call
    assert sessions and sessions[0].next_event() is None


def test_a_session_greeted_by_its_driver_waits_for_the_first_command():
    """The plugin process sends the handshake before it imports the runtime; the session then starts waiting."""
    s = PluginSession()
    s.start(0.0, greeted=True)
    assert s.data_to_send() is None
    s.receive(b'{"cmd":"start"}', 1.0)
    assert s.next_event() == Request(b'{"cmd":"start"}')
    s.tick(0.5)
    assert s.next_event() is None


def test_answer_loop_of_a_greeted_socket_answers_without_greeting_again():
    clock = FakeClock()
    start = clock.now
    sock = ScriptedSocket(clock, [*timeouts(6), b"cmd"])
    answer_loop(sock, lambda m: b"ok:" + m, lambda: False, clock=clock, greeted=True)
    assert sock.sent == [(start + 5, HANDSHAKE), (start + 6, b"ok:cmd")]  # the keepalive counts from the greeting
