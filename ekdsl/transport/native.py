"""ekdsl's own SP-over-IPC sockets for the plugin's roles: REQ and PUSH dial, PULL listen.

Plain Unix sockets with kernel timeouts (``SO_RCVTIMEO``/``SO_SNDTIMEO``): a message costs one system
call each way, there are no background threads, and ``close()`` from another thread ends a blocked
call at once (it shuts the connection, or the listener, down). A socket holds no descriptor beyond its
connections and listener: a source costs one, a sink three. The wire is nng's and mangos' (:mod:`.sp`),
so the peer can be eKuiper (mangos) or pynng.
"""

from __future__ import annotations

import errno
import os
import random
import select
import socket
import stat
import struct
import threading
import time

from ..errors import ProtocolError, TransportError
from . import BadState, Closed, Socket, Timeout
from .sp import CHUNK, FrameReader, check_header, conn_header

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the plugin's handshake needs this module
if TYPE_CHECKING:
    from typing import Callable, Dict, Optional, Union

__all__ = ["PullSocket", "PushSocket", "ReqSocket", "open_native"]

RECONNECT = 0.1  # first wait between connection attempts, as eKuiper's dialer (OptionReconnectTime)
RECONNECT_MAX = 1.0  # the wait doubles up to this while nobody listens
HEADER_WAIT = 2.0
_POLLIN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
_ID = struct.Struct(">I")
_HEAD = struct.Struct(">BQ")  # a message's type byte and length (sp.frame, in one step)
_REQ_HEAD = struct.Struct(">BQI")  # ... followed by a REQ/REP request id
_TIMEVAL = struct.Struct("@ll")
_OUTQ = struct.Struct("@i")
_unread: Optional[Callable[[int], int]] = None  # made on first use (see _unread_bytes)


def _unread_bytes(fd: int) -> int:
    """What the peer of socket ``fd`` has not read yet (``SIOCOUTQ``, Linux); 0 where that cannot be asked."""
    global _unread
    if _unread is None:
        try:
            import fcntl
            import termios

            request = termios.TIOCOUTQ  # the same request on sockets

            def unread(fd: int) -> int:
                return int(_OUTQ.unpack(fcntl.ioctl(fd, request, bytes(4)))[0])

            _unread = unread
        except (ImportError, AttributeError):
            _unread = lambda fd: 0  # noqa: E731
    return _unread(fd)


def _path(url: str) -> str:
    if not url.startswith("ipc://"):
        raise TransportError(f"only ipc:// URLs are supported by the native transport, got {url!r}", url)
    return url[len("ipc://"):]


def _remaining(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else deadline - time.monotonic()


def _ms(seconds: Optional[float]) -> Optional[int]:
    return None if seconds is None else max(0, int(seconds * 1000 + 0.999))


def _timeval(seconds: Optional[float]) -> bytes:
    if seconds is None:
        return _TIMEVAL.pack(0, 0)  # 0 = no timeout
    seconds = max(seconds, 0.001)
    return _TIMEVAL.pack(int(seconds), int((seconds % 1) * 1_000_000))


class _Conn:
    """One connected stream, after the SP headers were exchanged; blocking, with kernel timeouts."""

    __slots__ = ("out", "poller", "rcvtimeo", "reader", "recv_into", "sndtimeo", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.recv_into = sock.recv_into
        self.reader = FrameReader()  # what was received, in one buffer (PUSH connections never make one)
        self.out = b""  # the unsent tail of a message whose first bytes are already on the wire
        self.rcvtimeo: object = -1
        self.sndtimeo: object = -1
        self.poller: Optional[select.poll] = None  # this connection and a watched descriptor (ReqSocket.watch)

    def receive_within(self, seconds: Optional[float]) -> None:
        """Receives wait at most ``seconds`` (then raise ``BlockingIOError``)."""
        if seconds != self.rcvtimeo:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(seconds))
            self.rcvtimeo = seconds

    def fill(self, seconds: Optional[float]) -> int:
        """One receive into the reader's buffer, waiting at most ``seconds``; the bytes received, 0 at EOF."""
        self.receive_within(seconds)
        reader = self.reader
        n = self.recv_into(reader.space())
        reader.end += n
        return n

    def send_within(self, data: Union[bytes, memoryview], seconds: Optional[float]) -> int:
        if seconds != self.sndtimeo:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(seconds))
            self.sndtimeo = seconds
        return self.sock.send(data)

    def interrupt(self) -> None:
        """Wake a thread blocked on this connection (its call returns EOF or fails)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _handshake(sock: socket.socket, kind: str) -> None:
    """Exchange SP headers on a fresh connection (blocking, bounded)."""
    sock.settimeout(HEADER_WAIT)
    try:
        sock.sendall(conn_header(kind))
        got = b""
        while len(got) < 8:
            part = sock.recv(8 - len(got))
            if not part:
                raise ConnectionResetError("peer closed during the SP handshake")
            got += part
        check_header(got, kind)
    finally:
        sock.settimeout(None)  # blocking; waits are bounded by SO_RCVTIMEO/SO_SNDTIMEO


class _Base(Socket):
    """Shared machinery: closing, waking a blocked caller, writing messages without splitting them."""

    interruptible = True

    def __init__(self, kind: str, url: str) -> None:
        super().__init__(kind, url)
        self.path = _path(url)
        self._closed = False
        self._wake = threading.Event()  # set by close(): ends a wait between connection attempts
        self._io = threading.RLock()

    def _check_open(self) -> None:
        if self._closed:
            raise Closed(f"socket {self.url} is closed", self.url)

    def _write(self, conn: _Conn, data: bytes, deadline: Optional[float]) -> bool:
        """Write ``data`` (all or, if the deadline passes midway, the rest later); False if nothing went."""
        view = memoryview(data)
        sent = 0
        while sent < len(data):
            try:
                sent += conn.send_within(view[sent:], self._send_timeout)
                continue
            except BlockingIOError:
                pass
            rem = _remaining(deadline)
            if rem is None or rem > 0:
                continue
            if sent:
                conn.out = bytes(view[sent:])
                return True
            return False
        return True

    def _flush(self, conn: _Conn, deadline: Optional[float]) -> bool:
        if conn.out:
            pending, conn.out = conn.out, b""
            if not self._write(conn, pending, deadline) or conn.out:
                conn.out = conn.out or pending
                return False
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._interrupt()
        with self._io:  # wait for a blocked send/recv to notice, then release everything
            self._release()

    def _release(self) -> None:
        raise NotImplementedError

    def _interrupt(self) -> None:
        raise NotImplementedError

    def _eof(self) -> None:
        """A connection ended: because of close(), or because the peer went."""
        if self._closed:
            raise Closed(f"socket {self.url} is closed", self.url)


class _Dialer(_Base):
    """A socket that dials one peer and reconnects when it goes away."""

    requests = False  # REQ: each message is a new request, with its id (the state below is ReqSocket's)
    _id = 0
    _pending: Optional[int] = None
    _pending_frame = b""

    def __init__(self, kind: str, url: str) -> None:
        super().__init__(kind, url)
        self.conn: Optional[_Conn] = None
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
            _handshake(sock, self.kind)
        except BaseException:
            sock.close()
            raise
        self.conn = _Conn(sock)
        self._dialled = True
        self._connected()

    def _connected(self) -> None:
        """Called after every (re)connection."""

    def _ensure(self, deadline: Optional[float]) -> _Conn:
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
            rem = _remaining(deadline)
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
            return _unread_bytes(conn.sock.fileno()) == 0
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

    def send(self, data: bytes) -> None:
        """Send one message, whole: if the send timeout passes midway, its tail goes before the next one."""
        if self._closed:
            raise Closed(f"socket {self.url} is closed", self.url)
        if self.requests:
            self._id = rid = (self._id + 1) & 0x7FFFFFFF
            self._pending = rid = rid | 0x80000000
            self._pending_frame = frame = _REQ_HEAD.pack(1, len(data) + 4, rid) + data
        else:
            frame = _HEAD.pack(1, len(data)) + data
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
                    if self._flush(conn, deadline) and self._write(conn, data, deadline):
                        return
                except OSError:  # the peer went (or close() shut the connection down)
                    self._lost()
                    continue
                raise Timeout(f"send timed out on {self.url}", self.url)


class PushSocket(_Dialer):
    """PUSH, dialled: source rows and sink acks."""

    def recv(self) -> bytes:
        raise BadState("a PUSH socket cannot receive", self.url)


class ReqSocket(_Dialer):
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
                if n >= 13 and _REQ_HEAD.unpack_from(view) == (1, n - 9, self._pending):
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

    def _reply(self, conn: _Conn) -> Optional[bytes]:
        """The pending request's reply when the connection's buffer holds it; replies to abandoned requests
        are dropped. Raises :class:`ProtocolError` for a frame that is not SP's."""
        take = conn.reader.next
        while True:
            msg = take()
            if msg is None:
                return None
            if len(msg) >= 4 and _ID.unpack_from(msg)[0] == self._pending:
                self._pending = None
                return msg[4:]

    def _readable(self, conn: _Conn) -> bool:
        """Wait for ``conn`` within the receive timeout, or for ``watch``: then the peer is gone (Closed)."""
        if conn.poller is None:
            conn.poller = select.poll()
            conn.poller.register(conn.sock.fileno(), _POLLIN)
            if self.watch is not None:
                conn.poller.register(self.watch, _POLLIN)
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
            if not self._flush(conn, deadline):
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


class PullSocket(_Base):
    """PULL, listening: the sink's data channel (eKuiper dials it as PUSH). Owner-only socket file.

    With one peer (eKuiper's case) a receive is a single blocking ``recv``; with several, or none yet,
    it waits on all of them and the listener with ``poll``.
    """

    def __init__(self, kind: str, url: str) -> None:
        super().__init__(kind, url)
        self.listener: Optional[socket.socket] = None
        self.conns: Dict[int, _Conn] = {}
        self._one: Optional[_Conn] = None  # the connection, while there is exactly one

    def listen(self) -> None:
        _remove_stale(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
            os.chmod(self.path, stat.S_IRUSR | stat.S_IWUSR)  # before listen(): nobody can connect yet
            sock.listen(16)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self.listener = sock

    def send(self, data: bytes) -> None:
        raise BadState("a PULL socket cannot send", self.url)

    def recv(self) -> bytes:
        if self._closed:
            raise Closed(f"socket {self.url} is closed", self.url)
        io = self._io
        io.acquire()  # (a with statement costs twice as much)
        try:
            conn = self._one
            if conn is not None:  # the usual case: eKuiper's one connection, read with blocking receives
                if conn.rcvtimeo != self._recv_timeout:
                    conn.receive_within(self._recv_timeout)
                reader = conn.reader
                try:
                    if reader.pos == reader.end and 0 < len(reader.buf) <= CHUNK:  # nothing held: usually one
                        view = reader.view  # receive brings one whole message
                        n = conn.recv_into(view)
                        if n >= 9 and _HEAD.unpack_from(view) == (1, n - 9):
                            return bytes(view[9:n])
                        reader.pos, reader.end = 0, n
                        msg = reader.next(conn.recv_into) if n else None
                    else:
                        msg = reader.next(conn.recv_into)
                    if msg is not None:
                        return msg
                except BlockingIOError:
                    self._accept_waiting()  # a second peer may be waiting in the backlog: serve it too
                    raise Timeout(f"receive timed out on {self.url}", self.url) from None
                except (OSError, ProtocolError):
                    pass
                self._lost(conn)
            return self._recv_any()
        finally:
            io.release()

    def _recv_any(self) -> bytes:
        """A message from any connection (several, or none yet), waiting on all of them and the listener."""
        deadline: Optional[float] = None
        while True:
            self._check_open()
            if self._one is not None:
                return self.recv()
            for conn in list(self.conns.values()):
                try:
                    msg = conn.reader.next()
                except ProtocolError:
                    self._lost(conn)
                    continue
                if msg is not None:
                    return msg
            if deadline is None and self._recv_timeout is not None:
                deadline = time.monotonic() + self._recv_timeout
            self._poll(deadline)

    def _poll(self, deadline: Optional[float]) -> None:
        assert self.listener is not None
        rem = _remaining(deadline)
        if rem is not None and rem <= 0:
            raise Timeout(f"receive timed out on {self.url}", self.url)
        poller = select.poll()  # close() shuts the listener down: poll wakes with POLLHUP
        poller.register(self.listener.fileno(), select.POLLIN)
        for fd in self.conns:
            poller.register(fd, _POLLIN)
        ready = poller.poll(_ms(rem))
        if self._closed:
            raise Closed(f"socket {self.url} is closed", self.url)
        if not ready:
            raise Timeout(f"receive timed out on {self.url}", self.url)
        for fd, _ in ready:
            if fd == self.listener.fileno():
                self._accept_waiting()
            elif fd in self.conns:
                conn = self.conns[fd]
                try:
                    if conn.fill(0.001):
                        continue
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                self._lost(conn)

    def _accept_waiting(self) -> None:
        assert self.listener is not None
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError as exc:  # none waiting, the listener shut down by close(), or out of descriptors
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    self._wake.wait(0.1)  # the connection waits in the queue: do not spin on it
                return
            try:
                _handshake(sock, self.kind)
            except (OSError, ProtocolError):
                sock.close()
                continue
            self.conns[sock.fileno()] = _Conn(sock)
            self._counted()

    def _counted(self) -> None:
        self._one = next(iter(self.conns.values())) if len(self.conns) == 1 else None

    def _lost(self, conn: _Conn) -> None:
        """A connection ended or broke the framing: drop it (raises :class:`Closed` after close())."""
        self._eof()
        self.conns.pop(conn.sock.fileno(), None)
        self._counted()
        conn.close()

    def _interrupt(self) -> None:
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for conn in list(self.conns.values()):
            conn.interrupt()

    def _release(self) -> None:
        for conn in list(self.conns.values()):
            conn.close()
        self.conns.clear()
        self._one = None
        if self.listener is not None:
            self.listener.close()
            self.listener = None
            try:
                os.unlink(self.path)
            except OSError:
                pass


def _remove_stale(path: str) -> None:
    """Remove a socket file nobody listens on (as nng and mangos do); refuse one in use.

    The probe never blocks: a listener that does not accept (its queue full) is in use too.
    """
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    except BlockingIOError:
        pass
    except OSError:
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "Address in use")


def open_native(kind: str, url: str, *, listen: bool, block: bool, attempts: int, interval: float,
                redial: bool = True) -> Socket:
    sock: _Base
    if kind == "pull" and listen:
        sock = PullSocket(kind, url)
    elif kind == "push" and not listen:
        sock = PushSocket(kind, url)
    elif kind == "req" and not listen:
        sock = ReqSocket(kind, url)
    else:
        raise TransportError(f"the native transport has no {'listening' if listen else 'dialling'} {kind}")
    if isinstance(sock, _Dialer):
        sock.redial = redial
    if not block and not listen:
        return sock
    last: Optional[BaseException] = None
    for _ in range(max(1, attempts)):
        try:
            if isinstance(sock, PullSocket):
                sock.listen()
            else:
                assert isinstance(sock, _Dialer)
                sock.connect_once()
            return sock
        except (OSError, ProtocolError) as exc:
            last = exc
            if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
                break  # out of descriptors: waiting will not help, and the caller's thread is eKuiper's
            time.sleep(interval)
    sock.close()
    verb = "listen on" if listen else "dial"
    reason = last.strerror if isinstance(last, OSError) and last.strerror else str(last)
    raise TransportError(f"cannot {verb} {url}: {reason}", url)

