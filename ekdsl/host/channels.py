"""eKuiper's side of each socket, with the Go host's semantics (``runtime/connection.go``).

Control: REP listen; ``send_cmd`` follows :class:`ekdsl.session.HostExchange` (a reply starting with ``h``
is a stale handshake: the command again; a refused send: a pending reply is read and discarded). Source: PULL listen.
Sink: ack PULL listen before start, data PUSH dial after. Function: REP listen with the same
re-send rules as control.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

from ..errors import EkdslError
from ..protocol import (
    Control,
    Meta,
    ack_url,
    control_url,
    data_url,
    decode_ack,
    decode_func_reply,
    decode_source_message,
    encode_command,
    encode_func_request,
    func_url,
)
from ..session import Discarded, HostExchange, Reply
from ..transport import BadState, Socket, Timeout, open_socket

__all__ = ["CommandError", "ControlChannel", "FunctionChannel", "HostError", "SinkChannel", "SourceChannel"]


class HostError(EkdslError):
    """Something eKuiper would report while driving a plugin."""


class CommandError(HostError):
    """The plugin answered a control command with an error (eKuiper: ``receive error: <text>``)."""

    def __init__(self, reply: str):
        self.reply = reply
        super().__init__(f"receive error: {reply}")


def _listen(kind: str, url: str, **opts: Any) -> Socket:
    """eKuiper's ``listenWithRetry`` (6 tries, 100 ms apart); the host side always uses nng, like mangos."""
    return open_socket(kind, url, listen=True, attempts=6, interval=0.1, impl="pynng", **opts)


class _ReqRep:
    """The REP side of an inverted REQ/REP pair, as eKuiper's ``SendCmd``/``Req`` drive it."""

    def __init__(self, sock: Socket) -> None:
        self.sock = sock
        self.discarded: List[bytes] = []
        self.stale = 0

    def exchange(self, payload: bytes, timeout: float) -> bytes:
        """Send ``payload`` and return the real reply, following :class:`HostExchange`'s rules."""
        deadline = time.monotonic() + timeout
        ex = HostExchange(payload)
        while True:
            out = ex.data_to_send()
            if out is not None:
                try:
                    self.sock.send(out)
                    ex.sent()
                except BadState:
                    ex.refused()
            self.sock.recv_timeout = max(0.01, deadline - time.monotonic())
            event = ex.receive(self.sock.recv())
            if isinstance(event, Reply):
                return event.data
            if isinstance(event, Discarded):
                self.discarded.append(event.data)
            else:
                self.stale += 1

    def close(self) -> None:
        self.sock.close()


class ControlChannel(_ReqRep):
    """``ipc:///tmp/plugin_<name>.ipc``: created before the plugin process starts."""

    def __init__(self, plugin: str, socket_dir: Optional[str] = None) -> None:
        self.url = control_url(plugin, socket_dir)
        super().__init__(_listen("rep", self.url))

    def handshake(self, timeout: float) -> bytes:
        """One receive within ``timeout`` (eKuiper's ``initTimeout``); raise :class:`Timeout`."""
        self.sock.recv_timeout = timeout
        try:
            return self.sock.recv()
        except BadState:
            return b""

    def send_cmd(self, cmd: str, control: Control, timeout: float = 30.0) -> None:
        reply = self.exchange(encode_command(cmd, control), timeout)
        if reply != b"ok":
            raise CommandError(reply.decode("utf-8", "replace"))


class SourceChannel:
    """The PULL socket eKuiper listens on for a source instance's rows."""

    def __init__(self, meta: Meta, socket_dir: Optional[str] = None, recv_timeout: float = 5.0) -> None:
        self.meta = meta
        self.url = data_url(meta, socket_dir)
        self.sock = _listen("pull", self.url, recv_timeout=recv_timeout)

    def recv_raw(self, timeout: Optional[float] = None) -> bytes:
        if timeout is not None:
            self.sock.recv_timeout = timeout
        return self.sock.recv()

    def recv(self, timeout: Optional[float] = None) -> Tuple[Optional[Dict[str, Any]], Dict[str, Any]]:
        """The next ``(message, meta)`` as eKuiper decodes it (``ProtocolError`` for a bad payload)."""
        return decode_source_message(self.recv_raw(timeout))

    def close(self) -> None:
        self.sock.close()


class SinkChannel:
    """eKuiper's sockets for a sink instance: ack PULL (listen) and data PUSH (dial after start)."""

    def __init__(self, meta: Meta, socket_dir: Optional[str] = None) -> None:
        self.meta = meta
        self.socket_dir = socket_dir
        self.ack = _listen("pull", ack_url(meta, socket_dir), recv_timeout=1.0)
        self.data: Optional[Socket] = None

    def connect(self, send_timeout: float = 5.0, impl: str = "pynng") -> None:
        """Dial the plugin's data socket once, synchronously, as ``OptionDialAsynch: false`` does."""
        self.data = open_socket("push", data_url(self.meta, self.socket_dir), attempts=1,
                                send_timeout=send_timeout, impl=impl)

    def send(self, payload: bytes) -> None:
        assert self.data is not None, "connect() first"
        self.data.send(payload)

    def recv_ack(self, timeout: float = 10.0) -> Optional[str]:
        """Wait for one ack (eKuiper polls with 1 s deadlines); ``None`` = success, else the error text."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return decode_ack(self.ack.recv())
            except Timeout:
                if time.monotonic() >= deadline:
                    raise

    def close(self) -> None:
        if self.data is not None:
            self.data.close()
        self.ack.close()


class FunctionChannel(_ReqRep):
    """``ipc:///tmp/func_<symbol>.ipc``: REP listen, requests as ``FuncData``."""

    def __init__(self, symbol: str, socket_dir: Optional[str] = None) -> None:
        self.url = func_url(symbol, socket_dir)
        super().__init__(_listen("rep", self.url, send_timeout=5.0))

    def call(self, func: str, arg: Any, timeout: float = 5.0) -> Tuple[bool, Any]:
        return decode_func_reply(self.exchange(encode_func_request(func, arg), timeout))
