"""A database sink with acks: the rows of each message go into SQLite in one transaction, exactly once.

Declared with ``require_ack=True``: the rule should set ``requireAck`` so that eKuiper waits for each
message's ack, and ``enableCache`` so that it sends a message whose ack is an error again until it succeeds:

    {"sqlite_store": {"path": "/var/lib/ekuiper/rows.db", "table": "meters", "requireAck": true,
                      "enableCache": true}}

A message is what the rule emits at once: one row, or every row of a window (``SELECT * FROM meters GROUP BY
COUNTWINDOW(10)`` stores ten rows per transaction). Do not batch with ``batchSize``/``lingerInterval``: eKuiper
corrupts batches that wait for a sink with acks (docs/compatibility.md). A message that fails (the database is
locked, the disk full) is rolled back whole and its ack is an error; eKuiper resends it, and each row is stored
once.

Export it with ``python -m ekdsl export examples/sqlitestore/sqlitestore.py --zip``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from typing import Annotated, Generator

from ekdsl import Context, Param, Plugin

plugin = Plugin("sqlitestore", version="1.2.0", author="ekdsl", description="Store rule results in SQLite.")

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@plugin.sink(require_ack=True)
def sqlite_store(
    ctx: Context,
    path: Annotated[str, Param(hint="SQLite database file, created if missing")] = "rows.db",
    table: Annotated[str, Param(hint="Table for the rows (letters, digits and '_')")] = "rows",
) -> Generator[None, list[dict], None]:
    """Insert each message's rows as JSON, one transaction per message."""
    if not _TABLE.match(table):
        raise ValueError(f"table {table!r} is not a plain SQL name: use letters, digits and '_'")
    db = sqlite3.connect(path)  # set up once per rule; the generator runs on one thread
    try:
        db.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, at REAL, row TEXT)")
        while True:
            rows = yield  # the rows of one message, whatever the rule's framing
            with db:  # commit, or roll back and raise: the ack then carries the error
                db.executemany(f"INSERT INTO {table} (at, row) VALUES (?, ?)",
                               [(time.time(), json.dumps(r, sort_keys=True)) for r in rows])
            ctx.logger.debug("stored %d rows", len(rows))
    finally:
        db.close()  # when the rule stops
