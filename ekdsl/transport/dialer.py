"""The native sockets that dial: :class:`PushSocket` (source rows, sink acks) and :class:`ReqSocket` (the
control and function channels), over one connection each that they make again when the peer goes."""

from __future__ import annotations

import _socket
import random
import select
import socket
import time

from ..errors import ProtocolError
from . import BadState, Closed, Timeout
from .sp import CHUNK
from .stream import (
    HEADER_WAIT,
    POLLIN,
    Conn,
    NativeSocket,
    handshake,
    pack_head,
    pack_req_head,
    remaining,
    unpack_id,
    unpack_req_head,
    unread_bytes,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the plugin's handshake needs this module
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["Dialer", "PushSocket", "ReqSocket"]

RECONNECT = 0.1  # first wait between connection attempts, as eKuiper's dialer (OptionReconnectTime)
RECONNECT_MAX = 1.0  # the wait doubles up to this while nobody listens


class Dialer(NativeSocket):
    """A socket that dials one peer and reconnects when it goes away (with ``redial``)."""

    def __init__(self, kind: str, url: str) -> None:
        super().__init__(kind, url)
        self.conn: Optional[Conn] = None
        self.redial = True
        self._dialled = False
        self._next_try = 0.0
        self._backoff = RECONNECT

    def connect_once(self) -> None:
        """One connection attempt; raises ``OSError`` or :class:`ProtocolError` on failure."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(HEADER_WAIT)  # a listener that never accepts, its queue full, would block connect()
            sock.connect(self.path)
            handshake(sock, self.kind)
        except BaseException:
            sock.close()
            raise
        self.conn = Conn(sock)
        self._dialled = True
        self._connected()

    def _connected(self) -> None:
        """Called after every (re)connection."""

    def _ensure(self, deadline: Optional[float]) -> Conn:
        """A live connection, retrying every ``RECONNECT`` seconds until ``deadline`` (then Timeout)."""
        while self.conn is None:
            self._check_open()
            if self._dialled and not self.redial:
                self.lost = True
                raise Closed(f"the peer of {self.url} went away", self.url)
            now = time.monotonic()
            if now >= self._next_try:
                try:
                    self.connect_once()
                    self._backoff = RECONNECT
                    break
                except (OSError, ProtocolError):
                    self._next_try = now + self._backoff
                    self._backoff = min(self._backoff * 2, RECONNECT_MAX)
            wait = self._next_try - time.monotonic()
            rem = remaining(deadline)
            if rem is not None:
                if rem <= 0:
                    raise Timeout(f"not connected to {self.url}", self.url)
                wait = min(wait, rem)
            self._sleep(max(0.0, wait))
        assert self.conn is not None
        return self.conn

    def _sleep(self, seconds: float) -> None:
        if self._wake.wait(seconds) or self._closed:
            raise Closed(f"socket {self.url} is closed", self.url)

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
            if not self.redial and not self._closed:
                self.lost = True

    def drained(self) -> bool:
        """Whether the peer has read everything sent: nothing waits in the kernel's queue (``SIOCOUTQ``, where
        there is one) nor in a tail of ours."""
        conn = self.conn
        if conn is None:
            return True
        if conn.out:
            return False
        try:
            return unread_bytes(conn.sock.fileno()) == 0
        except OSError:  # the connection just went
            return True

    def _lost(self) -> None:
        """The connection ended or broke the framing: drop it (raises :class:`Closed` after close())."""
        self._eof()
        self._drop()

    def _release(self) -> None:
        self._drop()

    def _interrupt(self) -> None:
        if self.conn is not None:
            self.conn.interrupt()


class _Sender(Dialer):
    """Sends each message whole, in one system call when it can."""

    requests = False  # REQ: each message is a new request, with its id (the state below is ReqSocket's)
    _id = 0
    _pending: Optional[int] = None
    _pending_frame = b""

    def send(self, data: bytes) -> None:
        """Send one message, whole: if the send timeout passes midway, its tail goes before the next one."""
        if self._closed:
            raise Closed(f"socket {self.url} is closed", self.url)
        if self.requests:
            self._id = rid = (self._id + 1) & 0x7FFFFFFF
            self._pending = rid = rid | 0x80000000
            self._pending_frame = frame = pack_req_head(1, len(data) + 4, rid) + data
        else:
            frame = pack_head(1, len(data)) + data
        conn = self.conn
        if conn is not None and conn.sndtimeo == self._send_timeout:  # the usual case: one send, all of it
            io = self._io
            io.acquire()  # (a with statement costs twice as much)
            try:
                if not conn.out and conn is self.conn:
                    try:
                        sent = conn.sock.send(frame)
                    except OSError:
                        sent = 0
                    if sent == len(frame):
                        return
                    if sent > 0:  # the message has started: it is sent, its tail goes before the next one
                        conn.out = frame[sent:]
                        return
            finally:
                io.release()
        self._send_frame(frame)

    def _send_frame(self, data: bytes) -> None:
        with self._io:
            conn = self.conn
            if conn is not None and not conn.out:  # the common case: connected, nothing left over
                try:
                    sent = conn.send_within(data, self._send_timeout)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    sent = -1
                if sent == len(data):
                    return
                if sent > 0:  # the message has started: it is sent, its tail goes before the next one
                    conn.out = data[sent:]
                    return
            deadline = None if self._send_timeout is None else time.monotonic() + self._send_timeout
            while True:
                conn = self._ensure(deadline)
                if conn.out is data:  # a new connection queued this very message (a REQ's pending one): once
                    conn.out = b""
                try:
                    if conn.flush(self._send_timeout, deadline) and conn.write(data, self._send_timeout, deadline):
                        return
                except OSError:  # the peer went (or close() shut the connection down)
                    self._lost()
                    continue
                raise Timeout(f"send timed out on {self.url}", self.url)


class PushSocket(_Sender):
    """PUSH, dialled: source rows and sink acks."""

    def recv(self) -> bytes:
        raise BadState("a PUSH socket cannot receive", self.url)


class ReqSocket(_Sender):
    """REQ, dialled: the control and function channels (eKuiper answers as REP).

    A new request abandons the previous one; replies to abandoned requests are dropped. Nothing is
    resent on a timer; a pending request is sent again only on a new connection.

    ``watch``: a descriptor that becomes readable when the peer is gone for good (a pidfd of eKuiper's
    process); a receive then ends as on a lost connection (``lost``, :class:`Closed`), without a timer.
    """

    requests = True

    def __init__(self, kind: str, url: str) -> None:
        super().__init__(kind, url)
        self._id = random.getrandbits(31)
        self._pending: Optional[int] = None
        self._pending_frame = b""
        self.watch: Optional[int] = None
        self._quiet = False  # the last receive timed out: wait with poll until a message comes
        self._wait_ms = -1  # the receive timeout, for poll

    @classmethod
    def adopted(cls, url: str, raw: _socket.socket, rid: int, frame: bytes) -> ReqSocket:
        """A REQ socket around a connection that :func:`ekdsl.hello.greet` made, its request ``rid`` (sent as
        ``frame``) pending; it keeps that peer only (``redial`` off)."""
        self = cls("req", url)
        self.redial = False
        self.conn = Conn(socket.socket(raw.family, raw.type, fileno=raw.detach()))
        self._dialled = True
        self._id = rid & 0x7FFFFFFF
        self._pending, self._pending_frame = rid, frame
        return self

    def _timeouts_changed(self) -> None:
        self._wait_ms = -1 if self._recv_timeout is None else max(0, int(self._recv_timeout * 1000 + 0.999))

    def _connected(self) -> None:
        if self._pending is not None and self.conn is not None:
            self.conn.out = self._pending_frame  # the request died with the old connection: send it again

    def recv(self) -> bytes:
        self._check_open()
        if self._pending is None:
            raise BadState(f"req socket {self.url} has no request to receive a reply for", self.url)
        with self._io:
            deadline = None
            while True:
                conn = self.conn
                if conn is not None:
                    try:
                        reply = self._reply(conn)
                    except ProtocolError:
                        self._lost()
                        continue
                    if reply is not None:
                        return reply
                if deadline is None and self._recv_timeout is not None:
                    deadline = time.monotonic() + self._recv_timeout
                self._read(deadline)

    def recv_or_none(self) -> Optional[bytes]:
        """The reply in one receive when it comes whole (the usual case); else as :meth:`recv`.

        Busy, it receives at once; once a receive has timed out it waits with ``poll`` until the next
        message (a timeout then costs no exception), as it always does with a ``watch``."""
        conn = self.conn
        if self._pending is None or conn is None or conn.out or self._closed:
            return super().recv_or_none()
        if self._quiet and conn.poller is not None and not conn.poller.poll(self._wait_ms):
            return None  # the usual wake-up of an idle channel: nothing locked, nothing raised, nothing built
        io = self._io
        io.acquire()
        try:
            reader = conn.reader
            if conn is self.conn and reader.pos == reader.end and 0 < len(reader.buf) <= CHUNK:  # nothing held
                if (self._quiet or self.watch is not None) and not self._readable(conn):
                    return None
                if conn.rcvtimeo != self._recv_timeout:
                    conn.receive_within(self._recv_timeout)
                view = reader.view
                n = conn.recv_into(view)
                self._quiet = False
                if n >= 13 and unpack_req_head(view) == (1, n - 9, self._pending):
                    self._pending = None
                    return bytes(view[13:n])
                reader.pos, reader.end = 0, n
                if not n:
                    self._lost()
        except BlockingIOError:
            self._quiet = True
            return None
        except OSError:
            self._lost()
        finally:
            io.release()
        return super().recv_or_none()

    def _reply(self, conn: Conn) -> Optional[bytes]:
        """The pending request's reply when the connection's buffer holds it; replies to abandoned requests
        are dropped. Raises :class:`ProtocolError` for a frame that is not SP's."""
        take = conn.reader.next
        while True:
            msg = take()
            if msg is None:
                return None
            if len(msg) >= 4 and unpack_id(msg)[0] == self._pending:
                self._pending = None
                return msg[4:]

    def _readable(self, conn: Conn) -> bool:
        """Wait for ``conn`` within the receive timeout, or for ``watch``: then the peer is gone (Closed)."""
        if conn.poller is None:
            conn.poller = select.poll()
            conn.poller.register(conn.sock.fileno(), POLLIN)
            if self.watch is not None:
                conn.poller.register(self.watch, POLLIN)
        ready = conn.poller.poll(self._wait_ms)
        if self.watch is not None and any(fd == self.watch for fd, _ in ready):
            self.redial = False
            self._drop()
            self.lost = True
            raise Closed(f"the peer of {self.url} is gone", self.url)
        return bool(ready)

    def _read(self, deadline: Optional[float]) -> None:
        conn = self._ensure(deadline)
        try:
            if not conn.flush(self._send_timeout, deadline):
                raise Timeout(f"receive timed out on {self.url}", self.url)
            if self.watch is not None and not self._readable(conn):
                raise BlockingIOError
            n = conn.fill(self._recv_timeout)
        except BlockingIOError:
            raise Timeout(f"receive timed out on {self.url}", self.url) from None
        except OSError:
            n = 0
        if not n:
            self._lost()  # the next _ensure reconnects and sends the pending request again
