"""The REST application served by uvicorn (httptools' parser, which refuses conflicting or malformed framing).

uvicorn bounds the idle time between requests, the connections and requests at once, the backlog and the drain;
:class:`HeadTimeoutProtocol` adds what it lacks, a deadline for each request head (slowloris). The body's size and
time limits are the application's (:class:`~.rest.RestApp`), so they hold under any ASGI server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, Iterator, Optional

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .options import Options

__all__ = ["HeadTimeoutProtocol", "RestServer", "UvicornServer", "head_timeout_protocol", "uvicorn_config"]

_LATE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
         b"content-length: 42\r\n\r\nrequest head not received within its time\n")


class HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request head: a connection that has not sent a whole
    head within :attr:`header_timeout` seconds of connecting, or of the head's first byte, is answered 408 and
    closed."""

    header_timeout = 10.0
    _head_timer: Optional[asyncio.TimerHandle] = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._late)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _late(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.write(_LATE)
            self.transport.close()


def head_timeout_protocol(header_timeout: float) -> type:
    """:class:`HeadTimeoutProtocol` with its deadline set to ``header_timeout`` seconds."""
    return type("HeadTimeoutProtocol", (HeadTimeoutProtocol,), {"header_timeout": header_timeout})


def uvicorn_config(app: Any, settings: Options) -> uvicorn.Config:
    """uvicorn's settings for ``app``: asyncio, httptools with the head deadline, no access log, no lifespan
    errors swallowed."""
    return uvicorn.Config(
        app, loop="asyncio", http=head_timeout_protocol(settings.header_timeout), ws="none", lifespan="on",
        timeout_keep_alive=int(max(1, settings.idle_timeout)), limit_concurrency=settings.max_connections,
        backlog=settings.backlog, timeout_graceful_shutdown=int(max(1, round(settings.grace))),
        access_log=False, log_config=None, server_header=False, date_header=False, proxy_headers=False)


class UvicornServer(uvicorn.Server):
    """A uvicorn server whose owner handles the signals (set :attr:`should_exit` to begin the drain)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class RestServer:
    """``app`` served by uvicorn on the listening ``sock``."""

    def __init__(self, app: Any, sock: socket.socket, settings: Options) -> None:
        self.sock = sock
        self.server = UvicornServer(uvicorn_config(app, settings))

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then drain (uvicorn's graceful shutdown, then the app's lifespan)."""
        task = asyncio.ensure_future(self.server.serve(sockets=[self.sock]))
        waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        self.server.should_exit = True
        waiter.cancel()
        await task

    def force(self) -> None:
        """Stop waiting for the requests in flight."""
        self.server.force_exit = True
