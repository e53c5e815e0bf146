"""The only module that touches sockets: nng's SP protocols over ``ipc://``, behind a small interface.

:func:`open_socket` returns a :class:`Socket` (``send``/``recv``/``close`` plus
timeouts) for one of ``req``, ``rep``, ``push``, ``pull``, dialled or
listening. Every socket accepts messages of any size (nng's default limit is
1 MiB) and REQ sockets never resend on their own (a resent reply would be
taken by eKuiper as the answer to its next command).
"""

from __future__ import annotations

import time
from typing import Any, Optional

from .errors import TransportError

__all__ = ["BadState", "Closed", "Socket", "Timeout", "open_socket"]

_KINDS = ("req", "rep", "push", "pull")


class Timeout(TransportError):
    """A send or receive did not complete within its timeout."""


class Closed(TransportError):
    """The socket was closed."""


class BadState(TransportError):
    """The REQ/REP state machine refused the operation (e.g. a reply with no pending request)."""


def _ms(seconds: Optional[float]) -> int:
    return -1 if seconds is None else max(0, int(seconds * 1000))


class Socket:
    """One SP socket. Timeouts are in seconds (``None`` = wait forever)."""

    def __init__(self, kind: str, url: str, raw: Any) -> None:
        self.kind = kind
        self.url = url
        self._sock = raw
        self._recv_timeout: Optional[float] = None
        self._send_timeout: Optional[float] = None

    def __repr__(self) -> str:
        return f"Socket({self.kind!r}, {self.url!r})"

    @property
    def recv_timeout(self) -> Optional[float]:
        return self._recv_timeout

    @recv_timeout.setter
    def recv_timeout(self, seconds: Optional[float]) -> None:
        if seconds != self._recv_timeout:
            if self._sock is not None:
                self._sock.recv_timeout = _ms(seconds)
            self._recv_timeout = seconds

    @property
    def send_timeout(self) -> Optional[float]:
        return self._send_timeout

    @send_timeout.setter
    def send_timeout(self, seconds: Optional[float]) -> None:
        if seconds != self._send_timeout:
            if self._sock is not None:
                self._sock.send_timeout = _ms(seconds)
            self._send_timeout = seconds

    def send(self, data: bytes) -> None:
        import pynng

        try:
            self._sock.send(data)
        except pynng.Timeout:
            raise Timeout(f"send timed out on {self.url}", self.url) from None
        except pynng.Closed:
            raise Closed(f"socket {self.url} is closed", self.url) from None
        except pynng.BadState:
            raise BadState(f"{self.kind} socket {self.url} cannot send now", self.url) from None
        except pynng.NNGException as exc:
            raise TransportError(f"send failed on {self.url}: {exc}", self.url) from None

    def recv(self) -> bytes:
        import pynng

        try:
            return bytes(self._sock.recv())
        except pynng.Timeout:
            raise Timeout(f"receive timed out on {self.url}", self.url) from None
        except pynng.Closed:
            raise Closed(f"socket {self.url} is closed", self.url) from None
        except pynng.BadState:
            raise BadState(f"{self.kind} socket {self.url} cannot receive now", self.url) from None
        except pynng.NNGException as exc:
            raise TransportError(f"receive failed on {self.url}: {exc}", self.url) from None
        except RuntimeError as exc:
            if "NULL" in str(exc):  # pynng cannot unpack a zero-length message; it was consumed
                return b""
            raise

    def close(self) -> None:
        try:
            self._sock.close()
        except Exception:  # closing twice, or a socket already torn down by nng
            pass


def _new(kind: str) -> Any:
    import pynng

    if kind == "req":
        sock = pynng.Req0(resend_time=0)
    elif kind == "rep":
        sock = pynng.Rep0()
    elif kind == "push":
        sock = pynng.Push0()
    else:
        sock = pynng.Pull0()
    sock.recv_max_size = 0
    return sock


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
) -> Socket:
    """Open a ``kind`` socket and dial (or, with ``listen``, listen on) ``url``.

    A blocking dial or a listen is retried ``attempts`` times, ``interval``
    seconds apart; a non-blocking dial (``block=False``) returns at once and
    nng keeps connecting in the background, reconnecting whenever the peer goes.
    """
    import pynng

    if kind not in _KINDS:
        raise ValueError(f"unknown socket kind {kind!r}")
    raw = _new(kind)
    sock = Socket(kind, url, raw)
    sock.send_timeout = send_timeout
    sock.recv_timeout = recv_timeout
    last: Optional[Exception] = None
    for _ in range(max(1, attempts)):
        try:
            if listen:
                raw.listen(url)
            else:
                raw.dial(url, block=block)
            return sock
        except pynng.NNGException as exc:
            last = exc
            time.sleep(interval)
    sock.close()
    verb = "listen on" if listen else "dial"
    raise TransportError(f"cannot {verb} {url}: {last}", url)
