"""ekdsl's own SP-over-IPC sockets for the plugin's roles: REQ and PUSH dial, PULL listen.

Plain non-blocking Unix sockets and ``poll``: one system call per message when data is ready, no
background threads, and a wake-up pipe so that ``close()`` ends a blocked ``recv()`` at once. The wire
is nng's and mangos' (:mod:`.sp`), so the peer can be eKuiper (mangos) or pynng.
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
from collections import deque
from typing import Deque, Dict, Optional

from ..errors import ProtocolError, TransportError
from . import BadState, Closed, Socket, Timeout
from .sp import FrameReader, check_header, conn_header, frame

__all__ = ["PullSocket", "PushSocket", "ReqSocket", "open_native"]

CHUNK = 256 * 1024
RECONNECT = 0.1  # seconds between connection attempts, as eKuiper's dialer (OptionReconnectTime)
HEADER_WAIT = 2.0
_POLLIN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
_POLLOUT = select.POLLOUT | select.POLLHUP | select.POLLERR
_ID = struct.Struct(">I")


def _path(url: str) -> str:
    if not url.startswith("ipc://"):
        raise TransportError(f"only ipc:// URLs are supported by the native transport, got {url!r}", url)
    return url[len("ipc://"):]


def _remaining(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else deadline - time.monotonic()


def _ms(seconds: Optional[float]) -> Optional[int]:
    return None if seconds is None else max(0, int(seconds * 1000 + 0.999))


class _Conn:
    """One connected stream, after the SP headers were exchanged."""

    __slots__ = ("out", "reader", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = FrameReader()
        self.out = b""  # the unsent tail of a message whose first bytes are already on the wire

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
        sock.setblocking(False)


class _Base(Socket):
    """Shared machinery: a wake-up pipe, waiting with poll, writing messages without splitting them."""

    interruptible = True

    def __init__(self, kind: str, url: str) -> None:
        super().__init__(kind, url)
        self.path = _path(url)
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._io = threading.RLock()

    def _check_open(self) -> None:
        if self._closed:
            raise Closed(f"socket {self.url} is closed", self.url)

    def _wait(self, fd: int, events: int, timeout: Optional[float]) -> bool:
        """Wait until ``fd`` is ready (True), the timeout passes (False) or the socket closes (Closed)."""
        poller = select.poll()
        poller.register(fd, events)
        poller.register(self._wake_r, select.POLLIN)
        ready = poller.poll(_ms(timeout))
        if any(f == self._wake_r for f, _ in ready) or self._closed:
            raise Closed(f"socket {self.url} is closed", self.url)
        return bool(ready)

    def _write(self, conn: _Conn, data: bytes, deadline: Optional[float]) -> bool:
        """Write ``data`` (all or, if the deadline passes midway, the rest later); False if nothing went."""
        view = memoryview(data)
        sent = 0
        while sent < len(data):
            try:
                sent += conn.sock.send(view[sent:])
                continue
            except BlockingIOError:
                pass
            rem = _remaining(deadline)
            if (rem is not None and rem <= 0) or not self._wait(conn.sock.fileno(), _POLLOUT, rem):
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
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        with self._io:  # wait for a blocked send/recv to notice, then release everything
            self._release()
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _release(self) -> None:
        raise NotImplementedError


class _Dialer(_Base):
    """A socket that dials one peer and reconnects when it goes away."""

    def __init__(self, kind: str, url: str) -> None:
        super().__init__(kind, url)
        self.conn: Optional[_Conn] = None
        self._next_try = 0.0

    def connect_once(self) -> None:
        """One connection attempt; raises ``OSError`` or :class:`ProtocolError` on failure."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
            _handshake(sock, self.kind)
        except BaseException:
            sock.close()
            raise
        self.conn = _Conn(sock)
        self._connected()

    def _connected(self) -> None:
        """Called after every (re)connection."""

    def _ensure(self, deadline: Optional[float]) -> _Conn:
        """A live connection, retrying every ``RECONNECT`` seconds until ``deadline`` (then Timeout)."""
        while self.conn is None:
            self._check_open()
            now = time.monotonic()
            if now >= self._next_try:
                self._next_try = now + RECONNECT
                try:
                    self.connect_once()
                    break
                except (OSError, ProtocolError):
                    pass
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
        ready = select.select([self._wake_r], [], [], seconds)[0]
        if ready or self._closed:
            raise Closed(f"socket {self.url} is closed", self.url)

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _release(self) -> None:
        self._drop()

    def _send_frame(self, data: bytes) -> None:
        with self._io:
            deadline = None if self._send_timeout is None else time.monotonic() + self._send_timeout
            while True:
                conn = self._ensure(deadline)
                try:
                    if self._flush(conn, deadline) and self._write(conn, data, deadline):
                        return
                except (BrokenPipeError, ConnectionResetError):
                    self._drop()
                    continue
                raise Timeout(f"send timed out on {self.url}", self.url)


class PushSocket(_Dialer):
    """PUSH, dialled: source rows and sink acks."""

    def send(self, data: bytes) -> None:
        self._check_open()
        self._send_frame(frame(data))

    def recv(self) -> bytes:
        raise BadState("a PUSH socket cannot receive", self.url)


class ReqSocket(_Dialer):
    """REQ, dialled: the control and function channels (eKuiper answers as REP).

    A new request abandons the previous one; replies to abandoned requests are dropped. Nothing is
    resent on a timer; a pending request is sent again only on a new connection.
    """

    def __init__(self, kind: str, url: str) -> None:
        super().__init__(kind, url)
        self._id = random.getrandbits(31)
        self._pending: Optional[int] = None
        self._pending_frame = b""
        self._ready: Deque[bytes] = deque()

    def _connected(self) -> None:
        self._ready.clear()
        if self._pending is not None and self.conn is not None:
            self.conn.out = self._pending_frame  # the request died with the old connection: send it again

    def send(self, data: bytes) -> None:
        self._check_open()
        self._id = (self._id + 1) & 0x7FFFFFFF
        rid = self._id | 0x80000000
        self._pending = rid
        self._pending_frame = frame(data, _ID.pack(rid))
        self._send_frame(self._pending_frame)

    def recv(self) -> bytes:
        self._check_open()
        if self._pending is None:
            raise BadState(f"req socket {self.url} has no request to receive a reply for", self.url)
        with self._io:
            deadline = None if self._recv_timeout is None else time.monotonic() + self._recv_timeout
            while True:
                while self._ready:
                    msg = self._ready.popleft()
                    if len(msg) >= 4 and _ID.unpack_from(msg)[0] == self._pending:
                        self._pending = None
                        return msg[4:]
                self._read(deadline)

    def _read(self, deadline: Optional[float]) -> None:
        conn = self._ensure(deadline)
        try:
            if not self._flush(conn, deadline):
                raise Timeout(f"receive timed out on {self.url}", self.url)
            chunk = conn.sock.recv(CHUNK)
            if not chunk:
                raise ConnectionResetError("peer closed")
            self._ready.extend(conn.reader.feed(chunk))
            return
        except BlockingIOError:
            pass
        except (ConnectionResetError, BrokenPipeError, ProtocolError):
            self._drop()
            return
        rem = _remaining(deadline)
        if (rem is not None and rem <= 0) or not self._wait(conn.sock.fileno(), _POLLIN, rem):
            raise Timeout(f"receive timed out on {self.url}", self.url)


class PullSocket(_Base):
    """PULL, listening: the sink's data channel (eKuiper dials it as PUSH). Owner-only socket file."""

    def __init__(self, kind: str, url: str) -> None:
        super().__init__(kind, url)
        self.listener: Optional[socket.socket] = None
        self.conns: Dict[int, _Conn] = {}
        self._ready: Deque[bytes] = deque()

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
        self._check_open()
        with self._io:
            if self._ready:
                return self._ready.popleft()
            deadline = None if self._recv_timeout is None else time.monotonic() + self._recv_timeout
            for conn in list(self.conns.values()):  # data may already be waiting: no poll needed
                self._read(conn)
            while not self._ready:
                self._poll(deadline)
            return self._ready.popleft()

    def _read(self, conn: _Conn) -> None:
        try:
            chunk = conn.sock.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(conn)
            return
        try:
            self._ready.extend(conn.reader.feed(chunk))
        except ProtocolError:
            self._drop(conn)

    def _poll(self, deadline: Optional[float]) -> None:
        assert self.listener is not None
        rem = _remaining(deadline)
        if rem is not None and rem <= 0:
            raise Timeout(f"receive timed out on {self.url}", self.url)
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        poller.register(self.listener.fileno(), select.POLLIN)
        for fd in self.conns:
            poller.register(fd, _POLLIN)
        ready = poller.poll(_ms(rem))
        if self._closed or any(fd == self._wake_r for fd, _ in ready):
            raise Closed(f"socket {self.url} is closed", self.url)
        if not ready:
            raise Timeout(f"receive timed out on {self.url}", self.url)
        for fd, _ in ready:
            if fd == self.listener.fileno():
                self._accept()
            elif fd in self.conns:
                self._read(self.conns[fd])

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        try:
            _handshake(sock, self.kind)
        except (OSError, ProtocolError):
            sock.close()
            return
        conn = _Conn(sock)
        self.conns[sock.fileno()] = conn

    def _drop(self, conn: _Conn) -> None:
        self.conns.pop(conn.sock.fileno(), None)
        conn.close()

    def _release(self) -> None:
        for conn in list(self.conns.values()):
            conn.close()
        self.conns.clear()
        if self.listener is not None:
            self.listener.close()
            self.listener = None
            try:
                os.unlink(self.path)
            except OSError:
                pass


def _remove_stale(path: str) -> None:
    """Remove a socket file nobody listens on (as nng and mangos do); refuse one in use."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    except OSError:
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "Address in use")


def open_native(kind: str, url: str, *, listen: bool, block: bool, attempts: int, interval: float) -> Socket:
    sock: _Base
    if kind == "pull" and listen:
        sock = PullSocket(kind, url)
    elif kind == "push" and not listen:
        sock = PushSocket(kind, url)
    elif kind == "req" and not listen:
        sock = ReqSocket(kind, url)
    else:
        raise TransportError(f"the native transport has no {'listening' if listen else 'dialling'} {kind}")
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
            time.sleep(interval)
    sock.close()
    verb = "listen on" if listen else "dial"
    reason = last.strerror if isinstance(last, OSError) and last.strerror else str(last)
    raise TransportError(f"cannot {verb} {url}: {reason}", url)

