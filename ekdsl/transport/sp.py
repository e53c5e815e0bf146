"""The SP wire of nng and mangos over stream transports, sans I/O (PROTOCOL §2.2).

A connection starts with an 8-byte header from each side, ``00 'S' 'P' 00 <protocol:u16 BE> 00 00``;
then every message is ``0x01``, a ``u64`` big-endian length, and that many bytes: the protocol header
(for REQ/REP the 4-byte request id with its high bit set) followed by the body.
"""

from __future__ import annotations

import struct
from typing import List, Optional, Union

from ..errors import ProtocolError

__all__ = ["PEER", "PROTOCOLS", "FrameReader", "check_header", "conn_header", "frame"]

PROTOCOLS = {"req": 0x30, "rep": 0x31, "push": 0x50, "pull": 0x51}
PEER = {"req": "rep", "rep": "req", "push": "pull", "pull": "push"}
_MAGIC = b"\x00SP\x00"
_LEN = struct.Struct(">Q")
MAX_MESSAGE = 1 << 40  # no practical limit (eKuiper sets none), but reject absurd lengths


def conn_header(kind: str) -> bytes:
    """The 8 bytes a ``kind`` socket sends when a connection opens."""
    return _MAGIC + struct.pack(">H", PROTOCOLS[kind]) + b"\x00\x00"


def check_header(data: bytes, kind: str) -> None:
    """Raise :class:`ProtocolError` unless ``data`` is the header of ``kind``'s peer protocol."""
    if len(data) != 8 or data[:4] != _MAGIC or data[6:] != b"\x00\x00":
        raise ProtocolError(f"not an SP connection header: {data!r}", data)
    proto = struct.unpack(">H", data[4:6])[0]
    want = PROTOCOLS[PEER[kind]]
    if proto != want:
        raise ProtocolError(f"peer speaks SP protocol 0x{proto:x}, expected 0x{want:x} ({PEER[kind]})", data)


def frame(body: bytes, header: bytes = b"") -> bytes:
    """One message on the wire."""
    return b"\x01" + _LEN.pack(len(header) + len(body)) + header + body


class FrameReader:
    """Reassembles messages from stream chunks; ``feed`` returns the complete ones."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: Union[bytes, bytearray, memoryview]) -> List[bytes]:
        """Add received bytes; return every message they complete (``chunk`` is not kept)."""
        data: Union[bytes, bytearray, memoryview]
        if self._buf:
            self._buf += chunk
            data = self._buf
        else:
            data = chunk  # the common case: parse in place, keep only an incomplete tail
        out: List[bytes] = []
        pos = 0
        n = len(data)
        while n - pos >= 9:
            if data[pos] != 1:
                raise ProtocolError(f"bad SP message type byte 0x{data[pos]:02x}")
            size = _LEN.unpack_from(data, pos + 1)[0]
            if size > MAX_MESSAGE:
                raise ProtocolError(f"SP message of {size} bytes is too large")
            end = pos + 9 + size
            if end > n:
                break
            out.append(bytes(data[pos + 9:end]))
            pos = end
        if data is self._buf:
            del self._buf[:pos]
        elif pos < n:
            self._buf += data[pos:]
        return out

    @property
    def holding(self) -> bool:
        """Whether part of a message is held, waiting for the rest."""
        return bool(self._buf)

    def pending(self) -> Optional[int]:
        """Bytes still needed to complete the current message (``None`` if unknown yet)."""
        if len(self._buf) < 9:
            return None
        size: int = _LEN.unpack_from(self._buf, 1)[0]
        return 9 + size - len(self._buf)
