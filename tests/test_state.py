"""ctx.state: the API, scopes, values and transactions, on SQLite and on a real Redis."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ekdsl import Context, StateError, StoreError
from ekdsl.state import Location, Scope, State, Stores, parse_location
from ekdsl.state.scope import split_key


@pytest.fixture(params=["sqlite", "redis"])
def where(request, tmp_path) -> str:
    """Where the stores live: a folder of SQLite files, or a redis-server of the test's own."""
    if request.param == "sqlite":
        return str(tmp_path / "state")
    return request.getfixturevalue("redis_server").url


def context(stores: Stores, kind: str = "source", symbol: str = "sym", rule: str = "r1", **kw) -> Context:
    return Context(plugin="demo", symbol=symbol, rule_id=rule, op_id="op", kind=kind, stores=stores, **kw)


def test_get_put_delete_incr_items(where):
    stores = Stores(parse_location(where))
    state = context(stores).state
    assert state.get("missing") is None and state.get("missing", 7) == 7
    state.put("cursor", {"offset": 10, "file": "a.jsonl"})
    state.put("tags", ["a", "b"])
    assert state.get("cursor") == {"offset": 10, "file": "a.jsonl"}
    assert state.incr("rows") == 1 and state.incr("rows", 41) == 42 and state.incr("ratio", 0.5) == 0.5
    assert state.items() == [("cursor", {"offset": 10, "file": "a.jsonl"}), ("ratio", 0.5), ("rows", 42),
                             ("tags", ["a", "b"])]
    assert state.delete("tags") is True and state.delete("tags") is False
    assert [k for k, _ in state.items()] == ["cursor", "ratio", "rows"]
    stores.close()
    again = context(Stores(parse_location(where))).state  # another process would see the same
    assert again.get("rows") == 42


def test_scopes_keep_rules_instances_and_call_sites_apart(where):
    stores = Stores(parse_location(where))
    a, b = context(stores, rule="r1").state, context(stores, rule="r2").state
    a.put("k", 1)
    b.put("k", 2)
    assert (a.get("k"), b.get("k")) == (1, 2)
    assert context(stores, rule="r1", instance_id=1).state.get("k") is None
    assert context(stores, kind="sink").state.get("k") is None  # a sink of the same name is another scope
    f0 = context(stores, kind="function", func_id=0).state
    f1 = context(stores, kind="function", func_id=1).state
    f0.incr("n")
    assert (f0.get("n"), f1.get("n")) == (1, None)
    a.shared.put("owner", "plugin")
    assert b.shared.get("owner") == f1.shared.get("owner") == "plugin"
    assert a.shared.shared.items() == [("owner", "plugin")]
    assert Stores(parse_location(where)).store("other").get("shared/owner") is None  # plugins are apart


def test_values_are_what_json_carries(where):
    state = context(Stores(parse_location(where))).state
    when = dt.datetime(2024, 5, 6, 10, 0, tzinfo=dt.timezone.utc)
    state.put("v", {"t": when, "b": b"\x00\x01", "nan": float("nan"), "tuple": (1, 2), "big": 2**63 - 1,
                    "text": "ünïcödé ☃", "none": None})
    assert state.get("v") == {"t": "2024-05-06T10:00:00+00:00", "b": "AAE=", "nan": None, "tuple": [1, 2],
                              "big": 2**63 - 1, "text": "ünïcödé ☃", "none": None}
    state.put("zero", 0)
    assert state.get("zero", 5) == 0


def test_bad_keys_and_values_fail_that_call_only(where):
    state = context(Stores(parse_location(where))).state
    with pytest.raises(StateError, match=r"keys are str, got int 3: use str\(key\)") as err:
        state.put(3, "x")  # type: ignore[arg-type]
    assert err.value.operation == "put" and err.value.key == 3
    with pytest.raises(StateError, match="the key is empty"):
        state.get("")
    with pytest.raises(StateError, match="lone surrogate"):
        state.put("a\udc80", 1)
    with pytest.raises(StateError, match=r'value\["a"\]\[1\] is an object, which JSON cannot hold'):
        state.put("k", {"a": [1, object()]})
    state.put("name", "x")
    with pytest.raises(StateError, match="holds str 'x', not a number"):
        state.incr("name")
    with pytest.raises(StateError, match="by must be an int or a float"):
        state.incr("n", "1")  # type: ignore[arg-type]
    state.put("big", 2**63 - 1)
    with pytest.raises(StateError, match="outside the 64-bit integers"):
        state.incr("big")
    assert state.get("big") == 2**63 - 1 and state.get("name") == "x" and state.get("k") is None
    assert not isinstance(StateError("x"), StoreError)


def test_a_transaction_writes_all_or_nothing(where):
    state = context(Stores(parse_location(where))).state
    state.put("gone", 1)
    with state.transaction() as tx:
        tx.put("a", 1)
        assert tx.get("a") == 1 and tx.incr("a", 2) == 3
        assert tx.delete("gone") is True and tx.get("gone") is None
        assert tx.items() == [("a", 3)]
        assert state.get("a") is None  # nothing is written before the block ends
    assert state.items() == [("a", 3)]
    with pytest.raises(RuntimeError), state.transaction() as tx:
        tx.put("a", 100)
        tx.put("b", 1)
        raise RuntimeError("the block fails")
    assert state.items() == [("a", 3)]
    with pytest.raises(StateError, match="the transaction has ended"):
        tx.put("c", 1)


def _hammer(where: str, n: int) -> None:
    state = context(Stores(parse_location(where))).state
    for _ in range(n):
        state.shared.incr("total")
        state.incr("mine", 0.5)


def test_incr_is_atomic_across_threads_and_processes(where):
    """Four threads here and two processes, all incrementing the same keys: no increment is lost."""
    threads = [threading.Thread(target=_hammer, args=(where, 150)) for _ in range(4)]
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=_hammer, args=(where, 150)) for _ in range(2)]
    for t in [*threads, *procs]:
        t.start()
    for t in threads:
        t.join(60)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    state = context(Stores(parse_location(where))).state
    assert state.shared.get("total") == 900 and state.get("mine") == 450.0
    if "://" not in where:
        with sqlite3.connect(Path(where, "demo.db")) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@given(st.sampled_from(["source", "sink", "function", "resend"]), st.text(min_size=1), st.text(), st.text(),
       st.integers(0, 2**31), st.integers(0, 2**31), st.text(min_size=1))
def test_every_scope_key_splits_back(kind, symbol, rule, op, instance, func_id, key):
    scope = Scope(kind, symbol, rule, op, instance, func_id if kind == "function" else 0)
    assert split_key(scope.prefix + key) == (scope, key)
    assert split_key("shared/" + key) == (Scope("shared"), key)


def test_a_scope_prefix_is_never_the_start_of_another():
    """A rule named like another's prefix cannot see its keys: every part is escaped and ends with '/'."""
    a = Scope("source", "s", "r", "op", 1).prefix
    b = Scope("source", "s", "r/op/1", "x", 0).prefix
    c = Scope("source", "s", "r", "op", 10).prefix
    assert not b.startswith(a) and not c.startswith(a) and "%2F" in b


def test_the_sqlite_file_is_ekdsls_own_owner_only_and_in_wal_mode(tmp_path):
    state = context(Stores(Location("sqlite", folder=str(tmp_path / "s")))).state
    state.put("k", 1)
    path = tmp_path / "s" / "demo.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT key, value FROM state").fetchall() == [("source/sym/r1/op/0/k", b"1")]
        db.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="a newer ekdsl wrote it"):
        context(Stores(Location("sqlite", folder=str(tmp_path / "s")))).state.get("k")


def test_sync_full_is_a_setting(tmp_path):
    from ekdsl.state import find_location

    where = find_location({"EKDSL_STATE": str(tmp_path), "EKDSL_STATE_SYNC": "full"})
    backend = where.open("demo")
    assert backend._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # type: ignore[attr-defined]
    backend.close()
    with pytest.raises(StoreError, match="use normal"):
        find_location({"EKDSL_STATE": str(tmp_path), "EKDSL_STATE_SYNC": "fast"})


def test_redis_keys_are_under_ekdsls_prefix_only(redis_server):
    client = redis_server.client()
    client.set("KV:STORE:rules:r1", "eKuiper's own")
    state = context(Stores(parse_location(redis_server.url))).state
    state.put("cursor", 5)
    state.shared.put("x", 1)
    assert sorted(client.keys("*")) == [b"KV:STORE:rules:r1", b"ekdsl:state:demo:shared/x",
                                        b"ekdsl:state:demo:source/sym/r1/op/0/cursor"]
    assert client.get("ekdsl:state:demo:source/sym/r1/op/0/cursor") == b"5"
    Stores(parse_location(redis_server.url)).store("demo").drop("")
    assert client.keys("*") == [b"KV:STORE:rules:r1"]


def test_a_context_without_plugin_or_kind_says_what_is_missing(tmp_path):
    stores = Stores(parse_location(str(tmp_path)))
    with pytest.raises(StoreError, match="needs the plugin's name"):
        Context(kind="source", stores=stores).state.get("k")
    with pytest.raises(StateError, match="needs the symbol's kind"):
        Context(plugin="p", stores=stores).state.get("k")


def test_state_is_made_on_first_use_and_kept(tmp_path):
    stores = Stores(parse_location(str(tmp_path)))
    ctx = context(stores)
    assert "_state" not in ctx.__dict__ and not os.listdir(tmp_path)  # nothing made before first use
    assert ctx.state is ctx.state and isinstance(ctx.state, State)
    assert repr(ctx.state) == "<State of plugin 'demo': source sym rule=r1 op=op instance=0>"
    assert Path(tmp_path, "demo.db").exists() is False  # opened on the first call, not the first access
    ctx.state.get("k")
    assert Path(tmp_path, "demo.db").exists()


def test_what_others_wrote_into_the_store_is_a_store_error(tmp_path, redis_server):
    """Bytes that are not JSON under a key (another program wrote them), keys that are not UTF-8, a file that is
    no database: each call that meets them fails with a StoreError saying so; the rest works."""
    client = redis_server.client()
    client.set("ekdsl:state:demo:source/sym/r1/op/0/bad", b"\xff{not json")
    client.set(b"ekdsl:state:demo:source/sym/r1/op/0/\xff\xfe", b"1")
    state = context(Stores(parse_location(redis_server.url))).state
    with pytest.raises(StoreError, match=r"the value under 'bad' is not JSON .*something other than ekdsl wrote"):
        state.get("bad")
    with pytest.raises(StoreError, match="not JSON"):
        state.incr("bad")
    with pytest.raises(StoreError, match="not JSON"):
        state.items()
    state.put("bad", 1)
    assert state.items() == [("bad", 1), ("\ufffd\ufffd", 1)]
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "demo.db").write_bytes(b"this is no database" * 100)
    broken = context(Stores(parse_location(str(folder)))).state
    with pytest.raises(StoreError, match="is not a SQLite database: move it away"):
        broken.put("k", 1)
    (folder / "demo.db").unlink()
    broken.put("k", 1)  # the store is tried again on the next call
    assert broken.get("k") == 1
