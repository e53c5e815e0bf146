"""Plugin functions under a real eKuiper: scalar, default argument, variadic, aggregate, bytes, validation."""

from __future__ import annotations

import pytest

from .rest import require_server

require_server()


def run(ek, select, n=3, group=""):
    """Rows of ``SELECT <select> FROM <plugin source stream> [group]`` as the rows sink wrote them."""
    stream = ek.source_stream("s", 'DATASOURCE="d"')
    out = ek.sink_file("out")
    ek.rule("r", f"SELECT {select} FROM {stream} {group}", [{ek.plugin.sym("rows"): {"path": str(out)}}])
    return ek.rows(out, n)


def test_scalar_function(ek):
    f = ek.plugin.sym("scale")
    rows = run(ek, f"temp, {f}(temp, 3) AS s, {f}(temp) AS d")
    for row in rows:
        assert row["s"] == row["temp"] * 3
        assert row["d"] == row["temp"] * 2


def test_variadic_function(ek):
    f = ek.plugin.sym("join")
    rows = run(ek, f"{f}('-', name, i, ds) AS j, {f}('+') AS empty")
    assert [r["j"] for r in rows[:2]] == ["n0-0-d", "n1-1-d"]
    assert rows[0]["empty"] == ""


def test_aggregate_with_a_constant_argument(ek):
    f = ek.plugin.sym("ewma")
    rows = run(ek, f"{f}(temp, 0.5) AS e, collect(temp) AS ts", n=2, group="GROUP BY COUNTWINDOW(4)")
    for row in rows:
        avg = None
        for v in row["ts"]:
            avg = v if avg is None else 0.5 * v + 0.5 * avg
        assert row["e"] == pytest.approx(avg)


def test_bytes_parameter_takes_a_sql_string(ek):
    """A SQL string arrives as plain JSON text (Go base64-encodes only []byte): the function gets its bytes."""
    f = ek.plugin.sym("blen")
    rows = run(ek, f"name, {f}(name) AS n")
    for row in rows:
        assert row["n"] == len(row["name"].encode())


@pytest.mark.parametrize("call", ["scale()", "scale(1, 2, 3)", "join()", "ewma(temp)"])
def test_wrong_arity_is_refused_at_rule_creation(ek, call):
    stream = ek.source_stream("s")
    rule_id = f"{ek.prefix}_bad"
    status, payload = ek.server.rule(rule_id, f"SELECT {ek.plugin.name}{call} AS x FROM {stream}",
                                     [{"nop": {}}])
    if status == 201:
        ek.rules.append(rule_id)
    assert status == 400, payload
    # ekdsl's own text, e.g. "<f>() takes 1 to 2 arguments, got 0", inside eKuiper's "validate function" error
    message = payload["message"]
    assert f"validate function {ek.plugin.name}{call.split('(')[0]} error" in message, message
    assert "argument" in message, message
