"""The plugin's first act: dial eKuiper's control socket and send the handshake as a REQ request, with the
C ``_socket`` module alone (``socket`` itself takes some 15 ms to import), so that little runs before it; the
native transport adopts the connection afterwards (:meth:`ekdsl.transport.dialer.ReqSocket.adopted`). The wire is
:mod:`ekdsl.transport.sp`'s.
"""

from __future__ import annotations

import _socket
import errno
import os
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Optional, Tuple

__all__ = ["greet"]

HEADER_WAIT = 2.0  # as the native transport's: a listener that never accepts must not block connect()
REQ_HEADER = b"\x00SP\x00\x00\x30\x00\x00"  # SP header of a REQ socket (protocol 0x30)
REP_HEADER = b"\x00SP\x00\x00\x31\x00\x00"  # ... and of its peer, REP (0x31)


def greet(path: str, message: bytes, *, attempts: int, interval: float,
          timeout: float) -> Optional[Tuple[_socket.socket, int, bytes]]:
    """Connect to the REP listener at ``path`` (``attempts`` tries, ``interval`` seconds apart) and send
    ``message`` as one request: the connection, the request's id and its frame (pending, for its reply);
    ``None`` when it could not be sent whole within ``timeout``. Raises ``OSError`` when nobody answers."""
    sock = _dial(path, attempts, interval)
    rid = int.from_bytes(os.urandom(4), "big") | 0x80000000
    frame = b"\x01" + (len(message) + 4).to_bytes(8, "big") + rid.to_bytes(4, "big") + message
    try:
        sock.settimeout(timeout)
        sock.sendall(frame)
        sock.settimeout(None)  # blocking: the transport bounds its waits with kernel timeouts
    except OSError:
        sock.close()
        return None
    return sock, rid, frame


def _dial(path: str, attempts: int, interval: float) -> _socket.socket:
    last: OSError = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
    for i in range(max(1, attempts)):
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(HEADER_WAIT)
            sock.connect(path)
            sock.sendall(REQ_HEADER)
            got = b""
            while len(got) < 8:
                part = sock.recv(8 - len(got))
                if not part:
                    raise ConnectionResetError(errno.ECONNRESET, "peer closed during the SP handshake")
                got += part
            if got != REP_HEADER:
                raise ConnectionError(errno.EPROTO, f"not an SP REP peer (header {got!r})")
            return sock
        except OSError as exc:
            sock.close()
            last = exc
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                break  # out of descriptors: waiting will not help
            if i + 1 < attempts:
                time.sleep(interval)
    raise last
