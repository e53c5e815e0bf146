"""What the native sockets share: one connected stream (:class:`Conn`: its receive buffer, kernel timeouts and
writes that never split a message), the SP handshake, and :class:`NativeSocket`, their base (closing, waking a
blocked caller)."""

from __future__ import annotations

import select
import socket
import struct
import sys
import threading
import time

from ..errors import TransportError
from . import Closed, Socket
from .sp import FrameReader, check_header, conn_header

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the plugin's handshake needs this module
if TYPE_CHECKING:
    from typing import Callable, Optional, Union

__all__ = ["HEADER_WAIT", "POLLIN", "Conn", "NativeSocket", "handshake", "ms", "pack_head", "pack_req_head",
           "remaining", "unpack_head", "unpack_id", "unpack_req_head", "unread_bytes"]

HEADER_WAIT = 2.0
POLLIN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
_HEAD = struct.Struct(">BQ")  # a message's type byte and length (sp.frame, in one step)
_REQ_HEAD = struct.Struct(">BQI")  # ... followed by a REQ/REP request id
# Taken bound: a method called on a name the module imported compiles to LOAD_ATTR (CPython 3.11+), which makes
# a bound method object on every call; these are called once a message.
pack_head, unpack_head = _HEAD.pack, _HEAD.unpack_from
pack_req_head, unpack_req_head = _REQ_HEAD.pack, _REQ_HEAD.unpack_from
unpack_id = struct.Struct(">I").unpack_from  # a REQ/REP request id
_TIMEVAL = struct.Struct("@ll")
_OUTQ = struct.Struct("@i")


def _unread_counter() -> Callable[[int], int]:
    """``SIOCOUTQ`` through ``ioctl`` where there is one (Linux: the request of ``termios.TIOCOUTQ``, 0x5411,
    whose module costs 2.6 ms to import); else a function that answers 0."""
    try:
        import fcntl
    except ImportError:
        return lambda fd: 0
    if sys.platform != "linux":
        return lambda fd: 0
    ioctl, unpack, request = fcntl.ioctl, _OUTQ.unpack, 0x5411

    def unread(fd: int) -> int:
        out = bytearray(4)  # mutable: ioctl fills it (an immutable one is tried as such first, and refused
        ioctl(fd, request, out, True)  # with an error message built and dropped)
        return int(unpack(out)[0])

    return unread


unread_bytes = _unread_counter()
"""What the peer of socket ``fd`` has not read yet (``SIOCOUTQ``, Linux); 0 where that cannot be asked. Made
at import, not at an idle channel's first keepalive."""


def _path(url: str) -> str:
    if not url.startswith("ipc://"):
        raise TransportError(f"only ipc:// URLs are supported by the native transport, got {url!r}", url)
    return url[len("ipc://"):]


def remaining(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else deadline - time.monotonic()


def ms(seconds: Optional[float]) -> Optional[int]:
    return None if seconds is None else max(0, int(seconds * 1000 + 0.999))


def _timeval(seconds: Optional[float]) -> bytes:
    if seconds is None:
        return _TIMEVAL.pack(0, 0)  # 0 = no timeout
    seconds = max(seconds, 0.001)
    return _TIMEVAL.pack(int(seconds), int((seconds % 1) * 1_000_000))


class Conn:
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

    def write(self, data: bytes, seconds: Optional[float], deadline: Optional[float]) -> bool:
        """Write ``data``, each send waiting at most ``seconds``: all of it or, if the deadline passes midway,
        the rest later (:attr:`out`); False if nothing went."""
        view = memoryview(data)
        sent = 0
        while sent < len(data):
            try:
                sent += self.send_within(view[sent:], seconds)
                continue
            except BlockingIOError:
                pass
            rem = remaining(deadline)
            if rem is None or rem > 0:
                continue
            if sent:
                self.out = bytes(view[sent:])
                return True
            return False
        return True

    def flush(self, seconds: Optional[float], deadline: Optional[float]) -> bool:
        """Write the unsent tail of the last message, if any; False if some of it is still unsent."""
        if self.out:
            pending, self.out = self.out, b""
            if not self.write(pending, seconds, deadline) or self.out:
                self.out = self.out or pending
                return False
        return True

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


def handshake(sock: socket.socket, kind: str) -> None:
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


class NativeSocket(Socket):
    """Shared machinery: closing, and waking a blocked caller."""

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
