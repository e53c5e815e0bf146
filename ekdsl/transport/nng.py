"""The pynng implementation of :class:`~ekdsl.transport.Socket`: the only module that imports pynng."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from typing import Any, Iterator, List, Optional

from ..errors import TransportError
from . import BadState, Closed, Socket, Timeout

__all__ = ["NngSocket", "open_nng"]


def _ms(seconds: Optional[float]) -> int:
    return -1 if seconds is None else max(0, int(seconds * 1000))


class NngSocket(Socket):
    def __init__(self, kind: str, url: str, raw: Any) -> None:
        super().__init__(kind, url)
        self._sock = raw

    def _timeouts_changed(self) -> None:
        self._sock.recv_timeout = _ms(self._recv_timeout)
        self._sock.send_timeout = _ms(self._send_timeout)

    @contextlib.contextmanager
    def _mapped(self, op: str) -> Iterator[None]:
        """pynng's exceptions → ekdsl's transport errors."""
        import pynng

        try:
            yield
        except pynng.Timeout:
            raise Timeout(f"{op} timed out on {self.url}", self.url) from None
        except pynng.Closed:
            raise Closed(f"socket {self.url} is closed", self.url) from None
        except pynng.BadState:
            raise BadState(f"{self.kind} socket {self.url} cannot {op} now", self.url) from None
        except pynng.ConnectionReset:
            if self.kind != "req":
                raise TransportError(f"{op} failed on {self.url}: connection reset", self.url) from None
            # nng drops a REQ's pending request when its connection goes (resend is off): send anew
            raise BadState(f"the request on {self.url} was lost with its connection", self.url) from None
        except pynng.NNGException as exc:
            raise TransportError(f"{op} failed on {self.url}: {exc}", self.url) from None

    def send(self, data: bytes) -> None:
        with self._mapped("send"):
            self._sock.send(data)

    def recv(self) -> bytes:
        with self._mapped("receive"):
            try:
                return bytes(self._sock.recv())
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


def _first_peer_only(sock: NngSocket) -> None:
    """Refuse every connection after the first; set ``sock.lost`` when the first one ends."""
    first: List[int] = []

    def pre_add(pipe: Any) -> None:
        if first:
            pipe.close()  # closed before it is added: no message ever reaches a second peer
        else:
            first.append(pipe.id)

    def removed(pipe: Any) -> None:
        if first and pipe.id == first[0]:
            sock.lost = True

    sock._sock.add_pre_pipe_connect_cb(pre_add)
    sock._sock.add_post_pipe_remove_cb(removed)


def open_nng(kind: str, url: str, *, listen: bool, block: bool, attempts: int, interval: float,
             redial: bool = True) -> NngSocket:
    import pynng

    raw = _new(kind)
    sock = NngSocket(kind, url, raw)
    if not redial and not listen:
        _first_peer_only(sock)
    last: Optional[Exception] = None
    for _ in range(max(1, attempts)):
        try:
            if listen:
                raw.listen(url)
                if url.startswith("ipc://"):
                    os.chmod(url[len("ipc://"):], stat.S_IRUSR | stat.S_IWUSR)  # owner-only, as the native one
            else:
                raw.dial(url, block=block)
            return sock
        except pynng.NNGException as exc:
            last = exc
            if isinstance(exc, pynng.OutOfFiles):
                break  # out of descriptors: waiting will not help, and the caller's thread is eKuiper's
            time.sleep(interval)
    sock.close()
    verb = "listen on" if listen else "dial"
    raise TransportError(f"cannot {verb} {url}: {last}", url)
