"""Where a plugin's state lives, found as eKuiper finds its own (``internal/conf/path.go``, ``conf.go``).

1. ``EKDSL_STATE``, when set: a folder (SQLite files in it) or a ``redis://``, ``rediss://`` or ``unix://`` URL.
2. eKuiper's ``store`` settings: ``etc/kuiper.yaml``'s ``store:`` section with the ``KUIPER__STORE__...``
   environment variables over it (eKuiper's own override, which the plugin inherits). With ``type: redis`` the
   state goes to that Redis (``store.redis.host``, ``port``, ``password``, ``timeout``).
3. Otherwise SQLite, in ``<eKuiper's data folder>/ekdsl/state/<plugin>.db``: a file of ekdsl's own, never
   eKuiper's database, outside the plugin's folder (which eKuiper deletes on every update).

eKuiper's folders: a plugin runs in ``<plugins>/portable/<name>``, and ``data`` and ``etc`` are beside
``<plugins>`` in the relative layout (a release folder; ``KuiperBaseKey`` moves it). In the absolute layout (the
Debian package) they are ``/var/lib/kuiper/data`` (beside ``/var/lib/kuiper/plugins`` too) and ``/etc/kuiper``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence
from urllib.parse import urlsplit

from ..errors import StoreError
from .store import Backend

__all__ = ["ABSOLUTE_DATA", "ABSOLUTE_ETC", "STATE_ENV", "SYNC_ENV", "Location", "ekuiper_folder", "find_location",
           "parse_location", "sqlite_folder"]

STATE_ENV = "EKDSL_STATE"
SYNC_ENV = "EKDSL_STATE_SYNC"
BASE_ENV = "KuiperBaseKey"
ABSOLUTE_DATA = "/var/lib/kuiper/data"
ABSOLUTE_ETC = "/etc/kuiper"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
LOG = logging.getLogger("ekdsl.state")


class Location(NamedTuple):
    """A place for stores: ``kind`` ``sqlite`` (one file per plugin in ``folder``) or ``redis`` (``redis``: a
    ``url``, or ``host``, ``port``, ``password``, ``timeout``); ``origin`` says how it was chosen."""

    kind: str
    folder: str = ""
    redis: Mapping[str, Any] = {}
    origin: str = ""
    sync: str = "NORMAL"

    @property
    def address(self) -> str:
        """The folder, or the Redis address without its password."""
        if self.kind == "sqlite":
            return self.folder
        url = self.redis.get("url")
        if url:
            parts = urlsplit(url)
            host = parts.hostname or ""
            return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"
        return f"{self.redis.get('host') or 'localhost'}:{self.redis.get('port') or 6379}"

    def open(self, plugin: str) -> Backend:
        if self.kind == "sqlite":
            from .sqlite_backend import SUFFIX, SqliteBackend

            return SqliteBackend(os.path.join(self.folder, plugin + SUFFIX), self.sync)
        from .redis_backend import RedisBackend, connect

        return RedisBackend(connect(dict(self.redis)), plugin, self.address)

    def plugins(self) -> List[str]:
        """The plugins that have state here."""
        if self.kind == "sqlite":
            from .sqlite_backend import plugins_in

            return plugins_in(self.folder)
        from .redis_backend import RedisBackend, connect

        backend = RedisBackend(connect(dict(self.redis)), "", self.address)
        try:
            return backend.plugins()
        finally:
            backend.close()

    def describe(self) -> str:
        what = f"SQLite files in {self.folder}" if self.kind == "sqlite" else f"Redis {self.address}"
        return f"{what} ({self.origin})" if self.origin else what


def sqlite_folder(data: str) -> str:
    """Where ekdsl keeps its SQLite state inside eKuiper's data folder."""
    return os.path.join(data, "ekdsl", "state")


def parse_location(text: str, origin: str = "", sync: str = "NORMAL") -> Location:
    """A folder, or a Redis URL (``redis://[:password@]host:port/db``, ``rediss://...``, ``unix:///path``)."""
    if text.startswith(REDIS_SCHEMES):
        return Location("redis", redis={"url": text}, origin=origin, sync=sync)
    return Location("sqlite", folder=os.path.abspath(os.path.expanduser(text)), origin=origin, sync=sync)


def _plugin_base(folder: str) -> Optional[str]:
    """``<base>`` when ``folder`` is ``<base>/<plugins>/portable/<name>``, where eKuiper runs a plugin."""
    parent = os.path.dirname(os.path.abspath(folder))
    if os.path.basename(parent) != "portable":
        return None
    return os.path.dirname(os.path.dirname(parent))


def _walk_up(start: str, sub: str) -> Optional[str]:
    """eKuiper's relative layout: ``<start>/<sub>``, else the first ``<parent>/<sub>`` going up."""
    folder = os.path.abspath(start)
    while True:
        if os.path.isdir(os.path.join(folder, sub)):
            return os.path.join(folder, sub)
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def ekuiper_folder(sub: str, env: Mapping[str, str], starts: Sequence[str], walk: bool = False) -> Optional[str]:
    """eKuiper's ``data`` or ``etc`` folder: beside the plugins folder of a plugin in ``starts``, else under
    ``KuiperBaseKey`` (going up), else (``walk``) going up from ``starts``, else the absolute layout's."""
    for start in starts:
        base = _plugin_base(start)
        if base is not None and os.path.isdir(os.path.join(base, sub)):
            return os.path.join(base, sub)
    found = _walk_up(env[BASE_ENV], sub) if env.get(BASE_ENV) else None
    for start in starts if walk else ():
        found = found or _walk_up(start, sub)
    absolute = ABSOLUTE_DATA if sub == "data" else ABSOLUTE_ETC
    return found or (absolute if os.path.isdir(absolute) else None)


def _store_settings(etc: Optional[str], env: Mapping[str, str]) -> Dict[str, Any]:
    """eKuiper's ``store`` section: ``kuiper.yaml``'s, with ``KUIPER__...`` variables over it."""
    from ..goconf import overlay_env

    conf: Dict[str, Any] = {}
    path = os.path.join(etc, "kuiper.yaml") if etc else ""
    if path and os.path.isfile(path):
        try:
            import yaml

            with open(path, encoding="utf-8") as fh:
                loaded = yaml.safe_load(fh)
            conf = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError, yaml.YAMLError) as exc:
            LOG.warning("cannot read eKuiper's settings %s (%s); the state goes where store.type sqlite would "
                        "put it", path, exc)
    store = overlay_env(conf, env).get("store")
    return store if isinstance(store, dict) else {}


def _redis_options(store: Mapping[str, Any], origin: str) -> Dict[str, Any]:
    from ..goconf import go_duration

    found = store.get("redis")
    redis: Mapping[str, Any] = found if isinstance(found, dict) else {}
    try:
        timeout = go_duration(redis["timeout"]) if redis.get("timeout") not in (None, "") else 5.0
    except ValueError as exc:
        raise StoreError(f"store.redis.timeout in {origin}: {exc}") from None
    password = redis.get("password")
    return {"host": str(redis.get("host") or "localhost"), "port": int(redis.get("port") or 6379),
            "password": None if password in (None, "") else str(password), "timeout": timeout or 5.0}


def find_location(env: Optional[Mapping[str, str]] = None, starts: Optional[Sequence[str]] = None,
                  walk: bool = False) -> Location:
    """Where this process's plugins keep their state (the steps in the module's docstring). ``starts``: where the
    plugin runs (default: the working folder and the main script's); ``walk``: also look up from them, as eKuiper
    does from its own folder (for the ``state`` command)."""
    env = os.environ if env is None else env
    sync = (env.get(SYNC_ENV) or "normal").upper()
    if sync not in ("NORMAL", "FULL"):
        raise StoreError(f"{SYNC_ENV}={env.get(SYNC_ENV)!r}: use normal (the default) or full")
    if env.get(STATE_ENV):
        return parse_location(env[STATE_ENV], f"{STATE_ENV}", sync)
    if starts is None:
        starts = [os.getcwd(), os.path.dirname(os.path.abspath(sys.argv[0] or "."))]
    etc = ekuiper_folder("etc", env, starts, walk)
    store = _store_settings(etc, env)
    if str(store.get("type", "")).lower() == "redis":
        origin = f"eKuiper's store.type redis, {os.path.join(etc, 'kuiper.yaml') if etc else 'KUIPER__STORE__'}"
        return Location("redis", redis=_redis_options(store, origin), origin=origin, sync=sync)
    data = ekuiper_folder("data", env, starts, walk)
    if data is None:
        raise StoreError(f"ctx.state cannot find eKuiper's data folder (beside the plugins folder of "
                         f"{starts[0] if starts else '.'}, under ${BASE_ENV}, or {ABSOLUTE_DATA}): set {STATE_ENV} "
                         "to a folder or a redis:// URL")
    return Location("sqlite", folder=sqlite_folder(data), origin=f"eKuiper's data folder {data}", sync=sync)
