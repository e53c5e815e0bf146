"""One HTTP exchange with eKuiper's REST API, on the standard library, bounded in time and in size.

- **Deadline**: connecting, sending and every read of the answer (redirects included) must end by one
  deadline. Each socket operation gets only the time left, so a server that trickles a byte a second
  cannot stretch a request past it, as it can a socket timeout.
- **Size**: an answer is read in chunks and refused at the first byte past ``max_bytes``.
- **Redirects**: followed only to the same origin (scheme, host and port), their own bodies unread; a
  redirect to another origin is refused, so neither the ``Authorization`` header nor the request body
  reaches another host. eKuiper's REST API itself never redirects.
"""

from __future__ import annotations

import http.client
import io
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import IO, Any, Callable, Dict, NamedTuple, Optional, Tuple, cast

__all__ = ["CrossOrigin", "Deadline", "Expired", "TooLarge", "exchange", "origin"]

CHUNK = 1 << 16


class Expired(TimeoutError):
    """The exchange did not end by its deadline."""


class TooLarge(Exception):
    """The answer is larger than the limit."""


class CrossOrigin(Exception):
    """The server redirected to another origin: ``code`` and ``url`` (the redirect's target)."""

    def __init__(self, code: int, url: str) -> None:
        super().__init__(code, url)
        self.code = code
        self.url = url


class Deadline:
    """A moment on ``clock``; :meth:`left` is the time until it, raising :class:`Expired` once it has passed."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.end = clock() + seconds

    @property
    def passed(self) -> bool:
        return self.clock() >= self.end

    def left(self) -> float:
        left = self.end - self.clock()
        if left <= 0:
            raise Expired("the deadline has passed")
        return left


class _Reader(io.RawIOBase):
    """A socket's reading side; each read waits only until the deadline."""

    def __init__(self, sock: socket.socket, raw: socket.SocketIO, deadline: Deadline) -> None:
        self._sock, self._raw, self._deadline = sock, raw, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> Optional[int]:
        self._sock.settimeout(self._deadline.left())
        try:
            return self._raw.readinto(buffer)
        except TimeoutError:
            raise Expired("no answer by the deadline") from None

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Guard:
    """A connected socket whose sends and reads all end by the deadline; the rest is the socket's own."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self._sock, self._deadline = sock, deadline

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def sendall(self, data: Any, *flags: int) -> None:
        self._sock.settimeout(self._deadline.left())  # sendall's timeout bounds the whole call
        try:
            self._sock.sendall(data, *flags)
        except TimeoutError:
            raise Expired("could not send by the deadline") from None

    def makefile(self, mode: str = "r", *args: Any, **kwargs: Any) -> IO[bytes]:
        raw = self._sock.makefile("rb", buffering=0)  # counts as a reference: close() waits for it
        return io.BufferedReader(_Reader(self._sock, raw, self._deadline))


class _Deadlined:
    """Mixed into a connection class: connect within the deadline, then guard the socket."""

    def __init__(self, host: str, *, deadline: Deadline, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)  # type: ignore[call-arg]
        self.deadline = deadline

    def connect(self) -> None:
        conn = cast(http.client.HTTPConnection, self)
        conn.timeout = self.deadline.left()
        super().connect()  # type: ignore[misc]
        conn.sock = _Guard(conn.sock, self.deadline)  # type: ignore[assignment]


class _HTTP(_Deadlined, http.client.HTTPConnection):
    pass


class _HTTPS(_Deadlined, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTP, req, deadline=self.deadline)  # type: ignore[arg-type]


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPS, req, deadline=self.deadline)  # type: ignore[arg-type]


class Origin(NamedTuple):
    scheme: str
    host: str
    port: Optional[int]


def origin(url: str) -> Origin:
    """(scheme, host, port) of ``url``, the port filled in for http and https."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return Origin(parts.scheme.lower(), (parts.hostname or "").lower(), port or default)


class _SameOrigin(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only within the request's origin, without reading the redirect's body."""

    def http_error_302(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                       headers: Any) -> Optional[IO[bytes]]:
        target = headers.get("location") or headers.get("uri")
        if target is not None:
            target = urllib.parse.urljoin(req.full_url, target)
            if origin(target) != origin(req.full_url):
                fp.close()
                raise CrossOrigin(code, target)
        fp.close()  # the base class reads the body it drops: an endless one would never end
        return super().http_error_302(req, fp, code, msg, headers)  # type: ignore[no-any-return]

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302  # type: ignore[assignment]


def _read(resp: Any, limit: int) -> bytes:
    length = resp.headers.get("Content-Length") if resp.headers is not None else None
    if length and length.strip().isdigit() and int(length) > limit:
        raise TooLarge(limit)
    out = bytearray()
    while True:
        chunk = resp.read(min(CHUNK, limit + 1 - len(out)))
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > limit:
            raise TooLarge(limit)


def exchange(method: str, url: str, data: Optional[bytes], headers: Dict[str, str], *, deadline: Deadline,
             max_bytes: int) -> Tuple[int, bytes]:
    """Send one request; return the answer's status and body (an HTTP error status is an answer too).

    Raises :class:`Expired`, :class:`TooLarge`, :class:`CrossOrigin`, or what :mod:`urllib` raises when
    the server cannot be reached.
    """
    opener = urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline), _SameOrigin())
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        try:
            with opener.open(req) as resp:
                return resp.status, _read(resp, max_bytes)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, _read(exc, max_bytes)
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        if deadline.passed:
            raise Expired("no complete answer by the deadline") from None
        raise
