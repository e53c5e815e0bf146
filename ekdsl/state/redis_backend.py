"""The Redis backend, through the ``redis`` client (``pip install 'ekdsl[redis]'``, or ``requirements=["redis"]``
in the plugin): the Redis eKuiper itself uses when its ``store.type`` is ``redis``, under ekdsl's own key prefix.

A write is done when Redis has it; whether it survives a crash of Redis is Redis's persistence setting
(``appendonly``, ``appendfsync``), as for eKuiper's own state. Several keys are written in one ``MULTI``; an
``incr`` is an optimistic transaction (``WATCH``), so concurrent increments from any process never get lost.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ..errors import StoreError
from .store import Changes

__all__ = ["PREFIX", "RedisBackend", "connect", "plugins_at"]

PREFIX = "ekdsl:state:"  # every key ekdsl writes starts with this, then "<plugin>:"
CHUNK = 500
_GLOB = re.compile(r"([*?\[\]\\])")
_HINTS = (
    ("oom", "Redis is out of memory (maxmemory): free memory or raise the limit"),
    ("misconf", "Redis cannot save its data (its disk is full?) and refuses writes: see Redis's log"),
    ("noauth", "Redis wants a password: set store.redis.password in eKuiper's kuiper.yaml, or give it in "
               "EKDSL_STATE (redis://:password@host:port)"),
    ("wrongpass", "Redis refused the password: check store.redis.password in eKuiper's kuiper.yaml"),
    ("readonly", "this Redis is a read-only replica: point at the primary"),
)


def _missing() -> StoreError:
    return StoreError("the state is kept in Redis (eKuiper's store.type is redis, or EKDSL_STATE names a redis:// "
                      "URL), but the Python package 'redis' is not installed for this plugin: add "
                      "requirements=['redis'] to its Plugin(...) (installed with the plugin), or pip install "
                      "'ekdsl[redis]' into the Python eKuiper runs plugins with")


def connect(options: Dict[str, Any]) -> Any:
    """A ``redis.Redis`` client from ``{"url": ...}`` or host/port/password/timeout; :class:`StoreError` without
    the ``redis`` package."""
    try:
        import redis
    except ImportError:
        raise _missing() from None
    timeout = options.get("timeout") or 1.0
    common: Dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "health_check_interval": 30}
    if options.get("url"):
        return redis.Redis.from_url(options["url"], **common)
    return redis.Redis(host=options.get("host") or "localhost", port=int(options.get("port") or 6379),
                       password=options.get("password") or None, **common)


def _keys(client: Any, pattern: str) -> Iterator[bytes]:
    yield from client.scan_iter(match=pattern, count=CHUNK)


def plugins_at(client: Any) -> List[str]:
    """The plugins that have keys in this Redis."""
    head = PREFIX.encode()
    found = {k[len(head):].split(b":", 1)[0].decode("utf-8", "replace") for k in _keys(client, PREFIX + "*")}
    return sorted(found)


class RedisBackend:
    """One plugin's keys in Redis: ``ekdsl:state:<plugin>:<key>``."""

    def __init__(self, client: Any, plugin: str, address: str) -> None:
        import redis

        self._client = client
        self._errors = redis.exceptions.RedisError
        self._watch = redis.exceptions.WatchError
        self.prefix = f"{PREFIX}{plugin}:"
        self.address = address
        self.where = f"Redis {address}, keys {self.prefix}*"

    def _error(self, exc: BaseException, operation: str, key: str = "") -> StoreError:
        text = str(exc) or type(exc).__name__
        hint = next((h for word, h in _HINTS if word in text.lower()), "")
        name = type(exc).__name__.lower()
        if not hint and ("connection" in name or "timeout" in name):
            hint = "Redis is unreachable: the state goes on once it is back"
        return StoreError(f"state store Redis {self.address}: {operation} failed: {text}" +
                          (f"; {hint}" if hint else ""), where=self.address, operation=operation, key=key or None)

    def _run(self, operation: str, key: str, work: Callable[[Any], Any]) -> Any:
        try:
            return work(self._client)
        except self._errors as exc:
            raise self._error(exc, operation, key) from None

    def get(self, key: str) -> Optional[bytes]:
        value = self._run("get", key, lambda r: r.get(self.prefix + key))
        return None if value is None else bytes(value)

    def write(self, changes: Changes) -> None:
        def work(r: Any) -> None:
            pipe = r.pipeline(transaction=len(changes) > 1)
            for key, value in changes:
                if value is None:
                    pipe.delete(self.prefix + key)
                else:
                    pipe.set(self.prefix + key, value)
            pipe.execute()

        self._run("put" if changes[0][1] is not None else "delete", changes[0][0], work)

    def delete(self, key: str) -> bool:
        return bool(self._run("delete", key, lambda r: r.delete(self.prefix + key)))

    def update(self, key: str, change: Callable[[Optional[bytes]], bytes]) -> bytes:
        full = self.prefix + key

        def attempt(pipe: Any) -> bytes:
            current = pipe.get(full)  # WATCHed: a change by anyone else before EXEC makes Redis refuse it
            new = change(None if current is None else bytes(current))
            pipe.multi()
            pipe.set(full, new)
            return new

        result: bytes = self._run("incr", key, lambda r: r.transaction(attempt, full, value_from_callable=True))
        return result

    def _pattern(self, prefix: str) -> str:
        return _GLOB.sub(r"\\\1", self.prefix + prefix) + "*"

    def scan(self, prefix: str) -> List[Tuple[str, bytes]]:
        def work(r: Any) -> List[Tuple[str, bytes]]:
            keys = sorted(set(_keys(r, self._pattern(prefix))))
            out: List[Tuple[str, bytes]] = []
            for i in range(0, len(keys), CHUNK):
                chunk = keys[i:i + CHUNK]
                for k, v in zip(chunk, r.mget(chunk)):
                    if v is not None:  # deleted meanwhile
                        out.append((k.decode("utf-8", "replace")[len(self.prefix):], bytes(v)))
            return out

        result: List[Tuple[str, bytes]] = self._run("items", "", work)
        return result

    def drop(self, prefix: str) -> int:
        def work(r: Any) -> int:
            keys = list(set(_keys(r, self._pattern(prefix))))
            return sum(int(r.delete(*keys[i:i + CHUNK])) for i in range(0, len(keys), CHUNK))

        result: int = self._run("drop", "", work)
        return result

    def plugins(self) -> List[str]:
        """The plugins that have keys in this Redis."""
        found: List[str] = self._run("list", "", plugins_at)
        return found

    def close(self) -> None:
        try:
            self._client.close()
        except self._errors:
            pass
