"""eKuiper's inverted REQ/REP, sans I/O: one session object per side, bytes and ``now`` in, events and bytes out.

The plugin dials REQ and "requests" with ``handshake``; eKuiper's "reply" is a command (control channel) or a
call (function channel); the plugin's next request is the answer. Drivers own the sockets and the clock; the
rules live here, so a keepalive of seconds is tested with an injected clock in microseconds.

Plugin side (:class:`PluginSession`; ``runtime/answer.py`` drives it)::

    state       input                      next        output
    GREET       start(now)                 SENDING     handshake queued
    GREET       start(now, greeted=True)   WAITING     (the driver sent the handshake itself)
    SENDING     sent(now)                  WAITING     (the queued bytes were delivered)
    WAITING     receive(data, now)         ANSWERING   Request(data)
    WAITING     tick(now), idle >= 5 s     SENDING     Keepalive, handshake queued
    WAITING     broken(now)                SENDING     Restart, handshake queued (eKuiper answers it)
    SENDING     broken(now)                SENDING     Restart, handshake queued instead (the answer died
                                                       with its connection; eKuiper sends its command again)
    ANSWERING   send(answer)               SENDING     answer queued (never empty, never starting 'h')
    any         close()                    CLOSED

A driver's fast lane takes two rows at once, without events: ``answered(answer)`` is ``receive`` then
``send`` (WAITING → SENDING, no :class:`Request`), ``keepalive_due(now)`` is ``tick`` (no :class:`Keepalive`).

Host side (:class:`HostExchange`; ``host/channels.py`` drives it, as ``connection.go`` ``SendCmd``/``Req``)::

    state       input                      next        output
    SENDING     sent()                     WAITING     (the request was delivered)
    SENDING     refused()  (ErrProtoState) DRAINING    (a previous reply is still pending on the socket)
    DRAINING    receive(data)              SENDING     Discarded(data): the request is sent again
    WAITING     receive(b"h...")           SENDING     Stale(data): a keepalive handshake; the request again
    WAITING     receive(data)              DONE        Reply(data)
"""

from __future__ import annotations

import collections
import json
from typing import Deque, List, NamedTuple, Optional, Union

from .protocol import HANDSHAKE, error_reply

__all__ = [
    "KEEPALIVE",
    "Discarded",
    "HostExchange",
    "Keepalive",
    "PluginSession",
    "Reply",
    "Request",
    "Restart",
    "SessionError",
    "Stale",
    "is_source_failure",
    "safe_answer",
    "source_error",
    "source_failed",
]

KEEPALIVE = 5.0  # seconds without a message before the plugin sends the handshake again, as eKuiper's SDKs do

GREET, SENDING, WAITING, ANSWERING, CLOSED = "GREET", "SENDING", "WAITING", "ANSWERING", "CLOSED"
DRAINING, DONE = "DRAINING", "DONE"


class SessionError(RuntimeError):
    """An input the session's state table has no row for (a driver bug, never the peer's)."""


class Request(NamedTuple):
    """eKuiper's command or call: the session now owes an answer."""
    data: bytes


class Keepalive(NamedTuple):
    """Nothing came for :data:`KEEPALIVE` seconds: the handshake is queued again."""
    idle: float


class Restart(NamedTuple):
    """The pending exchange died with its connection: the handshake is queued again."""


class Stale(NamedTuple):
    """A reply that starts with ``h`` (a keepalive handshake): eKuiper sends its request again."""
    data: bytes


class Discarded(NamedTuple):
    """A reply left over from before (the socket refused a send): read and dropped, as eKuiper does."""
    data: bytes


class Reply(NamedTuple):
    """The plugin's answer to the request."""
    data: bytes


PluginEvent = Union[Request, Keepalive, Restart]
HostEvent = Union[Stale, Discarded, Reply]


def safe_answer(answer: bytes) -> bytes:
    """``answer`` as the host can tell it from a keepalive: an empty answer or one starting with ``h`` is
    rewritten as an error reply (eKuiper would discard it and wait for ever)."""
    if answer[:1] in (b"", b"h"):
        return error_reply(answer.decode("utf-8", "replace"))
    return answer


def source_error(message: str) -> bytes:
    """A source's failure as eKuiper surfaces it on the rule: a JSON string on the data socket, which its
    reader cannot decode as a row and reports as a decode error carrying the text."""
    return json.dumps(message).encode("utf-8")


def source_failed(symbol: str, error: str) -> str:
    """The text of a source's last message when it ended with ``error`` (sent with :func:`source_error`)."""
    return f"source '{symbol}' failed: {error}"


def is_source_failure(payload: bytes, symbol: str) -> bool:
    """Whether ``payload`` is the last message of ``symbol``, which ended with an error."""
    try:
        text = json.loads(payload)
    except ValueError:
        return False
    return isinstance(text, str) and text.startswith(source_failed(symbol, ""))


class PluginSession:
    """The plugin (REQ) side of one control or function connection."""

    def __init__(self, keepalive: float = KEEPALIVE) -> None:
        self.keepalive = keepalive
        self.state = GREET
        self.last = 0.0  # when the last message went out
        self._out: Optional[bytes] = None
        self._events: Deque[PluginEvent] = collections.deque()

    def _need(self, *states: str) -> None:
        if self.state not in states:
            raise SessionError(f"not allowed in state {self.state} (needs {' or '.join(states)})")

    def _queue(self, data: bytes) -> None:
        self._out = data
        self.state = SENDING

    def start(self, now: float, greeted: bool = False) -> None:
        """Begin: the handshake is the first message; ``greeted``: the driver delivered it already."""
        self._need(GREET)
        self.last = now
        if greeted:
            self.state = WAITING
        else:
            self._queue(HANDSHAKE)

    def data_to_send(self) -> Optional[bytes]:
        """The bytes the driver must deliver before it receives again (``None`` when nothing is owed)."""
        return self._out if self.state == SENDING else None

    def sent(self, now: float) -> None:
        """The queued bytes were delivered."""
        if self.state != SENDING:
            self._need(SENDING)
        self._out = None
        self.last = now
        self.state = WAITING

    def receive(self, data: bytes, now: float) -> None:
        """A message from eKuiper."""
        self._need(WAITING)
        self.state = ANSWERING
        self._events.append(Request(bytes(data)))

    def send(self, answer: bytes) -> None:
        """The answer to the pending request."""
        self._need(ANSWERING)
        self._queue(safe_answer(answer))

    def tick(self, now: float) -> None:
        """Time passes without a message: after :attr:`keepalive` seconds the handshake is queued again."""
        idle = now - self.last
        if self.keepalive_due(now) is not None:
            self._events.append(Keepalive(idle))

    def broken(self, now: float) -> None:
        """The pending exchange died (no request pending, or its connection reset): greet again."""
        if self.state in (SENDING, WAITING, ANSWERING):
            self._events.append(Restart())
            self._queue(HANDSHAKE)

    def answered(self, answer: bytes) -> bytes:
        """WAITING → SENDING in one step: a request came and ``answer`` is its answer (``receive`` and ``send``
        without a :class:`Request` event, for a driver that answers at once); returns the bytes to deliver."""
        if self.state != WAITING:
            self._need(WAITING)
        if not answer or answer[0] == 0x68:  # b"h": what safe_answer rewrites
            answer = safe_answer(answer)
        self._out = answer
        self.state = SENDING
        return answer

    def keepalive_due(self, now: float) -> Optional[bytes]:
        """:meth:`tick` without a :class:`Keepalive` event: the handshake to deliver when it is due, else ``None``."""
        if self.state == WAITING and now - self.last >= self.keepalive:
            self._out, self.state = HANDSHAKE, SENDING  # _queue(HANDSHAKE), on the path of an idle plugin
            return HANDSHAKE
        return None

    def next_event(self) -> Optional[PluginEvent]:
        """The oldest event not taken yet; a driver takes them all after each input (they are kept until then)."""
        return self._events.popleft() if self._events else None

    def close(self) -> None:
        self.state = CLOSED
        self._out = None


class HostExchange:
    """One request of eKuiper's (REP) side, re-sent until a real reply comes (``SendCmd``/``Req``)."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.state = SENDING
        self.stale = 0
        self.discarded: List[bytes] = []

    def data_to_send(self) -> Optional[bytes]:
        return self.request if self.state == SENDING else None

    def sent(self) -> None:
        if self.state != SENDING:
            raise SessionError(f"sent() in state {self.state}")
        self.state = WAITING

    def refused(self) -> None:
        """The socket refused the send: a previous reply is pending; read it first."""
        if self.state != SENDING:
            raise SessionError(f"refused() in state {self.state}")
        self.state = DRAINING

    def receive(self, data: bytes) -> HostEvent:
        if self.state == DRAINING:
            self.discarded.append(bytes(data))
            self.state = SENDING
            return Discarded(bytes(data))
        if self.state != WAITING:
            raise SessionError(f"receive() in state {self.state}")
        if data[:1] == b"h":
            self.stale += 1
            self.state = SENDING
            return Stale(bytes(data))
        self.state = DONE
        return Reply(bytes(data))
