"""The SQLite sink: rows stored per event, acks, batches, and the warning when requireAck is missing."""

import json
import logging
import sqlite3
from pathlib import Path

PLUGIN = Path(__file__).with_name("sqlitestore.py")


def stored(db: Path, table: str = "rows") -> list:
    with sqlite3.connect(db) as conn:
        return [json.loads(r) for (r,) in conn.execute(f"SELECT row FROM {table} ORDER BY id")]


def test_events_and_batches_in_process(ekdsl_symbols, tmp_path):
    db = tmp_path / "r.db"
    snk = ekdsl_symbols(PLUGIN).sink("sqlite_store", {"path": str(db), "requireAck": True, "batchSize": 2})
    assert snk.send([{"n": 1}, {"n": 2}]) is None  # one event of two rows
    assert snk.send([[{"n": 3}], [{"n": 4}]]) is None  # a batch of two events
    snk.stop()
    assert stored(db) == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]


def test_a_bad_table_name_is_acked_as_an_error(ekdsl_symbols, tmp_path):
    snk = ekdsl_symbols(PLUGIN).sink("sqlite_store", {"path": str(tmp_path / "r.db"), "table": "x; DROP",
                                                      "requireAck": True})
    ack = snk.send([{"n": 1}])
    assert ack is not None and "is not a plain SQL name" in ack


def test_missing_require_ack_is_a_warning(ekdsl_symbols, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        ekdsl_symbols(PLUGIN).sink("sqlite_store", {"path": str(tmp_path / "r.db")})
    assert "the rule does not set requireAck" in caplog.text


def test_under_the_emulator(ekuiper, tmp_path):
    db = tmp_path / "r.db"
    emu = ekuiper(PLUGIN)
    snk = emu.start_sink("sqlite_store", {"path": str(db), "table": "meters", "requireAck": True})
    assert snk.send([{"kwh": 1.5}]) is None
    assert snk.send(b'[{"kwh": 2.5}, {"kwh": 3}]') is None
    emu.stop(snk)
    assert stored(db, "meters") == [{"kwh": 1.5}, {"kwh": 2.5}, {"kwh": 3}]
