"""Shared connections in the plugin process: one client per factory and settings, counted by its users.

Every source or sink instance that uses a ``@connection`` takes a :class:`Lease` when it starts, for the settings
its properties give: the first opens the client (once, however many starts wait for it), the others share it, and
the last one's release closes it. A factory that raises or outlasts its ``open_timeout`` fails only the starts
that wait for it; the next start tries again. :meth:`Connections.reopen` replaces a client its users found
broken.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..errors import ConnectionFailed
from ..model import MISSING, ConnectionModel, ConnectionUse, SymbolModel
from ..types import plain
from .failure import describe

__all__ = ["Connections", "InstanceConnections", "Lease", "open_connections"]

OPENING, OPEN, BROKEN, CLOSED = "opening", "open", "broken", "closed"
TEARDOWN_WAIT = 1.0  # seconds a release waits for a factory's teardown before it goes on without it
_SECRET = re.compile(r"pass|secret|token|credential|key", re.IGNORECASE)


def _shown(settings: Mapping[str, Any]) -> str:
    """Settings for a log line or an error, secrets masked."""
    return ", ".join(f"{k}={'***' if _SECRET.search(k) else repr(v)}" for k, v in settings.items()) or "no settings"


class _Entry:
    """One client of one factory with one set of settings."""

    __slots__ = ("client", "error", "gen", "key", "model", "ready", "retired", "settings", "state", "users")

    def __init__(self, key: Tuple[Any, str], model: ConnectionModel, settings: Dict[str, Any]) -> None:
        self.key, self.model, self.settings = key, model, settings
        self.state = BROKEN  # no client yet: the first use opens it
        self.client: Any = None
        self.gen: Any = None  # a generator factory, suspended at its yield: resumed to close the client
        self.retired: Any = None  # the client before the last reopen, for users still holding it
        self.error = ""
        self.users = 0
        self.ready = threading.Event()

    @property
    def title(self) -> str:
        return f"connection '{self.model.name}' ({_shown(self.settings)})"


def _run_factory(entry: _Entry) -> Tuple[Any, Any]:
    result = entry.model.func(**entry.settings)
    if not entry.model.is_generator:
        return result, None
    try:
        return next(result), result
    except StopIteration:
        raise RuntimeError("the factory returned without yielding a client") from None


def _close(entry: _Entry, client: Any, gen: Any, log: logging.Logger, wait: float) -> None:
    """Resume a generator factory after its yield (its teardown runs); wait up to ``wait`` seconds for it."""
    if gen is None:
        return

    def work() -> None:
        try:
            next(gen)
        except StopIteration:
            log.info("%s closed", entry.title)
            return
        except BaseException as exc:
            log.error("%s: closing it raised %s", entry.title, describe(exc), exc_info=exc)
            return
        log.error("%s yielded a second value; a factory yields its client once", entry.title)
        gen.close()

    worker = threading.Thread(target=work, name=f"close:{entry.model.name}", daemon=True)
    worker.start()
    worker.join(wait)
    if worker.is_alive():
        log.warning("%s is still closing after %.1fs; going on without waiting", entry.title, wait)


class Connections:
    """The clients of one plugin process (or one :class:`~ekdsl.host.InProcess`)."""

    def __init__(self, log: Optional[logging.Logger] = None) -> None:
        self.log = log or logging.getLogger("ekdsl.connections")
        self._lock = threading.Lock()
        self._entries: Dict[Tuple[Any, str], _Entry] = {}
        self.opened = 0  # clients opened so far (by factories that succeeded)

    def acquire(self, use: ConnectionUse, settings: Mapping[str, Any], timeout: Optional[float] = None) -> Lease:
        """A lease on the client for ``settings``, opened if needed; waits up to ``timeout`` seconds (default:
        the factory's ``open_timeout``) and raises :class:`~ekdsl.errors.ConnectionFailed` if it is not open."""
        model = use.connection
        key = (model.func, json.dumps(plain(dict(settings)), sort_keys=True, default=str))
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(key, model, dict(settings))
            entry.users += 1
        try:
            self._ensure(entry, model.open_timeout if timeout is None else timeout)
        except BaseException:
            self._drop_user(entry)
            raise
        return Lease(self, entry)

    def _ensure(self, entry: _Entry, timeout: Optional[float]) -> None:
        """Make ``entry`` open: open it (on a helper thread when bounded by ``timeout``), or wait for the opening
        another caller started."""
        with self._lock:
            if entry.state == OPEN:
                return
            if entry.state == CLOSED:
                raise ConnectionFailed(entry.model.name, _shown(entry.settings), "it was closed: its last user stopped")
            opener = entry.state != OPENING
            if opener:
                entry.state, entry.ready = OPENING, threading.Event()
            ready = entry.ready
        if opener and timeout is None:
            self._open(entry, ready)
        elif opener:
            threading.Thread(target=self._open, args=(entry, ready), daemon=True,
                             name=f"open:{entry.model.name}").start()
        if not ready.wait(timeout):
            raise ConnectionFailed(entry.model.name, _shown(entry.settings),
                                   f"still opening after {timeout:g} s (open_timeout): it goes on opening, and a "
                                   "start after it is done uses it; raise open_timeout if it is slow by nature")
        if entry.state != OPEN:
            raise ConnectionFailed(entry.model.name, _shown(entry.settings), entry.error)

    def _open(self, entry: _Entry, ready: threading.Event) -> None:
        try:
            client, gen = _run_factory(entry)
        except BaseException as exc:  # user code: whatever it raises fails the starts waiting, not the process
            error = describe(exc)
            self.log.error("%s could not be opened: %s", entry.title, error, exc_info=exc)
            with self._lock:
                entry.state, entry.error = BROKEN, error
                ready.set()
            return
        with self._lock:
            unused = entry.users == 0
            if unused:  # everyone waiting gave up meanwhile
                entry.state = CLOSED
                if self._entries.get(entry.key) is entry:
                    del self._entries[entry.key]
            else:
                entry.state, entry.client, entry.gen, entry.error = OPEN, client, gen, ""
                self.opened += 1
            ready.set()
        if unused:
            self.log.warning("%s opened after every start that asked for it gave up; closing it", entry.title)
            _close(entry, client, gen, self.log, TEARDOWN_WAIT)
        else:
            self.log.info("%s opened", entry.title)

    def _drop_user(self, entry: _Entry, wait: float = TEARDOWN_WAIT) -> None:
        """One user fewer; the last one closes the client (an opening in progress closes it when done)."""
        with self._lock:
            entry.users -= 1
            if entry.users > 0 or entry.state == OPENING:  # an opening closes it when done, unless a start joins
                return
            if self._entries.get(entry.key) is entry:
                del self._entries[entry.key]
            if entry.state != OPEN:
                if entry.state == BROKEN:
                    entry.state = CLOSED
                return
            client, gen = entry.client, entry.gen
            entry.state, entry.client, entry.gen, entry.retired = CLOSED, None, None, None
        _close(entry, client, gen, self.log, wait)

    def reopen(self, client: Any) -> Any:
        """Close ``client``, which its user found broken, and open a new one for everyone who shares it (once,
        however many ask); return the new one. Raises :class:`~ekdsl.errors.ConnectionFailed` when opening fails:
        the next use tries again."""
        with self._lock:
            entry = next((e for e in self._entries.values() if e.client is client or e.retired is client), None)
            if entry is None:
                raise ValueError(f"{type(client).__name__} object is not the client of an open shared connection: "
                                 "pass what the connection parameter received")
            old = entry.client is client and entry.state == OPEN
            gen = entry.gen
            if old:
                entry.state, entry.client, entry.gen, entry.retired = BROKEN, None, None, client
        if old:
            self.log.warning("%s was found broken; reopening it", entry.title)
            _close(entry, client, gen, self.log, TEARDOWN_WAIT)
        self._ensure(entry, None)
        return entry.client

    def current(self, entry: _Entry) -> Any:
        """The entry's client, opened again first if it was found broken."""
        if entry.state != OPEN:
            self._ensure(entry, None)
        return entry.client

    def open_connections(self) -> List[Tuple[str, Dict[str, Any], int]]:
        """``(name, settings, users)`` of every open client."""
        with self._lock:
            return [(e.model.name, dict(e.settings), e.users) for e in self._entries.values() if e.state == OPEN]

    def close_all(self, wait: float = TEARDOWN_WAIT) -> None:
        """Close every client, whoever still uses it (the process or the harness ends)."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            closing = [(e, e.client, e.gen) for e in entries if e.state == OPEN]
            for e in entries:
                e.state, e.client, e.gen, e.retired = CLOSED, None, None, None
        for entry, client, gen in closing:
            _close(entry, client, gen, self.log, wait)


class Lease:
    """One user's hold on a shared client; :meth:`release` once, when that user stops."""

    __slots__ = ("_entry", "_registry", "released")

    def __init__(self, registry: Connections, entry: _Entry) -> None:
        self._registry, self._entry, self.released = registry, entry, False

    @property
    def client(self) -> Any:
        """The client, opened again first if a user found it broken."""
        if self.released:
            raise RuntimeError("this lease on a shared connection was released: its instance stopped")
        entry = self._entry
        client = entry.client
        return client if entry.state == OPEN and client is not None else self._registry.current(entry)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._registry._drop_user(self._entry)


class InstanceConnections:
    """The leases of one source or sink instance, by the parameter that receives each client."""

    def __init__(self, registry: Connections, leases: Dict[str, Lease]) -> None:
        self.registry, self.leases = registry, leases

    def clients(self) -> Dict[str, Any]:
        return {param: lease.client for param, lease in self.leases.items()}

    def reopen(self, client: Any) -> Any:
        return self.registry.reopen(client)

    def release(self) -> None:
        for lease in self.leases.values():
            lease.release()

    def release_when_done(self, done: threading.Event) -> None:
        """Release once ``done`` is set (the instance's code has returned): at once, or from a waiting thread."""
        if done.is_set():
            self.release()
            return
        def waiter() -> None:
            done.wait()
            self.release()

        threading.Thread(target=waiter, daemon=True, name="release").start()


def open_connections(sym: SymbolModel, kwargs: Dict[str, Any], registry: Connections,
                     timeout: Optional[float] = None) -> Optional[InstanceConnections]:
    """Take the connections' settings out of ``kwargs`` (bound from the config), lease their clients and put
    those in ``kwargs`` instead; ``None`` for a symbol without connections. Raises
    :class:`~ekdsl.errors.ConnectionFailed` (having released what it took)."""
    if not sym.connections:
        return None
    leases: Dict[str, Lease] = {}
    try:
        for use in sym.connections:
            settings = {p.pyname: kwargs.pop(p.pyname, None if p.default is MISSING else p.default)
                        for p in use.connection.params}
            leases[use.param] = registry.acquire(use, settings, timeout)
            kwargs[use.param] = leases[use.param].client
    except BaseException:
        for lease in leases.values():
            lease.release()
        raise
    return InstanceConnections(registry, leases)
