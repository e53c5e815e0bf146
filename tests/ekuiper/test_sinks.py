"""Plugin sinks under a real eKuiper: requireAck, batches, sendSingle, fields, ack errors."""

from __future__ import annotations

from .rest import metric, read_lines, require_server, wait_for

require_server()


def counting_stream(ek, suffix="s"):
    return ek.source_stream(suffix, 'DATASOURCE="d"')


def test_default_framing_is_one_event_array_per_message(ek):
    stream = counting_stream(ek)
    out = ek.sink_file("out")
    ek.rule("r", f"SELECT i FROM {stream}", [{ek.plugin.sym("raw"): {"path": str(out)}}])
    got = ek.rows(out, 3)
    assert got[:3] == [[{"i": 0}], [{"i": 1}], [{"i": 2}]]


def test_send_single_gives_one_object_per_message(ek):
    stream = counting_stream(ek)
    out = ek.sink_file("out")
    ek.rule("r", f"SELECT i FROM {stream}", [{ek.plugin.sym("raw"): {"path": str(out), "sendSingle": True}}])
    got = ek.rows(out, 3)
    assert got[:3] == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_fields_limits_the_columns(ek):
    stream = counting_stream(ek)
    out = ek.sink_file("out")
    ek.rule("r", f"SELECT i, ds, name FROM {stream}",
            [{ek.plugin.sym("rows"): {"path": str(out), "fields": ["i", "name"]}}])
    got = ek.rows(out, 3)
    assert got[:2] == [{"i": 0, "name": "n0"}, {"i": 1, "name": "n1"}]


def test_batch_size_groups_rows(ek):
    stream = counting_stream(ek)
    raw, rows = ek.sink_file("raw"), ek.sink_file("rows")
    ek.rule("r", f"SELECT i FROM {stream}", [
        {ek.plugin.sym("raw"): {"path": str(raw), "batchSize": 3, "lingerInterval": 60000}},
        {ek.plugin.sym("rows"): {"path": str(rows), "batchSize": 3, "lingerInterval": 60000}},
    ])
    batches = ek.rows(raw, 2)
    # a batch is a list of events, each event the rule's usual array
    assert batches[:2] == [[[{"i": 0}], [{"i": 1}], [{"i": 2}]], [[{"i": 3}], [{"i": 4}], [{"i": 5}]]]
    assert [r["i"] for r in ek.rows(rows, 6)[:6]] == [0, 1, 2, 3, 4, 5]


def test_linger_interval_flushes_a_partial_batch(ek):
    stream = ek.source_stream("s", 'CONF_KEY="tens"')
    out = ek.sink_file("out")
    # 1000 rows never fill in time: each flush is what lingered for 300 ms (about 15 rows at 20 ms)
    ek.rule("r", f"SELECT i FROM {stream}",
            [{ek.plugin.sym("raw"): {"path": str(out), "batchSize": 1000, "lingerInterval": 300}}])
    batches = ek.rows(out, 2)
    assert all(isinstance(b, list) and 1 <= len(b) < 1000 for b in batches)
    flat = [r["i"] for b in batches for event in b for r in event]
    assert flat[:3] == [0, 10, 20] and flat == sorted(flat)


def test_require_ack_delivers_every_message(ek):
    stream = counting_stream(ek)
    out = ek.sink_file("out")
    rule = ek.rule("r", f"SELECT i FROM {stream}",
                   [{ek.plugin.sym("rows"): {"path": str(out), "requireAck": True}}])
    got = ek.rows(out, 10)
    assert [r["i"] for r in got[:10]] == list(range(10))
    status = ek.server.status(rule)
    assert metric(status, "sink_", "_records_out_total") >= 5
    assert metric(status, "sink_", "_last_exception") == ""


def test_require_ack_is_matched_case_insensitively(ek):
    """eKuiper reads ``requireack`` as requireAck (MapToStruct is case-insensitive) and waits for each ack."""
    stream = counting_stream(ek)
    out = ek.sink_file("out")
    rule = ek.rule("r", f"SELECT i FROM {stream}",
                   [{ek.plugin.sym("rows"): {"path": str(out), "requireack": True}}])
    got = ek.rows(out, 10, timeout=20)
    assert [r["i"] for r in got[:10]] == list(range(10))
    wait_for(lambda: metric(ek.server.status(rule), "sink_", "_records_out_total") >= 5, 10, "acked records")


def test_ack_error_is_reported_as_sink_exception(ek):
    stream = counting_stream(ek)
    out = ek.sink_file("out")
    rule = ek.rule("r", f"SELECT i FROM {stream}",
                   [{ek.plugin.sym("raw"): {"path": str(out), "requireAck": True, "fail_on": 2}}])
    status = wait_for(lambda: (lambda s: s if metric(s, "sink_", "_exceptions_total") >= 1 else None)(
        ek.server.status(rule)), 20, "a sink exception")
    assert "cannot take row 2" in metric(status, "sink_", "_last_exception")
    assert status["status"] == "running"
    got = ek.rows(out, 4)
    assert [b[0]["i"] for b in got[:3]] == [0, 1, 3]
    assert all(b[0]["i"] != 2 for b in read_lines(out))
