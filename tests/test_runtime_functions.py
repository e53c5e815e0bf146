"""SQL functions over real ipc sockets: Validate, IsAggregate, Exec, errors, and replay after restart."""

from __future__ import annotations

import base64

import pytest

from ekdsl.host import FunctionHandle
from ekdsl.host.channels import FunctionChannel

from .conftest import PYSAM, WEATHER

FIELD = {"StreamName": "$$default", "Name": "name", "HasIndex": False, "SourceIndex": 0, "Index": 0}


def test_pysam_revert(host):
    h = host(PYSAM)
    f = h.function("revert")
    assert f.validate(FIELD) == (True, "")
    assert f.is_aggregate() == (True, False)
    assert f.exec("pyjson") == (True, "nosjyp")
    assert f.validate() == (False, "revert() takes 1 argument, got 0")
    assert f.exec(1) == (False, "revert: argument 'field' expects str, got 1")


def test_validate_arity_and_literals(host):
    h = host()
    add = h.function("add")
    assert add.validate(FIELD) == (True, "")
    assert add.validate(FIELD, {"Val": 3}) == (True, "")
    assert add.validate(FIELD, FIELD, FIELD) == (False, "add() takes 1 to 2 arguments, got 3")
    assert add.validate({"Val": "x"}) == (False, "add: argument 'a' expects int, got 'x'")
    shout = h.function("shout")
    assert shout.validate() == (False, "shout() takes at least 1 argument, got 0")
    assert shout.validate(FIELD, FIELD, FIELD, FIELD) == (True, "")


def test_exec_coercion_defaults_async_and_variadic(host):
    h = host()
    add = h.function("add")
    assert add.exec(1) == (True, 11)
    assert add.exec("2", 3.0) == (True, 5)
    assert add.exec(1, None) == (True, 11)  # a SQL null takes the default
    assert h.function("shout").exec("a", "b", "c") == (True, "A B C")


def test_aggregate_over_a_thousand_values(host):
    h = host()
    total = h.function("total")
    assert total.is_aggregate() == (True, True)
    assert total.exec(list(range(1000))) == (True, 499500.0)


def test_errors_become_state_false(host):
    h = host()
    assert h.function("fail").exec(1) == (False, "RuntimeError: no good")
    add = h.function("add")
    assert add.channel.call("Frobnicate", None) == (
        False, "invalid func 'Frobnicate': expected Validate, IsAggregate or Exec")
    assert add.channel.call("Exec", []) == (False, "Exec 'arg' must be a non-empty array ending with the context")
    assert add.exec(1) == (True, 11)  # still serving


def test_context_and_json_safe_results(host):
    h = host()
    who = h.function("whoami")
    assert who.exec(rule="ruleExtP", op="2_project", instance=1, func_id=3) == (
        True, {"rule": "ruleExtP", "op": "2_project", "instance": 1, "func": 3})
    ok, result = h.function("stamp").exec(base64.b64encode(b"\x01\x02").decode())
    assert ok and result == {"bytes": "AQI=", "when": "2024-05-06", "dec": 2.5, "set": [1], "nan": None}


def test_late_reply_is_discarded_and_next_call_succeeds(host):
    h = host()
    slow = h.function("slow")
    with pytest.raises(Exception, match="timed out"):
        slow.exec(1.5, timeout=0.5)
    assert slow.exec(0.0, timeout=5) == (True, 0.0)
    assert slow.channel.discarded  # the late answer was read and dropped, as eKuiper does


def test_every_function_served_after_a_single_start(host, sockdir):
    """eKuiper replays only the last function start after a restart; all functions must still answer."""
    h = host(WEATHER)
    channels = {n: FunctionChannel(n, sockdir) for n in ("spread", "join_all")}
    try:
        h.function("c_to_f")
        assert FunctionHandle("spread", channels["spread"]).exec([1.0, 4.0, 2.5]) == (True, 3.0)
        assert FunctionHandle("join_all", channels["join_all"]).exec("-", "a", 1) == (True, "a-1")
    finally:
        for ch in channels.values():
            ch.close()
