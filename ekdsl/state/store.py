"""A plugin's store: keys and bytes in a backend (SQLite or Redis), opened on first use, shared by the process.

The backend interface is small: :meth:`Backend.get`, ``write`` (several keys at once, atomically; ``None``
deletes), ``delete``, ``update`` (an atomic read-modify-write), ``scan`` (a prefix, in key order) and ``drop``
(a prefix). Backends turn their library's failures into :class:`~ekdsl.errors.StoreError`; a store that could not
be opened is tried again on the next call, so a store that comes back is used again.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

from ..errors import StoreError

if TYPE_CHECKING:
    from .locate import Location

__all__ = ["Backend", "Store", "Stores", "close_default_stores", "default_stores"]

Changes = Sequence[Tuple[str, Optional[bytes]]]
LOG = logging.getLogger("ekdsl.state")


class Backend(Protocol):
    where: str  # the file, or the Redis address and key prefix, for messages

    def get(self, key: str) -> Optional[bytes]: ...

    def write(self, changes: Changes) -> None: ...

    def delete(self, key: str) -> bool: ...

    def update(self, key: str, change: Callable[[Optional[bytes]], bytes]) -> bytes: ...

    def scan(self, prefix: str) -> List[Tuple[str, bytes]]: ...

    def drop(self, prefix: str) -> int: ...

    def close(self) -> None: ...


class Store:
    """One plugin's keys and bytes. Thread-safe; the backend is opened on the first call."""

    def __init__(self, plugin: str, location: Callable[[], Location]) -> None:
        self.plugin = plugin
        self._location = location
        self._backend: Optional[Backend] = None
        self._lock = threading.Lock()

    @property
    def backend(self) -> Backend:
        backend = self._backend
        if backend is None:
            with self._lock:
                if self._backend is None:
                    backend = self._location().open(self.plugin)
                    LOG.info("state of plugin %s: %s", self.plugin, backend.where)
                    self._backend = backend
                backend = self._backend
        return backend

    def get(self, key: str) -> Optional[bytes]:
        return self.backend.get(key)

    def write(self, changes: Changes) -> None:
        if changes:
            self.backend.write(changes)

    def delete(self, key: str) -> bool:
        return self.backend.delete(key)

    def update(self, key: str, change: Callable[[Optional[bytes]], bytes]) -> bytes:
        return self.backend.update(key, change)

    def scan(self, prefix: str) -> List[Tuple[str, bytes]]:
        return self.backend.scan(prefix)

    def drop(self, prefix: str) -> int:
        return self.backend.drop(prefix)

    def close(self) -> None:
        with self._lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()


class Stores:
    """The stores of one place (a :class:`~ekdsl.state.locate.Location`, found on first use), one per plugin."""

    def __init__(self, location: Optional[Location] = None,
                 find: Optional[Callable[[], Location]] = None) -> None:
        if location is None and find is None:
            raise ValueError("Stores needs a location or a way to find one")
        self._location = location
        self._find = find
        self._stores: Dict[str, Store] = {}
        self._lock = threading.Lock()

    @property
    def location(self) -> Location:
        """Where the stores live; found on first use (:class:`~ekdsl.errors.StoreError` when it cannot be)."""
        if self._location is None:
            assert self._find is not None
            with self._lock:
                if self._location is None:
                    self._location = self._find()
        return self._location

    def store(self, plugin: str) -> Store:
        if not plugin:
            raise StoreError("ctx.state needs the plugin's name: this Context has none (use the Context the "
                             "runtime passes, or InProcess)")
        store = self._stores.get(plugin)
        if store is None:
            with self._lock:
                store = self._stores.setdefault(plugin, Store(plugin, lambda: self.location))
        return store

    def close(self) -> None:
        with self._lock:
            stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            store.close()


_DEFAULT: Optional[Stores] = None
_DEFAULT_LOCK = threading.Lock()


def default_stores() -> Stores:
    """The process's stores: where ``EKDSL_STATE`` says, else where eKuiper keeps its own state (see
    :func:`~ekdsl.state.locate.find_location`)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            from .locate import find_location

            _DEFAULT = Stores(find=find_location)
        return _DEFAULT


def close_default_stores() -> None:
    """Close the process's stores, if any was opened (at exit: SQLite checkpoints its journal)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        stores, _DEFAULT = _DEFAULT, None
    if stores is not None:
        stores.close()
