"""Shared connections: the declaration, and the registry that shares one client per settings."""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any, Dict, Iterator, List

import pytest

from ekdsl import ConnectionFailed, DefinitionError, Plugin, connection
from ekdsl.runtime.connections import Connections

from .conftest import wait_for

LOG: List[str] = []
GATE = threading.Event()


class Client:
    def __init__(self, name: str) -> None:
        self.name = name


@connection
def pool(name: str, fail: bool = False, gated: bool = False, password: str = "") -> Iterator[Client]:
    LOG.append(f"open {name}")
    if gated:
        assert GATE.wait(5), "the test never opened the gate"
    if fail:
        raise RuntimeError(f"cannot reach {name}")
    yield Client(name)
    LOG.append(f"close {name}")


MADE: List[int] = []


@connection
def plain(n: int = 1) -> Dict[str, int]:
    MADE.append(n)
    return {"n": n}


@connection
def twice() -> Iterator[int]:
    yield 1
    yield 2


def use(row: dict, db: Annotated[Client, pool], a: Annotated[dict, plain], b: Annotated[int, twice]) -> None:
    pass


PLUGIN = Plugin("conntest")
PLUGIN.sink(use)
USE, PLAIN, TWICE = PLUGIN.model().sinks[0].connections


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    LOG.clear()
    GATE.clear()
    yield
    GATE.set()


def test_ten_users_share_one_client_which_closes_after_the_last():
    reg = Connections()
    leases = [reg.acquire(USE, {"name": "db"}) for _ in range(10)]
    assert LOG == ["open db"] and len({id(lease.client) for lease in leases}) == 1
    assert reg.open_connections() == [("pool", {"name": "db"}, 10)]
    for lease in leases[:9]:
        lease.release()
    assert LOG == ["open db"]
    leases[9].release()
    assert LOG == ["open db", "close db"] and reg.open_connections() == []
    leases[9].release()  # a second release changes nothing
    assert LOG == ["open db", "close db"]


def test_each_distinct_settings_have_their_own_client():
    reg = Connections()
    a, b, a2 = reg.acquire(USE, {"name": "a"}), reg.acquire(USE, {"name": "b"}), reg.acquire(USE, {"name": "a"})
    assert a.client is a2.client and a.client is not b.client and reg.opened == 2


def test_concurrent_starts_open_once():
    reg = Connections()
    got: List[Any] = []

    def start() -> None:
        got.append(reg.acquire(USE, {"name": "db", "gated": True}).client)

    threads = [threading.Thread(target=start) for _ in range(10)]
    for t in threads:
        t.start()
    assert wait_for(lambda: LOG == ["open db"])
    GATE.set()
    for t in threads:
        t.join(5)
    assert len(got) == 10 and len({id(c) for c in got}) == 1 and LOG == ["open db"]


def test_a_factory_that_raises_fails_the_starts_that_wait_for_it_only():
    reg = Connections(logging.getLogger("test"))
    errors: List[BaseException] = []
    others: List[Any] = []

    def failing() -> None:
        try:
            reg.acquire(USE, {"name": "down", "fail": True, "gated": True, "password": "hunter2"})
        except ConnectionFailed as exc:
            errors.append(exc)

    threads = [threading.Thread(target=failing) for _ in range(5)]
    for t in threads:
        t.start()
    assert wait_for(lambda: LOG == ["open down"])
    others.append(reg.acquire(USE, {"name": "up"}).client)  # another connection opens meanwhile
    GATE.set()
    for t in threads:
        t.join(5)
    assert len(errors) == 5 and others[0].name == "up"
    assert str(errors[0]) == ("connection 'pool' (name='down', fail=True, gated=True, password=***) could not be "
                              "opened: RuntimeError: cannot reach down")
    assert LOG.count("open down") == 1  # the five waited for one attempt
    with pytest.raises(ConnectionFailed):  # the next start tries again
        reg.acquire(USE, {"name": "down", "fail": True, "gated": True, "password": "hunter2"})
    assert LOG.count("open down") == 2 and reg.open_connections() == [("pool", {"name": "up"}, 1)]


def test_an_opening_slower_than_the_timeout_fails_that_start_and_closes_when_no_one_waits():
    reg = Connections()
    with pytest.raises(ConnectionFailed, match=r"still opening after 0.1 s \(open_timeout\)"):
        reg.acquire(USE, {"name": "slow", "gated": True}, timeout=0.1)
    GATE.set()
    assert wait_for(lambda: LOG == ["open slow", "close slow"])
    assert reg.open_connections() == []


def test_a_start_during_a_slow_opening_waits_for_that_one():
    reg = Connections()
    with pytest.raises(ConnectionFailed):
        reg.acquire(USE, {"name": "slow", "gated": True}, timeout=0.05)
    threading.Timer(0.1, GATE.set).start()
    lease = reg.acquire(USE, {"name": "slow", "gated": True}, timeout=5)
    assert lease.client.name == "slow" and LOG == ["open slow"]


def test_a_broken_client_is_reopened_once_for_everyone_who_shares_it():
    reg = Connections()
    first, second = reg.acquire(USE, {"name": "db"}), reg.acquire(USE, {"name": "db"})
    old = first.client
    new = reg.reopen(old)
    assert new is not old and LOG == ["open db", "close db", "open db"]
    assert reg.reopen(old) is new  # the other user found the same client broken: it gets the new one
    assert first.client is new and second.client is new and LOG == ["open db", "close db", "open db"]
    first.release()
    second.release()
    assert LOG[-1] == "close db"


def test_a_reopening_that_fails_is_tried_again_by_the_next_use():
    reg = Connections()
    lease = reg.acquire(USE, {"name": "db"})
    calls = {"n": 0}
    func = USE.connection.func

    def flaky(**settings: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("still down")
        return func(**settings)

    reg_use = USE.connection._replace(func=flaky)
    lease._entry.model = reg_use  # the same entry, a factory that fails once
    with pytest.raises(ConnectionFailed, match="OSError: still down"):
        reg.reopen(lease.client)
    assert lease.client.name == "db" and calls["n"] == 2


def test_reopen_refuses_what_is_not_a_shared_client():
    with pytest.raises(ValueError, match="not the client of an open shared connection"):
        Connections().reopen(object())


def test_close_all_closes_what_is_open():
    reg = Connections()
    reg.acquire(USE, {"name": "a"})
    reg.acquire(USE, {"name": "b"})
    reg.close_all()
    assert sorted(LOG) == ["close a", "close b", "open a", "open b"] and reg.open_connections() == []


def test_a_plain_function_factory_shares_what_it_returns_and_a_second_yield_is_reported(caplog):
    reg = Connections()
    assert reg.acquire(PLAIN, {"n": 3}).client == {"n": 3} and MADE == [3]
    lease = reg.acquire(TWICE, {})
    with caplog.at_level(logging.ERROR):
        lease.release()
    assert "yielded a second value" in caplog.text


# ---- the declaration


def _problems(make_module, source: str) -> str:
    from ekdsl import load_target

    with pytest.raises(DefinitionError) as info:
        load_target(str(make_module(source))).model()
    return str(info.value)


PREAMBLE = '''
from typing import Annotated, Iterator
from ekdsl import Context, Param, Plugin, connection
plugin = Plugin("decl")

@connection
def db(path: str = "x") -> Iterator[object]:
    yield object()
'''


@pytest.mark.parametrize(("body", "fragment"), [
    ('@plugin.function\ndef f(x: int, c: Annotated[object, db]) -> int:\n    return x\n',
     "asks for connection 'db', but a function's parameters are SQL arguments"),
    ('@plugin.sink\ndef s(row: dict, c: Annotated[object, db] = None) -> None:\n    pass\n',
     "receives connection 'db', so it can have no default"),
    ('@plugin.sink\ndef s(row: dict, c: Annotated[object, db], d: Annotated[object, db]) -> None:\n    pass\n',
     "asks for connection 'db' twice"),
    ('@plugin.sink\ndef s(row: dict, c: Annotated[object, db], path: str = "") -> None:\n    pass\n',
     "connection 'db' has setting 'path', the name of property 'path'"),
    ('@connection\nasync def adb() -> object:\n    return 1\n\n@plugin.sink\n'
     'def s(row: dict, c: Annotated[object, adb]) -> None:\n    pass\n', "is async, but its client is shared"),
    ('@connection\ndef cdb(ctx: Context) -> Iterator[object]:\n    yield 1\n\n@plugin.sink\n'
     'def s(row: dict, c: Annotated[object, cdb]) -> None:\n    pass\n', "takes a Context ('ctx')"),
    ('@connection\ndef rdb(interval: int = 1) -> Iterator[object]:\n    yield 1\n\n@plugin.source\n'
     'def s(c: Annotated[object, rdb]) -> Iterator[dict]:\n    yield {}\n',
     "property 'interval' has a name eKuiper reserves"),
])
def test_a_connection_used_wrongly_is_refused_with_the_fix(make_module, body, fragment):
    assert fragment in _problems(make_module, PREAMBLE + body)


def test_a_connection_s_settings_are_properties_of_each_symbol_that_uses_it(tmp_path):
    from ekdsl import load_target
    from ekdsl.checks import check_package
    from ekdsl.metadata import sink_json, source_json, source_yaml
    from ekdsl.package import export

    from .conftest import ROOT

    model = load_target(str(ROOT / "tests" / "plugins" / "shared.py")).model()
    keep = model.get("sink", "keep")
    follow = model.get("source", "follow")
    assert keep is not None and follow is not None
    assert [p.name for p in keep.params] == ["table", "path", "fail", "slow"]
    assert keep.params[1].hint.en_US == "the folder" and keep.params[1].required
    names = [p["name"] for p in sink_json(model, keep)["properties"]]
    assert names == ["table", "path", "fail", "slow", "connectionSelector"]
    assert [p["name"] for p in source_json(model, follow)["properties"]["pooled"]][-1] == "connectionSelector"
    assert source_yaml(follow)["pooled"] == {"connectionSelector": "db1"}
    report = check_package(export(model, str(tmp_path)).directory)
    assert report.ok and not report.findings, report.findings
