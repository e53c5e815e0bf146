"""The start of eKuiper's protocol: where its sockets are (``internal/plugin/portable/runtime``) and the
handshake, the plugin's first message on each.

Apart from :mod:`ekdsl.protocol` (which re-exports these) so that the plugin process can dial its control
socket and send the handshake before it imports the codec and the rest of the runtime.
"""

from __future__ import annotations

import os

from .errors import TransportError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the plugin's handshake needs this module
if TYPE_CHECKING:
    from typing import Optional

    from .protocol import Meta

__all__ = ["HANDSHAKE", "MAX_IPC_PATH", "SOCKET_DIR_ENV", "ack_url", "control_url", "data_url", "func_url",
           "socket_dir"]

HANDSHAKE = b"handshake"
SOCKET_DIR_ENV = "EKDSL_SOCKET_DIR"
MAX_IPC_PATH = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux


def socket_dir() -> str:
    """Where the ``.ipc`` files live: ``/tmp`` as in eKuiper, or ``$EKDSL_SOCKET_DIR``."""
    return os.environ.get(SOCKET_DIR_ENV) or "/tmp"


def _url(name: str, directory: Optional[str]) -> str:
    path = os.path.join(directory or socket_dir(), name)
    if len(path.encode("utf-8")) > MAX_IPC_PATH:
        raise TransportError(
            f"socket path is {len(path.encode())} bytes, over the {MAX_IPC_PATH}-byte limit of Unix sockets: "
            f"{path} (use shorter rule/stream ids, or a shorter {SOCKET_DIR_ENV})", "ipc://" + path)
    return "ipc://" + path


def control_url(plugin: str, directory: Optional[str] = None) -> str:
    return _url(f"plugin_{plugin}.ipc", directory)


def func_url(symbol: str, directory: Optional[str] = None) -> str:
    return _url(f"func_{symbol}.ipc", directory)


def data_url(meta: Meta, directory: Optional[str] = None) -> str:
    return _url(f"{meta.rule_id}_{meta.op_id}_{meta.instance_id}.ipc", directory)


def ack_url(meta: Meta, directory: Optional[str] = None) -> str:
    return _url(f"{meta.rule_id}_{meta.op_id}_{meta.instance_id}_ack.ipc", directory)
