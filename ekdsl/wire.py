"""The start of eKuiper's protocol: where its sockets are (``internal/plugin/portable/runtime``) and the
handshake, the plugin's first message on each.

Apart from :mod:`ekdsl.protocol` (which re-exports these) so that the plugin process can dial its control
socket and send the handshake before it imports the codec and the rest of the runtime.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the plugin's handshake needs this module
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["HANDSHAKE", "MAX_IPC_PATH", "SOCKET_DIR_ENV", "TRANSPORT_ENV", "control_url", "func_url", "instance_url",
           "socket_dir"]

HANDSHAKE = b"handshake"
SOCKET_DIR_ENV = "EKDSL_SOCKET_DIR"
TRANSPORT_ENV = "EKDSL_TRANSPORT"  # native (the default) or pynng
MAX_IPC_PATH = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux


def socket_dir() -> str:
    """Where the ``.ipc`` files live: ``/tmp`` as in eKuiper, or ``$EKDSL_SOCKET_DIR``."""
    return os.environ.get(SOCKET_DIR_ENV) or "/tmp"


def _url(name: str, directory: Optional[str]) -> str:
    path = os.path.join(directory or socket_dir(), name)
    if len(path.encode("utf-8")) > MAX_IPC_PATH:
        from .errors import TransportError  # only here: the handshake goes out before errors.py is compiled

        raise TransportError(
            f"socket path is {len(path.encode())} bytes, over the {MAX_IPC_PATH}-byte limit of Unix sockets: "
            f"{path} (use shorter rule/stream ids, or a shorter {SOCKET_DIR_ENV})", "ipc://" + path)
    return "ipc://" + path


def control_url(plugin: str, directory: Optional[str] = None) -> str:
    return _url(f"plugin_{plugin}.ipc", directory)


def func_url(symbol: str, directory: Optional[str] = None) -> str:
    return _url(f"func_{symbol}.ipc", directory)


def instance_url(rule_id: str, op_id: str, instance_id: int, suffix: str = "",
                 directory: Optional[str] = None) -> str:
    """A source's or sink's data socket (``suffix`` ``"_ack"``: its acks), named after its instance."""
    return _url(f"{rule_id}_{op_id}_{instance_id}{suffix}.ipc", directory)
