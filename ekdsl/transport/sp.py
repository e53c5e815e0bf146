"""The SP wire of nng and mangos over stream transports, sans I/O (PROTOCOL §2.2).

A connection starts with an 8-byte header from each side, ``00 'S' 'P' 00 <protocol:u16 BE> 00 00``;
then every message is ``0x01``, a ``u64`` big-endian length, and that many bytes: the protocol header
(for REQ/REP the 4-byte request id with its high bit set) followed by the body.
"""

from __future__ import annotations

import struct

from ..errors import ProtocolError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the plugin's handshake needs this module
if TYPE_CHECKING:
    from typing import Callable, List, Optional, Union

__all__ = ["CHUNK", "PEER", "PROTOCOLS", "FrameReader", "check_header", "conn_header", "frame"]

PROTOCOLS = {"req": 0x30, "rep": 0x31, "push": 0x50, "pull": 0x51}
PEER = {"req": "rep", "rep": "req", "push": "pull", "pull": "push"}
_MAGIC = b"\x00SP\x00"
_LEN = struct.Struct(">Q")
_HEAD = struct.Struct(">BQ")  # a message's type byte and length
CHUNK = 64 * 1024  # the buffer a connection keeps between messages (larger ones grow it for a while)
_MIN_ROOM = 1024  # a receive gets at least this much room
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
    """Reassembles messages from a stream in one buffer, received into in place.

    :meth:`next` returns the next whole message (a copy), calling a receive function for more bytes as
    often as it takes; :meth:`feed` adds bytes received elsewhere. The buffer starts empty (a connection
    that only sends never makes one), grows only as data arrives (a declared length allocates nothing) and
    goes back to :data:`CHUNK` once a larger message has been taken.
    """

    __slots__ = ("buf", "end", "pos", "view")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.view = memoryview(self.buf)
        self.pos = 0  # the first byte not yet taken
        self.end = 0  # the end of the bytes received

    def next(self, receive: Optional[Callable[[memoryview], int]] = None) -> Optional[bytes]:
        """The next whole message; :class:`ProtocolError` for a frame that is not SP's.

        Without ``receive``: ``None`` when no whole message is held. With it: ``receive(room)`` (a socket's
        ``recv_into``) is called for more bytes until a message is whole, and ``None`` means it returned 0
        (EOF); whatever it raises goes on up, with nothing lost.
        """
        while True:
            pos, end = self.pos, self.end
            if end - pos >= 9:
                kind, size = _HEAD.unpack_from(self.buf, pos)
                stop = pos + 9 + size
                if kind == 1 and stop <= end:
                    self.pos = stop
                    return bytes(self.view[pos + 9:stop])
                if kind != 1:
                    raise ProtocolError(f"bad SP message type byte 0x{kind:02x}")
                if size > MAX_MESSAGE:
                    raise ProtocolError(f"SP message of {size} bytes is too large")
            if receive is None:
                return None
            if pos == end and 0 < len(self.buf) <= CHUNK:  # all taken: receive at the start, as space() would
                self.pos = self.end = 0
                n = receive(self.view)
            else:
                n = receive(self.space())
            if not n:
                return None
            self.end += n

    def space(self) -> memoryview:
        """Room for one receive at the end of the buffer (then add its size to :attr:`end`).

        When little room is left, the bytes not yet taken move to the start; the buffer grows (4 KiB, then
        four times larger up to :data:`CHUNK`) when receives fill it, beyond that only while one message fills
        it (doubling), and goes back to :data:`CHUNK` once that message is taken."""
        pos, end, cap = self.pos, self.end, len(self.buf)
        if pos == end and 0 < cap <= CHUNK:
            self.pos = self.end = 0
            return self.view
        if cap - end >= _MIN_ROOM and pos < end:
            return self.view[end:]
        held = end - pos
        if held == cap:  # nothing yet, or one message fills the buffer
            size = max(4096, 2 * cap)
        elif end == cap and cap < CHUNK:  # a receive filled it: messages come faster than they are taken
            size = min(CHUNK, 4 * cap)
        elif cap > CHUNK and held <= CHUNK // 2:  # the large message was taken
            size = CHUNK
        else:
            size = cap
        while size - held < _MIN_ROOM:
            size *= 2
        if size == cap:  # move the bytes not yet taken to the start
            self.buf[:held] = bytes(self.view[pos:end])
        else:
            buf = bytearray(size)
            buf[:held] = self.view[pos:end]
            self.buf, self.view = buf, memoryview(buf)
        self.pos, self.end = 0, held
        return self.view[held:]

    def feed(self, chunk: Union[bytes, bytearray, memoryview]) -> List[bytes]:
        """Add received bytes; return every message they complete (``chunk`` is not kept)."""
        view = memoryview(chunk).cast("B")
        out: List[bytes] = []
        while True:
            out.extend(iter(self.next, None))
            if not view:
                return out
            room = self.space()
            n = min(len(room), len(view))
            room[:n] = view[:n]
            self.end += n
            view = view[n:]

    @property
    def holding(self) -> bool:
        """Whether received bytes wait for the rest of their message."""
        return self.pos != self.end

    def pending(self) -> Optional[int]:
        """Bytes still needed to complete the current message (``None`` if unknown yet)."""
        if self.end - self.pos < 9:
            return None
        size: int = _LEN.unpack_from(self.buf, self.pos + 1)[0]
        return 9 + size - (self.end - self.pos)
