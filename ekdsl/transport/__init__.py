"""Sockets: nng's SP protocols over ``ipc://``, behind one small interface.

:func:`open_socket` returns a :class:`Socket` (``send``/``recv``/``close`` and timeouts) for ``req``,
``rep``, ``push`` or ``pull``, dialled or listening. Two implementations speak the same wire:

- ``native`` (:mod:`.native`): ekdsl's own SP-over-IPC on plain Unix sockets, for the plugin's roles
  (REQ and PUSH dial, PULL listen). The default: it costs a fraction of pynng's CPU per message and
  needs no compiled library.
- ``pynng`` (:mod:`.nng`): nng itself, for every role; the fallback, and eKuiper's side in the emulator.

``EKDSL_TRANSPORT=pynng`` (or ``impl="pynng"``) selects pynng. Every socket accepts messages of any size
and a REQ socket never resends on its own (a resent reply would answer eKuiper's next command).
"""

from __future__ import annotations

import os

from ..errors import TransportError
from ..wire import TRANSPORT_ENV

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the plugin's handshake needs this module
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["TRANSPORT_ENV", "BadState", "Closed", "Socket", "Timeout", "open_socket"]

_KINDS = ("req", "rep", "push", "pull")
_NATIVE = {("req", False), ("push", False), ("pull", True)}


class Timeout(TransportError):
    """A send or receive did not complete within its timeout."""


class Closed(TransportError):
    """The socket was closed."""


class BadState(TransportError):
    """The REQ/REP state machine refused the operation (e.g. a receive with no request pending)."""


class Socket:
    """One SP socket. Timeouts are in seconds (``None`` = wait forever).

    ``interruptible``: ``close()`` from another thread ends a blocked ``send``/``recv`` at once (raising
    :class:`Closed`). pynng's sockets are not: closing one while a thread waits on it can deadlock in
    nng 1.6 (nanomsg/nng#1813), so their users wait in short slices instead.
    """

    interruptible = False
    lost = False  # a socket opened with ``redial=False`` lost its peer; it never connects again

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.url = url
        self._recv_timeout: Optional[float] = None
        self._send_timeout: Optional[float] = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind!r}, {self.url!r})"

    @property
    def recv_timeout(self) -> Optional[float]:
        return self._recv_timeout

    @recv_timeout.setter
    def recv_timeout(self, seconds: Optional[float]) -> None:
        if seconds != self._recv_timeout:
            self._recv_timeout = seconds
            self._timeouts_changed()

    @property
    def send_timeout(self) -> Optional[float]:
        return self._send_timeout

    @send_timeout.setter
    def send_timeout(self, seconds: Optional[float]) -> None:
        if seconds != self._send_timeout:
            self._send_timeout = seconds
            self._timeouts_changed()

    def _timeouts_changed(self) -> None:
        """Implementations that keep timeouts elsewhere apply them here."""

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def recv(self) -> bytes:
        raise NotImplementedError

    def recv_or_none(self) -> Optional[bytes]:
        """:meth:`recv`, but ``None`` instead of :class:`Timeout` when the receive timeout passes."""
        try:
            return self.recv()
        except Timeout:
            return None

    def drained(self) -> bool:
        """Whether the peer has read everything sent so far (``True`` when that cannot be known)."""
        return True

    def close(self) -> None:
        raise NotImplementedError


def default_impl() -> str:
    impl = os.environ.get(TRANSPORT_ENV, "native").strip().lower() or "native"
    if impl not in ("native", "pynng"):
        raise TransportError(f"{TRANSPORT_ENV}={impl!r} is not a transport: use 'native' or 'pynng'")
    return impl


def open_socket(
    kind: str,
    url: str,
    *,
    listen: bool = False,
    block: bool = True,
    attempts: int = 50,
    interval: float = 0.1,
    send_timeout: Optional[float] = None,
    recv_timeout: Optional[float] = None,
    impl: Optional[str] = None,
    redial: bool = True,
) -> Socket:
    """Open a ``kind`` socket and dial (or, with ``listen``, listen on) ``url``.

    A blocking dial or a listen is tried ``attempts`` times, ``interval`` seconds apart; a
    non-blocking dial (``block=False``) returns at once and connects (and reconnects) in the background.
    With ``redial=False`` a dialled socket keeps its first peer only: when that connection ends it sets
    ``lost`` and never connects again (its sends and receives then fail or time out).
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown socket kind {kind!r}")
    impl = impl or default_impl()
    if impl == "native" and (kind, listen) in _NATIVE:
        from .native import open_native

        sock: Socket = open_native(kind, url, listen=listen, block=block, attempts=attempts, interval=interval,
                                   redial=redial)
    else:
        from .nng import open_nng

        sock = open_nng(kind, url, listen=listen, block=block, attempts=attempts, interval=interval,
                        redial=redial)
    sock.send_timeout = send_timeout
    sock.recv_timeout = recv_timeout
    return sock
