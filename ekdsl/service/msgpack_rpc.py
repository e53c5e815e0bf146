"""The ``msgpack-rpc`` protocol, as eKuiper's client (Go ``net/rpc`` over ugorji's msgpack-rpc codec) speaks it.

Requests are ``[0, msgid, method, params]`` on a TCP stream, ``params`` being ``[nil]`` for no argument,
``[p]`` for one and ``[p1, p2, ...]`` for several; replies are ``[1, msgid, error, result]`` with ``error`` a
string or nil. One connection carries concurrent calls: each request runs on its own thread and replies may
come back in any order. A failed call answers its error; only a stream that is not msgpack-rpc is closed.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Tuple

import msgpack

from .calls import Outcome
from .lifecycle import Draining

__all__ = ["MsgpackRpcServer"]

log = logging.getLogger("ekdsl.service")
READ_SIZE = 64 * 1024


class _Connection(socketserver.BaseRequestHandler):
    server: MsgpackRpcServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape", strict_map_key=False)
        write_lock = threading.Lock()
        pool = ThreadPoolExecutor(self.server.call_threads, thread_name_prefix="msgpack-rpc-call")
        self.server.track(sock)
        try:
            while True:
                data = sock.recv(READ_SIZE)
                if not data:
                    return
                unpacker.feed(data)
                for message in unpacker:
                    if not (isinstance(message, list) and len(message) == 4 and message[0] == 0
                            and isinstance(message[1], int) and isinstance(message[2], str)):
                        log.error("msgpack-rpc: not a request %r: closing the connection", message)
                        return
                    pool.submit(self._answer, sock, write_lock, message[1], message[2], message[3])
        except (OSError, ValueError) as exc:  # reset by the peer, or bytes that are not msgpack
            log.debug("msgpack-rpc connection ends: %s", exc)
        finally:
            self.server.untrack(sock)
            pool.shutdown(wait=True)  # calls in flight still answer

    def _answer(self, sock: socket.socket, lock: threading.Lock, msgid: int, method: str, params: Any) -> None:
        shape = self.server.calls.shape(method)
        if shape is None:
            outcome = self.server.calls.call(method, [])
        else:
            outcome = self.server.calls.call(method, shape.args_from_msgpack(params))
        reply = _pack(msgid, outcome)
        try:
            with lock:
                sock.sendall(reply)
        except OSError as exc:
            log.debug("msgpack-rpc: reply %d not sent: %s", msgid, exc)


def _pack(msgid: int, outcome: Outcome) -> bytes:
    if outcome.ok:
        try:
            packed: bytes = msgpack.packb([1, msgid, None, outcome.value], use_bin_type=True)
            return packed
        except (TypeError, ValueError, OverflowError) as exc:
            outcome = Outcome(False, f"result cannot be sent: {exc}")
    error: bytes = msgpack.packb([1, msgid, str(outcome.value), None], use_bin_type=True)
    return error


class MsgpackRpcServer(Draining, socketserver.ThreadingTCPServer):
    """A threading TCP server answering every function of ``calls``."""

    allow_reuse_address = True
    call_threads = 8  # calls run at once per connection

    def __init__(self, address: Tuple[str, int], calls: Any) -> None:
        self.calls = calls
        Draining.__init__(self)
        socketserver.ThreadingTCPServer.__init__(self, address, _Connection)
