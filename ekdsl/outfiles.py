"""Writing export's outputs into a folder others may write to (``dist/``, a shared build folder).

A file is written under a fresh random name, created exclusively (``O_EXCL | O_NOFOLLOW``) in its folder,
which is opened without following links, then renamed over its final name: a symbolic link planted at
that name is replaced by the rename, never written through, and a reader never sees half a file. A
folder is built in a private temporary folder (``mkdtemp``) and renamed into place the same way.
Where replacing would be wrong (a folder where a file goes, a folder that is not an earlier export, a
linked parent folder), :class:`~ekdsl.errors.PackagingError` says so and nothing is written.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import tempfile
from typing import Callable, Dict, Iterator, Optional, Tuple

from .errors import PackagingError

__all__ = ["check_parents", "read_file", "remove_file", "replace_tree", "write_file"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_DIR_MODE = 0o755


def _lstat(path: str, dir_fd: Optional[int] = None) -> Optional[os.stat_result]:
    try:
        return os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def _folder(folder: str, parts: Tuple[str, ...], make: bool = True) -> Iterator[Optional[int]]:
    """A descriptor of ``folder/parts...``, made where missing (``make``; else ``None`` when one is missing);
    no part may be a symbolic link."""
    if make:
        os.makedirs(folder, exist_ok=True)
    elif not os.path.isdir(folder):
        yield None
        return
    fd = os.open(folder, _DIR_FLAGS & ~_NOFOLLOW)  # the output folder itself is the caller's choice
    try:
        shown = folder
        for part in parts:
            shown = os.path.join(shown, part)
            if make:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, _DIR_MODE, dir_fd=fd)
            elif _lstat(part, fd) is None:
                yield None
                return
            try:
                sub = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                st = _lstat(part, fd)
                what = "a symbolic link" if st is not None and stat.S_ISLNK(st.st_mode) else "not a folder"
                raise PackagingError(f"refusing to {'write into' if make else 'use'} {shown}: it is {what}; "
                                     "remove it or choose another output folder", shown) from None
            os.close(fd)
            fd = sub
        yield fd
    finally:
        os.close(fd)


def write_file(folder: str, path: str, data: bytes, mode: Optional[int] = None) -> str:
    """Write ``data`` to ``folder/path`` (``path`` with ``/``) atomically; return the full path.

    ``mode``: the file's permission bits (default: ``0o666`` less the umask, as :func:`open` gives).
    """
    *parents, name = path.split("/")
    full = os.path.join(folder, *path.split("/"))
    with _folder(folder, tuple(parents)) as dir_fd:
        assert dir_fd is not None
        st = _lstat(name, dir_fd)
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise PackagingError(f"refusing to replace the folder {full} with a file: remove it or choose another "
                                 "output folder with -o", full)
        tmp, fd = _create(dir_fd, name)
        try:
            with os.fdopen(fd, "wb") as fh:
                if mode is not None:
                    os.fchmod(fd, mode)
                fh.write(data)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
    return full


def read_file(folder: str, path: str, limit: int) -> Optional[bytes]:
    """The bytes of ``folder/path`` (``path`` with ``/``), ``None`` when it is missing.

    Neither the file nor a folder on its way may be a symbolic link, and a file over ``limit`` bytes is
    refused: the file may be a stranger's.
    """
    *parents, name = path.split("/")
    full = os.path.join(folder, *path.split("/"))
    with _folder(folder, tuple(parents), make=False) as dir_fd:
        if dir_fd is None or _lstat(name, dir_fd) is None:
            return None
        try:
            fd = os.open(name, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0),
                         dir_fd=dir_fd)
        except OSError as exc:
            st = _lstat(name, dir_fd)
            what = "a symbolic link" if st is not None and stat.S_ISLNK(st.st_mode) else exc.strerror
            raise PackagingError(f"refusing to read {full}: it is {what}; remove it or replace it with a file",
                                 full) from None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PackagingError(f"refusing to read {full}: it is not a regular file", full)
            data = fh.read(limit + 1)
    if len(data) > limit:
        raise PackagingError(f"refusing to read {full}: it is over {limit} bytes", full)
    return data


def check_parents(folder: str, path: str) -> None:
    """Refuse ``folder/path`` when a folder on its way that exists is a symbolic link or not a folder."""
    with _folder(folder, tuple(path.split("/")[:-1]), make=False):
        pass


def remove_file(folder: str, path: str) -> bool:
    """Remove the file (or link: never its target) at ``folder/path`` if there; ``True`` when one was removed.

    A folder on the way may not be a symbolic link; a folder at ``path`` is refused.
    """
    *parents, name = path.split("/")
    full = os.path.join(folder, *path.split("/"))
    with _folder(folder, tuple(parents), make=False) as dir_fd:
        st = None if dir_fd is None else _lstat(name, dir_fd)
        if st is None:
            return False
        if stat.S_ISDIR(st.st_mode):
            raise PackagingError(f"refusing to remove {full}: it is a folder, where a file belongs", full)
        os.unlink(name, dir_fd=dir_fd)
        return True


def _create(dir_fd: int, name: str) -> Tuple[str, int]:
    """A new file beside ``name``, created exclusively under a random name: that name and its descriptor."""
    while True:
        tmp = f".{name}.{secrets.token_hex(8)}.tmp"
        try:
            return tmp, os.open(tmp, _FILE_FLAGS, 0o666, dir_fd=dir_fd)
        except FileExistsError:
            continue


def replace_tree(folder: str, name: str, files: Dict[str, Tuple[bytes, int]],
                 refuse: Callable[[str], Optional[str]] = lambda path: None,
                 then: Optional[Callable[[str], None]] = None) -> str:
    """Build ``folder/name`` holding ``files`` (path → (bytes, mode)) and rename it into place.

    An existing folder there is replaced unless ``refuse(path)`` gives a reason; a symbolic link there is
    replaced; a file there is refused. ``then(path)`` runs once the new folder is in place: when it raises,
    the new folder is removed and the one it replaced put back. Return the folder's path.
    """
    final = os.path.join(folder, name)
    os.makedirs(folder, exist_ok=True)
    st = _lstat(final)
    if st is not None and stat.S_ISDIR(st.st_mode):
        reason = refuse(final)
        if reason:
            raise PackagingError(reason, final)
    elif st is not None and not stat.S_ISLNK(st.st_mode):
        raise PackagingError(f"refusing to replace {final}: it is a file, not a folder from an earlier export; "
                             "remove it or choose another output folder with -o", final)
    tmp = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        for path, (data, mode) in files.items():
            target = os.path.join(tmp, *path.split("/"))
            os.makedirs(os.path.dirname(target), _DIR_MODE, exist_ok=True)
            with open(target, "xb") as fh:
                os.fchmod(fh.fileno(), mode)
                fh.write(data)
        os.chmod(tmp, _DIR_MODE)
        _swap(tmp, final, then)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _swap(tmp: str, final: str, then: Optional[Callable[[str], None]]) -> None:
    """Rename the folder ``tmp`` to ``final``, replacing a folder or symbolic link there; then ``then(final)``,
    putting the replaced folder back if it raises."""
    st = _lstat(final)
    old = ""
    if st is not None and stat.S_ISLNK(st.st_mode):
        os.unlink(final)
    elif st is not None:
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.", suffix=".old", dir=os.path.dirname(final))
        os.rename(final, os.path.join(old, "old"))
    try:
        try:
            os.rename(tmp, final)
        except OSError as exc:
            if old:
                os.rename(os.path.join(old, "old"), final)
            raise PackagingError(f"cannot put the export at {final}: {exc.strerror} (something else was written "
                                 "there meanwhile); export again", final) from None
        if then is not None:
            try:
                then(final)
            except BaseException:
                shutil.rmtree(final, ignore_errors=True)
                if old:
                    os.rename(os.path.join(old, "old"), final)
                raise
    finally:
        if old:
            shutil.rmtree(old, ignore_errors=True)
