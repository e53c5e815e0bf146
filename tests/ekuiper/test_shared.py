"""Dynamic properties and shared connections under a real eKuiper."""

from __future__ import annotations

from pathlib import Path

from .rest import read_lines, require_server, wait_for

require_server()


def _count(folder: Path, name: str) -> int:
    return len(read_lines(folder / name))


def test_a_dynamic_property_names_each_row_s_destination(ek):
    stream = ek.source_stream("s", 'DATASOURCE="d"')
    keep = ek.plugin.sym("keep")
    per_row, per_event = ek.tmp / "row", ek.tmp / "event"
    per_row.mkdir()
    per_event.mkdir()
    ek.rule("r", f"SELECT i, name FROM {stream}",
            [{keep: {"path": str(per_row), "table": "t{{.i}}", "sendSingle": True}},
             {keep: {"path": str(per_event), "table": '{{index . 0 "name"}}'}}])
    assert ek.rows(per_row / "t3.jsonl", 1)[0] == {"i": 3, "name": "n3"}
    assert ek.rows(per_event / "n3.jsonl", 1)[0] == {"i": 3, "name": "n3"}
    assert _count(per_row, "opened.log") == 1 and _count(per_event, "opened.log") == 1


def test_ekuiper_drops_what_its_template_fails_on_before_the_sink(ek):
    stream = ek.source_stream("s", 'DATASOURCE="d"')
    ek.rule("r", f"SELECT i FROM {stream}", [{ek.plugin.sym("keep"): {"path": str(ek.tmp), "table": "{{.i}}"}}])
    rule = ek.rules[-1]

    def transform_error() -> str:
        status = ek.server.status(rule)
        return next((v for k, v in status.items() if k.endswith("transform_0_last_exception") and v), "")

    error = wait_for(transform_error, 30, "the transform's exception")
    assert "can't evaluate field i in type []map[string]interface {}" in error
    assert not list(ek.tmp.glob("*.jsonl"))  # nothing reached the plugin's sink


def test_rules_naming_one_connection_share_one_client_in_the_plugin(ek):
    conn = ek.plugin.sym("db")  # the source's confKey 'pooled' names it
    folder = ek.tmp / "shared"
    folder.mkdir()
    ek.server.ok("POST", "/connections", {"id": conn, "typ": ek.plugin.sym("keep"), "props": {"path": str(folder)}})
    try:
        stream = ek.source_stream("s", 'DATASOURCE="d"')
        follow = ek.stream("f", f'TYPE="{ek.plugin.sym("follow")}", CONF_KEY="pooled", FORMAT="JSON"')
        for n in range(4):
            ek.rule(f"r{n}", f"SELECT i FROM {stream}",
                    [{ek.plugin.sym("keep"): {"connectionSelector": conn, "table": f"rule{n}"}}])
        ek.rule("f", f"SELECT path, pid FROM {follow}",
                [{ek.plugin.sym("keep"): {"connectionSelector": conn, "table": "follow"}}])
        for n in range(4):
            ek.rows(folder / f"rule{n}.jsonl", 2)
        followed = ek.rows(folder / "follow.jsonl", 2)
        assert followed[0]["path"] == str(folder)
        assert read_lines(folder / "opened.log") == [followed[0]["pid"]]  # one client in the plugin process
        for rule in list(ek.rules):
            ek.server.drop_rule(rule)
        ek.rules.clear()
        wait_for(lambda: _count(folder, "closed.log") == 1, 30, "the client closed after the last rule")
        assert _count(folder, "opened.log") == 1
    finally:
        ek.server.call("DELETE", f"/connections/{conn}")
