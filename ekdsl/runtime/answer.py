"""The plugin's half of eKuiper's inverted REQ/REP over a real socket: a driver of :class:`PluginSession`.

The rules (handshake first, keepalive after 5 s of silence, greet again after a broken exchange) live in
:mod:`ekdsl.session`; this loop moves bytes and reads the clock. Shared by the control and function channels.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from ..errors import TransportError
from ..session import KEEPALIVE, PluginSession, Request
from ..transport import BadState, Closed, Socket, Timeout

__all__ = ["KEEPALIVE", "SAME", "answer_loop"]

RETRY_PAUSE = 0.1  # seconds before starting again after a transport error
SAME = -1.0  # unread_wait: the socket's own receive timeout


def answer_loop(sock: Socket, handle: Callable[[bytes], bytes], stopped: Callable[[], bool],
                idle: Callable[[], bool] = lambda: False, *, clock: Callable[[], float] = time.monotonic,
                keepalive: float = KEEPALIVE, pause: Callable[[float], None] = time.sleep,
                unread_wait: Optional[float] = SAME, greeted: bool = False) -> None:
    """Answer every message with ``handle(message)`` until ``stopped()``, the socket closes, or ``idle()``
    returns True. ``idle`` is asked whenever a receive or a send times out, so also while an answer cannot
    be delivered; ``sock`` needs send and receive timeouts for either check to run. A keepalive that is due
    goes only once eKuiper has read what went before (``sock.drained()``): while idle, eKuiper takes one and
    leaves the next unread until its next command, and more would only queue up (each costs that command a
    round trip) until the socket's buffer is full. With a socket that
    ``close()`` interrupts, plain exchanges take :func:`answer_lane`, and ``stopped()`` is asked when a
    receive times out: a stop closes the socket. While a keepalive is unread, eKuiper reads it only when it
    sends a command, which wakes the receive: then the lane waits ``unread_wait`` seconds (``None``: for the
    next message, when the socket's close and end are all that must wake it; :data:`SAME`: the socket's
    receive timeout) before it asks ``idle()`` again. ``greeted``: the handshake went out already (the first
    thing to do is to receive)."""
    session = PluginSession(keepalive)
    session.start(clock(), greeted=greeted)
    lane = sock.interruptible if isinstance(sock, Socket) else False

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
            elif lane:
                if not answer_lane(session, sock, handle, stopped, idle, clock, unread_wait):
                    return
            else:
                session.receive(sock.recv(), clock())
                take_events()
        except Timeout:  # an answer is retried while eKuiper may still take it; silence may owe a keepalive
            if idle():
                return
            if out is None and sock.drained():
                session.tick(clock())
        except Closed:
            return
        except (BadState, TransportError) as exc:
            if not broken(exc):
                return


def answer_lane(session: PluginSession, sock: Socket, handle: Callable[[bytes], bytes],
                stopped: Callable[[], bool], idle: Callable[[], bool], clock: Callable[[], float],
                unread_wait: Optional[float] = SAME) -> bool:
    """Plain exchanges from WAITING, the session's rules without its event queue: each request is answered
    and the answer delivered; a receive timeout sends the keepalive when it is due. Returns False when
    ``stopped()`` or ``idle()`` says so; anything else unusual is raised with the session in the state it
    was left in (an answer not delivered stays queued), for :func:`answer_loop` to take over. ``unread_wait``:
    see :func:`answer_loop`."""
    receive, send, drained = sock.recv_or_none, sock.send, sock.drained
    answered, sent, due = session.answered, session.sent, session.keepalive_due
    period = sock.recv_timeout
    asleep = False  # waiting unread_wait while what was sent is unread
    try:
        while True:
            data: Optional[bytes] = receive()
            if data is None:  # the receive timeout passed
                if stopped() or idle():
                    return False
                if not drained():
                    if not asleep and unread_wait != SAME:
                        sock.recv_timeout, asleep = unread_wait, True
                    continue
                out = due(clock())
                if out is None:
                    continue
            else:
                if asleep:
                    sock.recv_timeout, asleep = period, False
                out = answered(handle(data))
            send(out)
            sent(clock())
    finally:
        if asleep:
            sock.recv_timeout = period
