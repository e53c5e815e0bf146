"""Plugin sources under a real eKuiper: DATASOURCE, CONF_KEY, two rules on one stream, a shared stream."""

from __future__ import annotations

from .rest import metric, require_server

require_server()


def rows_sink(ek, path):
    return {ek.plugin.sym("rows"): {"path": str(path)}}


def test_datasource_reaches_the_source(ek):
    stream = ek.source_stream("s", 'DATASOURCE="north"')
    out = ek.sink_file("out")
    rule = ek.rule("r", f"SELECT i, ds FROM {stream}", [rows_sink(ek, out)])
    rows = ek.rows(out, 3)
    assert {r["ds"] for r in rows} == {"north"}
    assert [r["i"] for r in rows[:3]] == [0, 1, 2]
    status = ek.server.status(rule)
    assert status["status"] == "running"
    assert metric(status, f"source_{stream}_", "_records_in_total") >= 3
    assert metric(status, f"source_{stream}_", "_last_exception") == ""


def test_conf_key_selects_the_yaml_section(ek):
    stream = ek.source_stream("s", 'CONF_KEY="tens"')
    out = ek.sink_file("out")
    ek.rule("r", f"SELECT i FROM {stream}", [rows_sink(ek, out)])
    rows = ek.rows(out, 3)
    assert [r["i"] for r in rows[:3]] == [0, 10, 20]


def test_two_rules_on_one_stream_each_get_their_own_source(ek):
    stream = ek.source_stream("s")
    out_a, out_b = ek.sink_file("a"), ek.sink_file("b")
    rule_a = ek.rule("a", f"SELECT i, rule FROM {stream}", [rows_sink(ek, out_a)])
    rule_b = ek.rule("b", f"SELECT i, rule FROM {stream}", [rows_sink(ek, out_b)])
    rows_a, rows_b = ek.rows(out_a, 3), ek.rows(out_b, 3)
    assert {r["rule"] for r in rows_a} == {rule_a}
    assert {r["rule"] for r in rows_b} == {rule_b}
    assert rows_a[0]["i"] == 0 and rows_b[0]["i"] == 0
    refs = ek.server.plugin_status(ek.plugin.name)["refCount"]
    assert refs.get(rule_a) == 2 and refs.get(rule_b) == 2


def test_shared_stream_feeds_both_rules_from_one_source(ek):
    stream = ek.source_stream("s", 'SHARED="true"')
    out_a, out_b = ek.sink_file("a"), ek.sink_file("b")
    ek.rule("a", f"SELECT i, rule FROM {stream}", [rows_sink(ek, out_a)])
    ek.rule("b", f"SELECT i, rule FROM {stream}", [rows_sink(ek, out_b)])
    rows_a, rows_b = ek.rows(out_a, 5), ek.rows(out_b, 5)
    # one source instance, run by eKuiper's sub-topology for the shared stream
    assert {r["rule"] for r in rows_a + rows_b} == {f"$$subtopo_{stream}"}
    common = {r["i"] for r in rows_a} & {r["i"] for r in rows_b}
    assert common, "both rules see rows of the same source"
