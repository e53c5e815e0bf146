"""ctx.state on a real eKuiper: the filetail example goes on from its position after a kill -9 of the plugin and
a rule restart, and after a plugin update, with nothing twice and nothing missing."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from .conftest import export_zip
from .rest import read_lines, require_server, wait_for

require_server()

FILETAIL = Path(__file__).resolve().parents[2] / "examples" / "filetail" / "filetail.py"


def plugin_pid(name: str) -> int:
    """The process of plugin ``name`` (one server on this machine can run a plugin of that name)."""
    me = f"/plugins/portable/{name}/main.py"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if me in Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " "):
                return int(pid)
        except OSError:
            continue
    raise AssertionError(f"no process runs {me}")


def test_filetail_resumes_after_a_kill_and_an_update(ek, tmp_path):
    server = ek.server
    zip_path = export_zip(FILETAIL, tmp_path / "dist")
    status, _ = server.call("GET", "/plugins/portables/filetail")
    assert status == 404, "a plugin named filetail is installed already: uninstall it first"
    server.install("filetail", str(zip_path))
    data = Path("/tmp") / f"ekdsl-state-{uuid.uuid4().hex[:8]}.jsonl"
    data.write_text("")
    written, stop = [0], threading.Event()

    def writer() -> None:
        with data.open("a") as fh:
            while not stop.is_set():
                fh.write(json.dumps({"i": written[0]}) + "\n")
                fh.flush()
                written[0] += 1
                time.sleep(0.02)

    out = ek.sink_file("out")
    try:
        stream = ek.stream("tail", f'TYPE="jsonl_tail", DATASOURCE="{data.name}", CONF_KEY="fast", FORMAT="JSON"')
        rule = ek.rule("r", f"SELECT i FROM {stream}", [{ek.plugin.sym("rows"): {"path": str(out)}}])
        wait_for(lambda: server.status(rule)["status"] == "running", 30, "the rule running")
        time.sleep(1)  # its first start has looked at the empty file
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        ek.rows(out, 100)
        os.kill(plugin_pid("filetail"), signal.SIGKILL)
        wait_for(lambda: server.plugin_status("filetail")["status"] == "error", 10, "the plugin reported killed")
        server.ok("POST", f"/rules/{rule}/restart")  # eKuiper replays the start, then the rule's own follows
        ek.rows(out, len(read_lines(out)) + 100)
        server.update("filetail", str(zip_path))
        ek.rows(out, len(read_lines(out)) + 100)
        stop.set()
        thread.join(5)
        wait_for(lambda: (read_lines(out) or [{"i": -1}])[-1]["i"] == written[0] - 1, 30, "every line")
    finally:
        stop.set()
        for rule_id in ek.rules:
            server.drop_rule(rule_id)
        ek.rules.clear()
        server.uninstall("filetail")
        data.unlink()
    seen = [r["i"] for r in read_lines(out)]
    assert [i for i, n in Counter(seen).items() if n > 1] == []
    assert sorted(seen) == list(range(written[0]))
    assert seen == sorted(seen)
