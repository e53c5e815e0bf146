"""The SQLite backend (the standard library's ``sqlite3``): one file per plugin, WAL journal, write-through.

Every write is its own transaction, committed before the call returns (``synchronous=NORMAL``): a crash of the
plugin or of eKuiper loses nothing written; a power loss or an OS crash may roll back the commits since the last
WAL checkpoint, never leaving the file inconsistent. ``EKDSL_STATE_SYNC=full`` syncs every commit to disk as
well, at about 10 times the cost (see docs/benchmarks.md). Several processes may use one file at once (a plugin
restarted while its old process still runs): SQLite's locks serialize them, waiting up to :data:`BUSY_TIMEOUT`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any, Callable, List, Optional, Tuple

from ..errors import StoreError
from .store import Changes

__all__ = ["BUSY_TIMEOUT", "SCHEMA_VERSION", "SqliteBackend", "plugins_in"]

BUSY_TIMEOUT = 5.0  # seconds a call waits for another process's write lock
SCHEMA_VERSION = 1
SUFFIX = ".db"
_HINTS = (
    ("readonly", "the file or its folder is read-only for this process: make it writable, or set EKDSL_STATE "
                 "to a writable folder"),
    ("disk is full", "the disk is full: free space (the state goes on once there is room)"),
    ("disk i/o error", "the disk refused the write (full, or a size limit): free space or raise the limit"),
    ("locked", f"another process held the store's lock for more than {BUSY_TIMEOUT:g} s"),
    ("unable to open", "the file cannot be created or opened: check that its folder is writable, or set "
                       "EKDSL_STATE"),
    ("not a database", "the file is not a SQLite database: move it away, and the state starts empty"),
    ("malformed", "the file is damaged: move it away, and the state starts empty"),
)


def _upper(prefix: str) -> Optional[str]:
    """The least key above every key starting with ``prefix`` (``None``: no bound)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else None


def plugins_in(folder: str) -> List[str]:
    """The plugins that have a store file in ``folder``."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX))


class SqliteBackend:
    """One plugin's store file. Thread-safe: calls are serialized on one connection."""

    def __init__(self, path: str, sync: str = "NORMAL") -> None:
        self.path = path
        self.where = f"SQLite {path}"
        self._lock = threading.Lock()
        try:
            os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
            if not os.path.exists(path):  # owner-only: state may hold tokens or positions of private data
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc, "open") from None
        try:
            self._setup(sync)
        except (sqlite3.Error, StoreError) as exc:
            self._db.close()
            raise exc if isinstance(exc, StoreError) else self._error(exc, "open") from None

    def _setup(self, sync: str) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"state store {self.path}: a newer ekdsl wrote it (schema {version}, this ekdsl reads "
                             f"{SCHEMA_VERSION}): upgrade the plugin's ekdsl", where=self.path, operation="open")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if sync.upper() == 'FULL' else 'NORMAL'}")
        if version < SCHEMA_VERSION:
            db.execute("BEGIN IMMEDIATE")
            db.execute("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")

    def _error(self, exc: BaseException, operation: str, key: str = "") -> StoreError:
        text = str(exc)
        hint = next((h for word, h in _HINTS if word in text.lower()), "")
        return StoreError(f"state store {self.path}: {operation} failed: {text}" + (f"; {hint}" if hint else ""),
                          where=self.path, operation=operation, key=key or None)

    def _run(self, operation: str, key: str, work: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock:
            try:
                return work(self._db)
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise self._error(exc, operation, key) from None

    def get(self, key: str) -> Optional[bytes]:
        row = self._run("get", key, lambda db: db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone())
        return None if row is None else bytes(row[0])

    def write(self, changes: Changes) -> None:
        def work(db: sqlite3.Connection) -> None:
            if len(changes) > 1:
                db.execute("BEGIN IMMEDIATE")
            for key, value in changes:
                if value is None:
                    db.execute("DELETE FROM state WHERE key = ?", (key,))
                else:
                    db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))
            if len(changes) > 1:
                db.execute("COMMIT")

        self._run("put" if changes[0][1] is not None else "delete", changes[0][0], work)

    def delete(self, key: str) -> bool:
        count = self._run("delete", key, lambda db: db.execute("DELETE FROM state WHERE key = ?", (key,)).rowcount)
        return bool(count)

    def update(self, key: str, change: Callable[[Optional[bytes]], bytes]) -> bytes:
        def work(db: sqlite3.Connection) -> bytes:
            db.execute("BEGIN IMMEDIATE")  # the write lock first: no other process changes the key meanwhile
            row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
            try:
                new = change(None if row is None else bytes(row[0]))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, new))
            db.execute("COMMIT")
            return new

        result: bytes = self._run("incr", key, work)
        return result

    def scan(self, prefix: str) -> List[Tuple[str, bytes]]:
        upper = _upper(prefix)

        def work(db: sqlite3.Connection) -> List[Tuple[str, bytes]]:
            if upper is None:
                rows = db.execute("SELECT key, value FROM state ORDER BY key")
            else:
                rows = db.execute("SELECT key, value FROM state WHERE key >= ? AND key < ? ORDER BY key",
                                  (prefix, upper))
            return [(k, bytes(v)) for k, v in rows]

        result: List[Tuple[str, bytes]] = self._run("items", "", work)
        return result

    def drop(self, prefix: str) -> int:
        upper = _upper(prefix)

        def work(db: sqlite3.Connection) -> int:
            if upper is None:
                return int(db.execute("DELETE FROM state").rowcount)
            return int(db.execute("DELETE FROM state WHERE key >= ? AND key < ?", (prefix, upper)).rowcount)

        result: int = self._run("drop", "", work)
        return result

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
