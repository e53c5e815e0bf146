"""Graceful stop for the threading servers: stop accepting, let calls in flight answer, then close."""

from __future__ import annotations

import socket
import threading
from typing import Set

__all__ = ["Draining"]


class Draining:
    """Mixin for a ``socketserver`` threading server: remembers open connections so :meth:`drain` can end
    their reads (each handler then finishes the calls it has started and returns)."""

    daemon_threads = False
    block_on_close = True  # server_close() joins the connection threads

    def __init__(self) -> None:
        self._open: Set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def track(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(sock)

    def drain(self) -> None:
        """End every open connection's reads; replies still go out."""
        with self._open_lock:
            socks = list(self._open)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
