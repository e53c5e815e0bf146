"""The ``msgpack-rpc`` protocol, as eKuiper's client (Go ``net/rpc`` over ugorji's msgpack-rpc codec) speaks it.

Requests are ``[0, msgid, method, params]`` on a TCP stream, ``params`` being ``[nil]`` for no argument, ``[p]`` for
one and ``[p1, p2, ...]`` for several; replies are ``[1, msgid, error, result]`` with ``error`` a string or nil;
notifications ``[2, method, params]`` are run without a reply. eKuiper sends every call on one connection, so calls
on a connection run concurrently and answer in any order.

Backpressure: a connection stops being read while ``max_pending`` of its calls are unanswered or while its replies
wait unread in the socket buffer, so a client that does not read stops itself, not the server. A request that is
malformed but carries a usable id is answered with an error; a stream that is not msgpack-rpc (or a message over
``max_message`` bytes) is closed with one log line.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, List, Optional, Set, Tuple, cast

import msgpack

from .calls import Calls
from .functions import Outcome

__all__ = ["MAX_MESSAGE", "MsgpackRpcProtocol", "MsgpackRpcServer", "pack"]

log = logging.getLogger("ekdsl.service")

MAX_MESSAGE = 16 * 1024 * 1024
MAX_PENDING = 64
_SLICE = 4096  # a message is refused once its unread part is over the limit: at most this much past it
_MSGID_MAX = 2**64 - 1  # Go's net/rpc numbers calls with a uint64


class _BadMap:
    """A map whose keys Python cannot hold (a list or map as a key); the call using it is refused."""

    def __init__(self, pairs: List[Tuple[Any, Any]]) -> None:
        self.kinds = sorted({type(k).__name__ for k, _ in pairs if not _hashable(k)})


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _mapping(pairs: List[Tuple[Any, Any]]) -> Any:
    try:
        return dict(pairs)
    except TypeError:
        return _BadMap(pairs)


def _bad_map(value: Any) -> Optional[_BadMap]:
    if isinstance(value, _BadMap):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        found = _bad_map(item)
        if found is not None:
            return found
    return None


class MsgpackRpcProtocol(asyncio.Protocol):
    """One client connection: reads requests, runs each as a task, writes replies as they come."""

    def __init__(self, calls: Calls, connections: Set[MsgpackRpcProtocol], max_connections: int,
                 max_message: int = MAX_MESSAGE, max_pending: int = MAX_PENDING) -> None:
        self.calls, self.connections = calls, connections
        self.max_connections, self.max_pending, self.max_message = max_connections, max_pending, max_message
        self.transport: Optional[asyncio.Transport] = None
        self.pending = 0
        self._tasks: Set[asyncio.Future[None]] = set()
        self._write_paused = self._read_paused = False
        self._unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape", strict_map_key=False,
                                          object_pairs_hook=_mapping, max_buffer_size=max_message + _SLICE)
        self._fed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's do not derive from asyncio's
        if len(self.connections) >= self.max_connections:
            log.warning("msgpack-rpc: %d connections open (--max-connections): refusing %s", len(self.connections),
                        transport.get_extra_info("peername"))
            transport.abort()
            return
        self.connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            for start in range(0, len(data), _SLICE):  # fed in slices: the buffer holds one message and a slice
                piece = data[start:start + _SLICE]
                self._unpacker.feed(piece)
                self._fed += len(piece)
                for message in self._unpacker:
                    self._dispatch(message)
                    if self.transport is None or self.transport.is_closing():
                        return
                if self._fed - self._unpacker.tell() > self.max_message:  # the message being read is too long
                    raise msgpack.BufferFull
        except msgpack.BufferFull:
            self._close(f"a message over {self.max_message} bytes (the service's limit)")
        except Exception as exc:  # every way msgpack refuses bytes: ValueError, FormatError, StackError, ...
            self._close(f"bytes that are not msgpack ({type(exc).__name__}: {exc})")

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, list) and len(message) == 3 and message[0] == 2 and isinstance(message[1], str):
            self._spawn(self._answer(None, message[1], message[2]))  # a notification: no reply
            return
        if not (isinstance(message, list) and len(message) == 4 and message[0] == 0):
            self._close(f"a message that is not a msgpack-rpc request: {_preview(message)}")
            return
        msgid, method, params = message[1], message[2], message[3]
        if not (isinstance(msgid, int) and not isinstance(msgid, bool) and 0 <= msgid <= _MSGID_MAX):
            self._close(f"a request whose id is not an unsigned integer: {_preview(msgid)}")
            return
        if not isinstance(method, str):
            self._reply(msgid, Outcome(False, f"bad request: the method name must be a string, got "
                                              f"{type(method).__name__}"))
            return
        self.pending += 1
        if self.pending >= self.max_pending:
            self._pause()
        self._spawn(self._answer(msgid, method, params))

    def _spawn(self, answer: Any) -> None:
        task = asyncio.ensure_future(answer)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msgid: Optional[int], method: str, params: Any) -> None:
        try:
            outcome = await self._outcome(method, params)
        finally:
            if msgid is not None:
                self.pending -= 1
        if msgid is not None:
            self._reply(msgid, outcome)
            self._maybe_resume()

    async def _outcome(self, method: str, params: Any) -> Outcome:
        bad = _bad_map(params)
        if bad is not None:
            return Outcome(False, f"bad request: {method}() got a map keyed by {', '.join(bad.kinds)}: map keys "
                                  "must be strings")
        shape = self.calls.functions.shape(method)
        if shape is None:
            return self.calls.functions.unknown(method)
        return await self.calls.call(method, shape.args_from_msgpack(params))

    def _reply(self, msgid: int, outcome: Outcome) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(pack(msgid, outcome))

    def _pause(self) -> None:
        if not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()

    def _maybe_resume(self) -> None:
        if self._read_paused and not self._write_paused and self.pending < self.max_pending:
            self._read_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    def pause_writing(self) -> None:  # the client does not read its replies: stop reading its requests
        self._write_paused = True
        self._pause()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._maybe_resume()

    def _close(self, why: str) -> None:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        log.error("msgpack-rpc: %s sent %s: closing its connection", peer, why)
        if self.transport is not None:
            self.transport.abort()


def pack(msgid: int, outcome: Outcome) -> bytes:
    """The reply ``[1, msgid, error, result]`` for ``outcome``; a result msgpack cannot carry is an error."""
    if outcome.ok:
        try:
            packed: bytes = msgpack.packb([1, msgid, None, outcome.value], use_bin_type=True)
            return packed
        except (TypeError, ValueError, OverflowError) as exc:
            outcome = Outcome(False, f"result cannot be sent: {exc}")
    error: bytes = msgpack.packb([1, msgid, str(outcome.value), None], use_bin_type=True)
    return error


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class MsgpackRpcServer:
    """``calls`` served over msgpack-rpc on the listening ``sock``."""

    def __init__(self, calls: Calls, sock: socket.socket, max_connections: int, backlog: int, grace: float,
                 max_message: int = MAX_MESSAGE) -> None:
        self.calls, self.sock, self.max_connections, self.backlog, self.grace = (
            calls, sock, max_connections, backlog, grace)
        self.max_message = max_message
        self.connections: Set[MsgpackRpcProtocol] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; then stop accepting, drain the calls (at most ``grace`` seconds) and close
        every connection."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: MsgpackRpcProtocol(self.calls, self.connections, self.max_connections, self.max_message),
            sock=self.sock,
            backlog=self.backlog)
        try:
            await stop.wait()
        finally:
            server.close()
            await self.calls.drain(self.grace)
            for conn in list(self.connections):
                if conn.transport is not None:
                    conn.transport.close()

    def force(self) -> None:
        """Nothing to do: :meth:`.calls.Calls.cut` ends the drain."""
