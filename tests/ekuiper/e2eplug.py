"""The plugin the real-server suite installs; every symbol name starts with the plugin's name.

The suite rewrites ``NAME`` to a unique value before exporting, so several runs can share one server.
No property uses a name eKuiper reserves for itself (``interval``, ``format``, ``fields``, ...).
"""

from __future__ import annotations

import json
import os
import threading
from typing import Annotated, Any, Dict, Iterator, Optional

from ekdsl import Context, Param, Plugin, connection

NAME = "e2eplug"
VERSION = "1.0.0"

plugin = Plugin(NAME, version=VERSION)


def _append(path: str, value: Any) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(value) + "\n")


@plugin.source(name=NAME + "src", conf_keys={"tens": {"step": 10}})
def src(ctx: Context, datasource: str = "", period: float = 0.02, count: int = 0, step: int = 1,
        pidfile: str = "") -> Iterator[dict]:
    """Numbered rows: ``i`` counts up by ``step``; ``ds`` is the stream's DATASOURCE."""
    if pidfile:
        with open(pidfile, "w", encoding="utf-8") as fh:
            fh.write(str(os.getpid()))
    n = 0
    while count == 0 or n < count:
        yield {"i": n * step, "ds": datasource, "temp": float(n % 5), "name": f"n{n}", "rule": ctx.rule_id,
               "version": VERSION, "pid": os.getpid()}
        n += 1
        ctx.sleep(period)
    ctx.sleep(3600)


@plugin.sink(name=NAME + "raw")
def raw(data: Any, path: str, fail_on: int = -1) -> None:
    """Append each message as eKuiper framed it (an event, a row or a batch) to ``path``."""
    rows = data if isinstance(data, list) else [data]
    if any(isinstance(r, dict) and r.get("i") == fail_on for r in rows):
        raise RuntimeError(f"cannot take row {fail_on}")
    _append(path, data)


@plugin.sink(name=NAME + "rows")
def rows(data: dict, path: str) -> None:
    """Append each row to ``path``."""
    _append(path, data)


class Folder:
    """A shared client: appends rows to ``<path>/<table>.jsonl``, one writer at a time."""

    def __init__(self, path: str) -> None:
        self.path, self.lock = path, threading.Lock()

    def write(self, table: str, row: Any) -> None:
        with self.lock:
            _append(os.path.join(self.path, f"{table}.jsonl"), row)


@connection
def folder(path: str) -> Iterator[Folder]:
    """Logs its pid to ``<path>/opened.log`` when it opens and to ``closed.log`` when it closes."""
    _append(os.path.join(path, "opened.log"), os.getpid())
    yield Folder(path)
    _append(os.path.join(path, "closed.log"), os.getpid())


@plugin.sink(name=NAME + "keep")
def keep(row: Dict[str, Any], db: Annotated[Folder, folder],
         table: Annotated[str, Param(dynamic=True)] = "rows") -> None:
    """Append each row to the table (a file) its template names, through the shared folder client."""
    db.write(table, row)


@plugin.source(name=NAME + "follow", conf_keys={"pooled": {"connectionSelector": NAME + "db"}})
def follow(ctx: Context, db: Annotated[Folder, folder]) -> Iterator[dict]:
    """Rows naming the folder its client writes to, and the pid of the process that holds it."""
    n = 0
    while True:
        yield {"n": n, "path": db.path, "pid": os.getpid()}
        n += 1
        ctx.sleep(0.1)


@plugin.function(name=NAME + "scale")
def scale(x: float, k: float = 2.0) -> float:
    """``x * k``."""
    return x * k


@plugin.function(name=NAME + "join")
def join(sep: str, *parts: Any) -> str:
    """Join any number of values with ``sep``."""
    return sep.join(str(p) for p in parts)


@plugin.function(name=NAME + "ewma", aggregate=True)
def ewma(values: list[Optional[float]], alpha: float) -> float:
    """Exponentially weighted moving average of a group, oldest first; ``alpha`` is a constant."""
    avg: Optional[float] = None
    for v in values:
        if v is None:
            continue
        avg = v if avg is None else alpha * v + (1 - alpha) * avg
    return 0.0 if avg is None else avg


@plugin.function(name=NAME + "pid")
def pid(x: Any) -> int:
    """The plugin process's pid (to kill it from a test)."""
    return os.getpid()


@plugin.function(name=NAME + "blen")
def blen(b: bytes) -> int:
    """Length in bytes of a value eKuiper passes as bytes (a SQL string arrives as plain text)."""
    return len(b)
