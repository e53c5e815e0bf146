"""Reading a package a stranger made (a zip, or an exported folder) in bounded memory.

Members are read in chunks and their bytes counted as they decompress, whatever sizes the zip declares:
:class:`Limits` caps the number of entries (checked in the central directory before :mod:`zipfile` parses
it), the bytes of one entry and of all of them, and the decompression ratio of a large entry. Only
stored and deflated members are read, as eKuiper's unzip (Go's ``archive/zip``) reads no other.
"""

from __future__ import annotations

import copy
import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Any, Iterator, List, Optional, Tuple

from .errors import PackagingError

__all__ = ["DEFAULT_LIMITS", "Entry", "Limits", "Package", "open_package"]

CHUNK = 1 << 16
_READABLE = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_METHODS = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}


@dataclass(frozen=True)
class Limits:
    """What reading one package may cost; each limit is refused with a :class:`PackagingError` naming it."""

    entries: int = 100_000        # members of the package
    entry_bytes: int = 1 << 30    # bytes one member holds once decompressed
    total_bytes: int = 4 << 30    # bytes all members hold once decompressed
    ratio: int = 100              # decompressed / compressed bytes of a member ...
    ratio_floor: int = 1 << 20    # ... once it has produced this many bytes
    text_bytes: int = 8 << 20     # a file read whole into memory (metadata, scripts, requirements)


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Entry:
    """One member of a package, as eKuiper's unzip sees it; its bytes are read through :class:`Package`."""

    name: str
    is_dir: bool
    mode: int  # permission bits, as Go's zip FileHeader.Mode() gives them
    link: bool = False  # a symbolic link
    size: int = 0  # the size the zip declares (a folder's file: its size on disk)
    method: str = "stored"  # compression: "stored", "deflated", or another method's name (unreadable)
    info: Any = None  # the zipfile.ZipInfo, for a zip member


def _zip_mode(info: zipfile.ZipInfo) -> int:
    """Go's ``FileHeader.Mode()`` permission bits for a zip entry."""
    if info.create_system in (3, 19):  # Unix, macOS
        return (info.external_attr >> 16) & 0o7777
    if info.create_system in (0, 11, 14):  # FAT, NTFS, VFAT
        if info.external_attr & 0x10:
            return 0o777
        return 0o444 if info.external_attr & 0x01 else 0o666
    return 0


def _method(info: zipfile.ZipInfo) -> str:
    if info.flag_bits & 0x1:
        return "encrypted"
    return _READABLE.get(info.compress_type) or _METHODS.get(info.compress_type, f"method {info.compress_type}")


def _count_members(fh: IO[bytes], path: str, limit: int) -> None:
    """Count the central directory's records without building them (zipfile builds one object per record,
    from as many records as the directory's size holds, whatever count it declares); refuse past ``limit``."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    tail = min(size, 22 + 0xFFFF)
    fh.seek(size - tail)
    data = fh.read(tail)
    at = data.rfind(b"PK\x05\x06")
    if at < 0 or len(data) - at < 22:
        return  # not a zip: zipfile says so
    (cd_size,) = struct.unpack("<I", data[at + 12:at + 16])
    end = size - tail + at
    if end >= 76:
        fh.seek(end - 76)
        record = fh.read(56)
        if record[:4] == b"PK\x06\x06":  # zip64: where zipfile looks for it, right before its locator
            (cd_size,) = struct.unpack("<Q", record[40:48])
            end -= 76
    fh.seek(max(end - cd_size, 0))
    count, left = 0, min(cd_size, end)
    while left >= 46:
        header = fh.read(46)
        if len(header) < 46 or header[:4] != b"PK\x01\x02":
            return  # malformed: zipfile says so
        count += 1
        if count > limit:
            raise PackagingError(f"{path} holds more than {limit} entries, the most ekdsl reads: "
                                 "is it a zip bomb?", path)
        skip = sum(struct.unpack("<HHH", header[28:34]))
        fh.seek(skip, os.SEEK_CUR)
        left -= 46 + skip


def _walk(root: str, limit: int) -> Iterator[Entry]:
    """A folder's entries, as an exported folder is zipped: each folder before its files, sorted."""
    count = 0
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
        linked = [d for d in dirs if os.path.islink(os.path.join(folder, d))]  # os.walk does not enter them
        dirs[:] = [d for d in dirs if d not in linked]
        items: List[Tuple[str, str, bool]] = [] if rel == "." else [(rel + "/", folder, True)]
        items += [(name if rel == "." else f"{rel}/{name}", os.path.join(folder, name), False)
                  for name in sorted(names + linked)]
        for arc, full, is_dir in items:
            count += 1
            if count > limit:
                raise PackagingError(f"{root} holds more than {limit} files, the most ekdsl reads", root)
            st = os.lstat(full)
            link = stat.S_ISLNK(st.st_mode)
            yield Entry(arc, is_dir, 0o777 if link else stat.S_IMODE(st.st_mode), link, st.st_size, info=full)


def _file_chunks(entry: Entry, cap: int) -> Iterator[bytes]:
    """A folder member's bytes (a link: its target), never through a link, only from a regular file."""
    if entry.link:
        yield os.readlink(entry.info).encode("utf-8", "surrogateescape")[:cap + 1]
        return
    fd = os.open(entry.info, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{entry.info} is not a regular file: a package holds files and folders only")
        yield from iter(lambda: fh.read(CHUNK), b"")


class Package:
    """An open package: ``entries`` in archive order (a folder: walked in sorted order), read in chunks.

    Use as a context manager. Every read counts the bytes it gets and raises :class:`PackagingError` at
    the first one past a limit, so no member is ever held whole unless :meth:`read` asks for it.
    """

    def __init__(self, path: str, limits: Limits = DEFAULT_LIMITS) -> None:
        self.path = path
        self.limits = limits
        self._zip: Optional[zipfile.ZipFile] = None
        self._size = 0
        if os.path.isdir(path):
            self.entries = tuple(_walk(path, limits.entries))
            return
        if not os.path.isfile(path):
            raise PackagingError(f"no such package: {path} (give a plugin .zip or an exported folder)", path)
        try:
            with open(path, "rb") as fh:
                _count_members(fh, path, limits.entries)
            self._zip = zipfile.ZipFile(path)
            self._size = os.path.getsize(path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise PackagingError(f"{path} is not a readable zip file ({exc})", path) from exc
        self.entries = tuple(
            Entry(i.filename, i.is_dir(), _zip_mode(i), i.create_system in (3, 19)
                  and stat.S_ISLNK(i.external_attr >> 16), i.file_size, _method(i), i)
            for i in self._zip.infolist())

    def __enter__(self) -> Package:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def chunks(self, entry: Entry, limit: Optional[int] = None) -> Iterator[bytes]:
        """The bytes of ``entry`` (a link: its target) chunk by chunk, counted as they decompress: at most
        ``limit`` (default: the entry limit), at most what the zip declares, within the ratio limit."""
        if entry.is_dir:
            return
        cap = self.limits.entry_bytes if limit is None else limit
        ratio_base = max(min(entry.info.compress_size, self._size), 1) if self._zip is not None else 0
        count = 0
        for chunk in self._raw(entry, cap):
            count += len(chunk)
            if count > cap:
                what = "a file" if limit is None else "a file it reads whole"
                raise self._error(entry, f"holds more than {cap} bytes, the most ekdsl reads for {what}")
            if self._zip is not None and count > entry.size:
                raise self._error(entry, f"holds more than the {entry.size} bytes it declares (eKuiper's unzip "
                                         "fails: zip: not a valid zip file)")
            if ratio_base and count > self.limits.ratio_floor and count > self.limits.ratio * ratio_base:
                raise self._error(entry, f"decompresses to more than {self.limits.ratio} times its {ratio_base} "
                                         "compressed bytes (store such a file uncompressed)")
            yield chunk
        if self._zip is not None and count != entry.size:
            raise self._error(entry, f"declares {entry.size} bytes but holds {count} (eKuiper's unzip fails: "
                                     "zip: not a valid zip file)")

    def _error(self, entry: Entry, what: str) -> PackagingError:
        return PackagingError(f"{self.path}: entry '{entry.name}' {what}", self.path)

    def _raw(self, entry: Entry, cap: int) -> Iterator[bytes]:
        """The member's bytes as they decompress, in chunks, for its end or ``cap`` to stop."""
        if self._zip is None:
            try:
                yield from _file_chunks(entry, cap)
            except OSError as exc:
                raise self._error(entry, f"is unreadable ({exc})") from None
            return
        if entry.method not in _READABLE.values():
            raise self._error(entry, f"is {entry.method}, which eKuiper's unzip cannot read (zip: unsupported "
                                     "compression algorithm): store or deflate it")
        probe = copy.copy(entry.info)
        probe.file_size = 1 << 62  # zipfile stops at the declared size; read on: chunks() counts the bytes
        try:
            with self._zip.open(probe) as member:
                yield from iter(lambda: member.read(CHUNK), b"")
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise self._error(entry, f"is unreadable ({exc})") from None

    def read(self, entry: Entry, limit: Optional[int] = None) -> bytes:
        """The whole of ``entry``, at most ``limit`` bytes (default: the limit of a file read whole)."""
        return b"".join(self.chunks(entry, self.limits.text_bytes if limit is None else limit))

    def head(self, entry: Entry, size: int) -> bytes:
        """The first ``size`` bytes of ``entry`` (fewer if it is shorter), decompressing no more than that."""
        out = bytearray()
        for chunk in self._raw(entry, size) if not entry.is_dir else ():
            out += chunk[: size - len(out)]
            if len(out) >= size:
                break
        return bytes(out)

    def verify(self) -> List[PackagingError]:
        """Read every member through to its end, as an unzip would: what breaks a limit or cannot be read.

        Stops at the total limit; each other problem names its entry and the reading goes on."""
        problems: List[PackagingError] = []
        total = 0
        for entry in self.entries:
            try:
                for chunk in self.chunks(entry):
                    total += len(chunk)
                    if total > self.limits.total_bytes:
                        problems.append(PackagingError(
                            f"{self.path} holds more than {self.limits.total_bytes} bytes once decompressed, the "
                            "most ekdsl reads: is it a zip bomb?", self.path))
                        return problems
            except PackagingError as exc:
                problems.append(exc)
        return problems


def open_package(path: str, limits: Limits = DEFAULT_LIMITS) -> Package:
    """Open the zip or folder at ``path`` for reading within ``limits``."""
    return Package(path, limits)
