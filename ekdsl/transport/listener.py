"""The native socket that listens: :class:`PullSocket`, the sink's data channel (eKuiper dials it as PUSH)."""

from __future__ import annotations

import errno
import os
import select
import socket
import stat
import time

from ..errors import ProtocolError
from . import BadState, Closed, Timeout
from .sp import CHUNK
from .stream import POLLIN, Conn, NativeSocket, handshake, ms, remaining, unpack_head

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the plugin's handshake needs this module
if TYPE_CHECKING:
    from typing import Dict, Optional

__all__ = ["PullSocket"]


class _Listening(NativeSocket):
    """An owner-only listener and the connections it accepted; :attr:`_one` is the connection while there is
    exactly one."""

    def __init__(self, kind: str, url: str) -> None:
        super().__init__(kind, url)
        self.listener: Optional[socket.socket] = None
        self.conns: Dict[int, Conn] = {}
        self._one: Optional[Conn] = None  # the connection, while there is exactly one

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
                handshake(sock, self.kind)
            except (OSError, ProtocolError):
                sock.close()
                continue
            self.conns[sock.fileno()] = Conn(sock)
            self._counted()

    def _counted(self) -> None:
        self._one = next(iter(self.conns.values())) if len(self.conns) == 1 else None

    def _lost(self, conn: Conn) -> None:
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


class PullSocket(_Listening):
    """PULL, listening: the sink's data channel (eKuiper dials it as PUSH). Owner-only socket file.

    With one peer (eKuiper's case) a receive is a single blocking ``recv``; with several, or none yet,
    it waits on all of them and the listener with ``poll``.
    """

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
                        if n >= 9 and unpack_head(view) == (1, n - 9):
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
        rem = remaining(deadline)
        if rem is not None and rem <= 0:
            raise Timeout(f"receive timed out on {self.url}", self.url)
        poller = select.poll()  # close() shuts the listener down: poll wakes with POLLHUP
        poller.register(self.listener.fileno(), select.POLLIN)
        for fd in self.conns:
            poller.register(fd, POLLIN)
        ready = poller.poll(ms(rem))
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
