"""The plugin's half of eKuiper's inverted REQ/REP, shared by the control and function channels.

The plugin (REQ) sends ``handshake``; eKuiper's "reply" is a command or a call; the plugin's next
"request" is the answer. While nothing comes, the handshake is re-sent every few seconds as a keepalive:
eKuiper discards replies that start with ``h`` and sends its command again.
"""

from __future__ import annotations

import time
from typing import Callable

from ..protocol import HANDSHAKE
from ..transport import BadState, Closed, Socket, Timeout

__all__ = ["KEEPALIVE", "answer_loop"]

KEEPALIVE = 5.0  # seconds without a message before the handshake is sent again, as eKuiper's SDKs do


def answer_loop(sock: Socket, handle: Callable[[bytes], bytes], stopped: Callable[[], bool],
                idle: Callable[[], bool] = lambda: False) -> None:
    """Answer every message with ``handle(message)`` until ``stopped()``, or ``idle()`` (checked whenever a
    receive times out) returns True. ``sock`` needs a receive timeout for either to be noticed."""

    def send(data: bytes) -> None:
        while not stopped():
            try:
                sock.send(data)
                return
            except Timeout:  # eKuiper waits for every answer: keep trying until told to stop
                continue

    send(HANDSHAKE)
    last = time.monotonic()
    while not stopped():
        try:
            message = sock.recv()
        except Timeout:
            if idle():
                return
            if time.monotonic() - last >= KEEPALIVE:
                send(HANDSHAKE)
                last = time.monotonic()
            continue
        except BadState:  # no request pending (e.g. after a failed send): start again with a handshake
            send(HANDSHAKE)
            last = time.monotonic()
            continue
        except Closed:
            return
        send(handle(message))
        last = time.monotonic()
