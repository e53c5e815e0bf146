"""The plugin's half of eKuiper's inverted REQ/REP, shared by the control and function channels.

The plugin (REQ) sends ``handshake``; eKuiper's "reply" is a command or a call; the plugin's next
"request" is the answer. While nothing comes, the handshake is re-sent every few seconds as a keepalive:
eKuiper discards replies that start with ``h`` and sends its command again.
"""

from __future__ import annotations

import time
from typing import Callable

from ..errors import TransportError
from ..protocol import HANDSHAKE
from ..transport import BadState, Closed, Socket, Timeout

__all__ = ["KEEPALIVE", "answer_loop"]

KEEPALIVE = 5.0  # seconds without a message before the handshake is sent again, as eKuiper's SDKs do
RETRY_PAUSE = 0.1  # seconds before starting again after a transport error


def answer_loop(sock: Socket, handle: Callable[[bytes], bytes], stopped: Callable[[], bool],
                idle: Callable[[], bool] = lambda: False) -> None:
    """Answer every message with ``handle(message)`` until ``stopped()``, the socket closes, or ``idle()``
    returns True. ``idle`` is asked whenever a receive or a send times out, so also while an answer cannot
    be delivered; ``sock`` needs send and receive timeouts for either check to run."""

    def send(data: bytes) -> bool:
        while not stopped():
            try:
                sock.send(data)
                return True
            except Timeout:  # eKuiper waits for every answer: keep trying while it may still take it
                if idle():
                    return False
        return False

    try:
        if not send(HANDSHAKE):
            return
        last = time.monotonic()
        while not stopped():
            try:
                message = sock.recv()
            except Timeout:
                if idle():
                    return
                if time.monotonic() - last >= KEEPALIVE:
                    if not send(HANDSHAKE):
                        return
                    last = time.monotonic()
                continue
            except Closed:
                return
            except (BadState, TransportError) as exc:
                # no request pending, or it died with its connection (pynng: "Connection reset"): unless
                # eKuiper is gone, start again with a handshake (after a pause, should the error persist)
                if idle():
                    return
                if not isinstance(exc, BadState):
                    time.sleep(RETRY_PAUSE)
                if not send(HANDSHAKE):
                    return
                last = time.monotonic()
                continue
            if not send(handle(message)):
                return
            last = time.monotonic()
    except Closed:
        return
