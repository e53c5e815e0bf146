"""A plugin with a shared connection and dynamic properties, for the runtime and emulator tests.

The connection writes a line to ``<path>/opened.log`` when it opens and to ``<path>/closed.log`` when it closes,
so a test counts clients from outside the plugin process.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Annotated, Any, Dict, Iterator, List

from ekdsl import Context, Param, Plugin, Template

plugin = Plugin("shared")


class Folder:
    """A client that appends JSON lines to ``<path>/<table>.jsonl``; thread-safe, as a shared client must be."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.broken = False

    def write(self, table: str, value: Any) -> None:
        if self.broken:
            raise ConnectionError("the folder client is broken")
        with self.lock, open(os.path.join(self.path, f"{table}.jsonl"), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(value) + "\n")


def _log(path: str, name: str) -> None:
    with open(os.path.join(path, name), "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()}\n")


@plugin.connection
def folder(path: str, fail: bool = False, slow: float = 0.0) -> Iterator[Folder]:
    """A folder that rows are written to.

    :param path: the folder
    :param fail: raise instead of opening
    :param slow: seconds opening takes
    """
    time.sleep(slow)
    if fail:
        raise RuntimeError(f"cannot open {path}")
    _log(path, "opened.log")
    yield Folder(path)
    _log(path, "closed.log")


@plugin.connection(open_timeout=1.0)
def gated(path: str, gate: str) -> Iterator[Folder]:
    """A folder that opens once the file ``gate`` exists (within 10 s): a slow opening a test controls."""
    _log(path, "opening.log")
    deadline = time.monotonic() + 10
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    _log(path, "opened.log")
    yield Folder(path)
    _log(path, "closed.log")


@plugin.sink
def keep_gated(row: Dict[str, Any], db: Annotated[Folder, gated]) -> None:
    db.write("rows", row)


@plugin.sink
def keep(row: Dict[str, Any], ctx: Context, db: Annotated[Folder, folder],
         table: Annotated[str, Param(dynamic=True)] = "rows") -> None:
    """One row into the table its template names; a row with "broken" marks the client broken first."""
    if row.get("broken"):
        db.broken = True
    try:
        db.write(table, row)
    except ConnectionError:
        db = ctx.reopen(db)
        db.write(table, row)


@plugin.sink
def keep_events(rows: List[Dict[str, Any]], db: Annotated[Folder, folder],
                table: Annotated[str, Param(dynamic=True)] = "events") -> None:
    db.write(table, rows)


@plugin.sink
def keep_message(data: Any, db: Annotated[Folder, folder], table: Annotated[str, Param(dynamic=True)] = "messages",
                 n: Annotated[int, Param(dynamic=True)] = 0) -> None:
    db.write(table, {"n": n, "data": data})


@plugin.source(conf_keys={"pooled": {"connectionSelector": "db1"}})
def follow(ctx: Context, db: Annotated[Folder, folder], period: float = 0.05) -> Iterator[Dict[str, Any]]:
    """Rows naming the client's folder and the process that opened it."""
    n = 0
    while True:
        yield {"n": n, "path": db.path, "pid": os.getpid()}
        n += 1
        ctx.sleep(period)


PAGES = Template("http://example.invalid/items?after={{.last}}")


@plugin.source
def pages(ctx: Context, url: Template = PAGES) -> Iterator[dict]:
    """A source that renders its own template with what it has: the last id."""
    last = 0
    while True:
        yield {"url": url.render({"last": last})}
        last += 10
        ctx.sleep(0.01)
