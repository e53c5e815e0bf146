"""A database sink with acks: the rows of each message go into SQLite in one transaction, exactly once, through one
connection per database.

Declared with ``require_ack=True``: the rule should set ``requireAck`` so that eKuiper waits for each
message's ack, and ``enableCache`` so that it sends a message whose ack is an error again until it succeeds:

    {"sqlite_store": {"path": "/var/lib/ekuiper/rows.db", "table": "meters", "requireAck": true,
                      "enableCache": true}}

A message is what the rule emits at once: one row, or every row of a window (``SELECT * FROM meters GROUP BY
COUNTWINDOW(10)`` stores ten rows per transaction). Do not batch with ``batchSize``/``lingerInterval``: eKuiper
corrupts batches that wait for a sink with acks (docs/compatibility.md).

Every rule writing to the same file shares one SQLite connection (the ``database`` connection): the plugin
process opens it when the first of them starts and closes it when the last one stops. The table is a dynamic
property: a name, or a data template evaluated for each event (``"{{index . 0 \\"kind\\"}}"``; the events of one
message must agree) or, with ``sqlite_rows`` and ``sendSingle``, for each row (``"{{.kind}}"``).

A message that fails (the database is locked, the disk full) is rolled back whole and its ack is an error;
eKuiper resends it, and each row is stored once.

Export it with ``python -m ekdsl export examples/sqlitestore/sqlitestore.py --zip``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from typing import Annotated, Any, Dict, Iterator, List

from ekdsl import Context, Param, Plugin

plugin = Plugin("sqlitestore", version="1.2.0", author="ekdsl", description="Store rule results in SQLite.")

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
Table = Annotated[str, Param(dynamic=True, hint="Table for the rows (letters, digits and '_'), or a data template "
                                                "naming one, such as {{.kind}}")]


class Database:
    """One SQLite connection, shared by the rules that write to its file: one writer at a time."""

    def __init__(self, path: str, timeout: float) -> None:
        self.conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
        self.lock = threading.Lock()
        self.tables: set[str] = set()

    def insert(self, table: str, rows: List[Dict[str, Any]]) -> None:
        """Store ``rows`` in ``table`` in one transaction: all of them, or none and raise."""
        if not _TABLE.match(table):
            raise ValueError(f"table {table!r} is not a plain SQL name: use letters, digits and '_'")
        with self.lock, self.conn:  # commit, or roll back and raise: the ack then carries the error
            if table not in self.tables:
                self.conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, at REAL, row TEXT)")
                self.tables.add(table)
            self.conn.executemany(f"INSERT INTO {table} (at, row) VALUES (?, ?)",
                                  [(time.time(), json.dumps(r, sort_keys=True)) for r in rows])


@plugin.connection
def database(
    path: Annotated[str, Param(hint="SQLite database file, created if missing")] = "rows.db",
    timeout: Annotated[float, Param(hint="Seconds to wait for a lock another process holds")] = 5.0,
) -> Iterator[Database]:
    """One connection per database file, shared by every rule that writes to it."""
    db = Database(path, timeout)
    try:
        yield db
    finally:
        db.conn.close()  # when the last rule using it stops


@plugin.sink(require_ack=True)
def sqlite_store(rows: List[Dict[str, Any]], ctx: Context, db: Annotated[Database, database],
                 table: Table = "rows") -> None:
    """Insert the rows of each message as JSON, one transaction per message."""
    db.insert(table, rows)
    ctx.logger.debug("stored %d rows into %s", len(rows), table)


@plugin.sink(require_ack=True)
def sqlite_rows(row: Dict[str, Any], db: Annotated[Database, database], table: Table = "rows") -> None:
    """Insert each row as JSON into the table named for it (with sendSingle, a template sees the row)."""
    db.insert(table, [row])
