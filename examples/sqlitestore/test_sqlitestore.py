"""The SQLite sink: rows stored per message, acks, framings, and the warning when requireAck is missing."""

import json
import logging
import sqlite3
from pathlib import Path

PLUGIN = Path(__file__).with_name("sqlitestore.py")


def stored(db: Path, table: str = "rows") -> list:
    with sqlite3.connect(db) as conn:
        return [json.loads(r) for (r,) in conn.execute(f"SELECT row FROM {table} ORDER BY id")]


def test_every_framing_in_process(ekdsl_symbols, tmp_path):
    db = tmp_path / "r.db"
    snk = ekdsl_symbols(PLUGIN).sink("sqlite_store", {"path": str(db), "requireAck": True})
    assert snk.send([{"n": 1}, {"n": 2}]) is None  # one event of two rows (a window)
    assert snk.send([[{"n": 3}], [{"n": 4}]]) is None  # a batch of two events
    assert snk.send({"n": 5}) is None  # one row (sendSingle)
    snk.stop()
    assert stored(db) == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}, {"n": 5}]


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


def test_a_resent_message_is_stored_once(ekuiper, tmp_path):
    """With enableCache eKuiper resends a message whose ack was an error; its rows were rolled back, so the resend
    stores each of them once. A trigger refuses a row while 'blocked' names it (a passing fault)."""
    db = tmp_path / "r.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE meters (id INTEGER PRIMARY KEY, at REAL, row TEXT)")
        conn.execute("CREATE TABLE blocked (row TEXT)")
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON meters WHEN NEW.row IN (SELECT row FROM blocked) "
                     "BEGIN SELECT RAISE(ABORT, 'busy, try later'); END")
        conn.execute("""INSERT INTO blocked VALUES ('{"n": 2}')""")
    emu = ekuiper(PLUGIN)
    snk = emu.start_sink("sqlite_store", {"path": str(db), "table": "meters", "requireAck": True,
                                          "enableCache": True})
    window = [{"n": 1}, {"n": 2}, {"n": 3}]  # one message: the rows of a window
    assert snk.send(window) == "IntegrityError: busy, try later"
    assert stored(db, "meters") == []  # rolled back whole
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM blocked")
    assert snk.send(window) is None  # eKuiper's resend
    assert stored(db, "meters") == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert emu.findings == []


def test_rules_writing_to_one_file_share_one_connection(ekdsl_symbols, tmp_path):
    db = tmp_path / "r.db"
    symbols = ekdsl_symbols(PLUGIN)
    sinks = [symbols.sink("sqlite_store", {"path": str(db), "requireAck": True}, rule=f"rule{i}") for i in range(5)]
    sinks.append(symbols.sink("sqlite_rows", {"path": str(db), "requireAck": True}, rule="rule5"))
    assert symbols.connections.open_connections() == [("database", {"path": str(db), "timeout": 5.0}, 6)]
    for i, snk in enumerate(sinks):
        assert snk.send([{"n": i}]) is None
    for snk in sinks:
        snk.stop()
    assert symbols.connections.open_connections() == []  # closed with the last rule
    assert sorted(r["n"] for r in stored(db)) == [0, 1, 2, 3, 4, 5]


def test_the_table_is_named_per_row_or_per_event(ekdsl_symbols, tmp_path):
    db = tmp_path / "r.db"
    symbols = ekdsl_symbols(PLUGIN)
    rows = symbols.sink("sqlite_rows", {"path": str(db), "table": "{{.kind}}", "sendSingle": True,
                                        "requireAck": True})
    assert rows.send({"kind": "power", "kwh": 1}) is None
    assert rows.send({"kind": "water", "m3": 2}) is None
    events = symbols.sink("sqlite_store", {"path": str(db), "table": '{{index . 0 "kind"}}', "requireAck": True})
    assert events.send([{"kind": "power", "kwh": 3}, {"kind": "power", "kwh": 4}]) is None
    ack = rows.send({"kwh": 5})  # no kind: that row fails, and says why
    assert ack is not None and "the row has no field 'kind'" in ack
    assert [r["kwh"] for r in stored(db, "power")] == [1, 3, 4] and stored(db, "water") == [{"kind": "water", "m3": 2}]
