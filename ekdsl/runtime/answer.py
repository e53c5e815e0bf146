"""The plugin's half of eKuiper's inverted REQ/REP over a real socket: a driver of :class:`PluginSession`.

The rules (handshake first, keepalive after 5 s of silence, greet again after a broken exchange) live in
:mod:`ekdsl.session`; this loop moves bytes and reads the clock. Shared by the control and function channels.
"""

from __future__ import annotations

import time
from typing import Callable

from ..errors import TransportError
from ..session import KEEPALIVE, PluginSession, Request
from ..transport import BadState, Closed, Socket, Timeout

__all__ = ["KEEPALIVE", "answer_loop"]

RETRY_PAUSE = 0.1  # seconds before starting again after a transport error


def answer_loop(sock: Socket, handle: Callable[[bytes], bytes], stopped: Callable[[], bool],
                idle: Callable[[], bool] = lambda: False, *, clock: Callable[[], float] = time.monotonic,
                keepalive: float = KEEPALIVE, pause: Callable[[float], None] = time.sleep) -> None:
    """Answer every message with ``handle(message)`` until ``stopped()``, the socket closes, or ``idle()``
    returns True. ``idle`` is asked whenever a receive or a send times out, so also while an answer cannot
    be delivered; ``sock`` needs send and receive timeouts for either check to run."""
    session = PluginSession(keepalive)
    session.start(clock())

    def broken(exc: Exception) -> bool:
        # no request pending, or it died with its connection (pynng: "Connection reset"): unless eKuiper is
        # gone, start again with a handshake (after a pause, should the error persist); False: stop
        if idle():
            return False
        if not isinstance(exc, BadState):
            pause(RETRY_PAUSE)
        session.broken(clock())
        return True

    def take_events() -> None:  # every event is taken, so none piles up; a request is answered at once
        for event in iter(session.next_event, None):
            if isinstance(event, Request):
                session.send(handle(event.data))

    while not stopped():
        take_events()
        out = session.data_to_send()
        try:
            if out is not None:
                sock.send(out)
                session.sent(clock())
            else:
                session.receive(sock.recv(), clock())
                take_events()
        except Timeout:  # an answer is retried while eKuiper may still take it; silence may owe a keepalive
            if idle():
                return
            if out is None:
                session.tick(clock())
        except Closed:
            return
        except (BadState, TransportError) as exc:
            if not broken(exc):
                return
