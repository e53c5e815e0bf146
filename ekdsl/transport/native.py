"""ekdsl's own SP-over-IPC sockets for the plugin's roles: REQ and PUSH dial, PULL listen.

Plain Unix sockets with kernel timeouts (``SO_RCVTIMEO``/``SO_SNDTIMEO``): a message costs one system
call each way, there are no background threads, and ``close()`` from another thread ends a blocked
call at once (it shuts the connection, or the listener, down). A socket holds no descriptor beyond its
connections and listener: a source costs one, a sink three. The wire is nng's and mangos' (:mod:`.sp`),
so the peer can be eKuiper (mangos) or pynng.

:func:`open_native` opens one; :mod:`.stream` holds what they share (a connection, the handshake, the
base class), :mod:`.dialer` the dialling sockets, :mod:`.listener` the listening one.
"""

from __future__ import annotations

import errno
import time

from ..errors import ProtocolError, TransportError
from . import Socket
from .dialer import Dialer, PushSocket, ReqSocket
from .stream import NativeSocket

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the plugin's handshake needs this module
if TYPE_CHECKING:
    from typing import Optional

    from .listener import PullSocket

__all__ = ["PullSocket", "PushSocket", "ReqSocket", "open_native"]


def __getattr__(name: str) -> object:
    if name == "PullSocket":
        from .listener import PullSocket

        return PullSocket
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_native(kind: str, url: str, *, listen: bool, block: bool, attempts: int, interval: float,
                redial: bool = True) -> Socket:
    """A native ``kind`` socket on ``url``, listening or dialled (``block``: connected before it returns,
    trying ``attempts`` times ``interval`` seconds apart), as :func:`ekdsl.transport.open_socket` asks."""
    sock: NativeSocket
    if kind == "pull" and listen:
        from .listener import PullSocket  # sources and sinks only: the plugin's handshake does without it

        sock = PullSocket(kind, url)
    elif kind == "push" and not listen:
        sock = PushSocket(kind, url)
    elif kind == "req" and not listen:
        sock = ReqSocket(kind, url)
    else:
        raise TransportError(f"the native transport has no {'listening' if listen else 'dialling'} {kind}")
    if isinstance(sock, Dialer):
        sock.redial = redial
    if not block and not listen:
        return sock
    last: Optional[BaseException] = None
    for _ in range(max(1, attempts)):
        try:
            if listen:
                sock.listen()  # type: ignore[union-attr]
            else:
                assert isinstance(sock, Dialer)
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
