"""Plugin update, delete, and a plugin process killed under a running rule, on a real eKuiper."""

from __future__ import annotations

import os
import signal

from .rest import metric, read_lines, require_server, wait_for

require_server()


def versioned_rule(ek):
    stream = ek.source_stream("s")
    out = ek.sink_file("out")
    rule = ek.rule("r", f"SELECT i, version, {ek.plugin.sym('pid')}(i) AS pid FROM {stream}",
                   [{ek.plugin.sym("rows"): {"path": str(out)}}])
    return rule, out


def test_update_swaps_the_process_under_a_running_rule(own_ek):
    server, plugin = own_ek.server, own_ek.plugin
    rule, out = versioned_rule(own_ek)
    first = own_ek.rows(out, 3)
    assert {r["version"] for r in first} == {"1.0.0"}
    assert server.update(plugin.name, str(plugin.build("2.0.0"))) == f"portable plugin {plugin.name} is updated"
    assert server.plugin(plugin.name)[1]["version"] == "2.0.0"
    # the new process gets the rule's start commands replayed: rows of version 2 follow, same rule
    wait_for(lambda: any(r["version"] == "2.0.0" for r in read_lines(out)), 30, "rows from version 2.0.0")
    rows = read_lines(out)
    assert len({r["pid"] for r in rows if r["version"] == "2.0.0"}) == 1
    assert server.status(rule)["status"] == "running"
    assert server.plugin_status(plugin.name)["status"] == "running"


def test_delete_removes_every_symbol(own_ek):
    server, plugin = own_ek.server, own_ek.plugin
    stream = own_ek.source_stream("s")
    status, payload = server.uninstall(plugin.name)
    assert status == 200 and payload == f"portable plugin {plugin.name} is deleted"
    assert server.plugin(plugin.name)[0] == 404
    for sql in (f"SELECT {plugin.sym('scale')}(1) AS x FROM {stream}", f"SELECT * FROM {stream}"):
        status, payload = server.rule(f"{own_ek.prefix}_gone", sql, [{"nop": {}}])
        if status == 201:
            own_ek.rules.append(f"{own_ek.prefix}_gone")
        assert status == 400, (sql, payload)
    assert server.uninstall(plugin.name)[0] == 400


def kill_and_wait_reported(server, plugin, pid):
    os.kill(pid, signal.SIGKILL)
    status = wait_for(lambda: (lambda s: s if s["status"] == "error" else None)(server.plugin_status(plugin.name)),
                      10, "plugin status 'error'")
    assert status["errMsg"] == "signal: killed"


def test_killed_plugin_is_reported_and_a_rule_restart_recovers(own_ek):
    server, plugin = own_ek.server, own_ek.plugin
    stream = own_ek.source_stream("s")
    out = own_ek.sink_file("out")
    rule = own_ek.rule("r", f"SELECT i, pid FROM {stream}", [{plugin.sym("rows"): {"path": str(out)}}])
    pid = own_ek.rows(out, 3)[0]["pid"]
    kill_and_wait_reported(server, plugin, pid)
    # eKuiper has no supervisor: the rule stays "running" with no rows until it is restarted
    assert server.status(rule)["status"] == "running"
    server.ok("POST", f"/rules/{rule}/restart")
    wait_for(lambda: any(r["pid"] != pid for r in read_lines(out)), 30, "rows from a new plugin process")
    assert server.plugin_status(plugin.name)["status"] == "running"
    status = server.status(rule)
    assert status["status"] == "running" and metric(status, "sink_", "_last_exception") == ""


def test_killed_plugin_function_needs_a_reinstall(own_ek):
    """A rule calling a plugin function cannot be restarted after a kill: eKuiper validates the call first, on
    the dead process. Re-installing (PUT) starts a new process, and the rule restarts."""
    server, plugin = own_ek.server, own_ek.plugin
    rule, out = versioned_rule(own_ek)
    pid = own_ek.rows(out, 3)[0]["pid"]
    kill_and_wait_reported(server, plugin, pid)
    status, payload = server.call("POST", f"/rules/{rule}/restart")
    assert status == 400 and "signal: killed" in payload["message"], payload
    server.update(plugin.name, str(plugin.zip_path))
    server.ok("POST", f"/rules/{rule}/restart")
    wait_for(lambda: any(r["pid"] != pid for r in read_lines(out)), 30, "rows from a new plugin process")
    assert server.status(rule)["status"] == "running"
