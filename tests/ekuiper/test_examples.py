"""The bundled examples, exported as users export them and run under a real eKuiper.

They are installed under their own names (pysam, weather): a test is skipped when the server already has a
plugin of that name. eKuiper's control socket is /tmp/plugin_<name>.ipc, and a server keeps it bound after the
plugin is deleted, so another server on the same machine that once installed them makes the install fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from ..conftest import PYSAM, WEATHER
from .conftest import Scope, export_zip
from .rest import metric, read_lines, require_server, wait_for

require_server()


def install_example(server, source: Path, name: str, tmp: Path) -> Iterator[None]:
    if server.plugin(name)[0] == 200:
        pytest.skip(f"the server already has a plugin named {name}")
    server.install(name, str(export_zip(source, tmp / name)))
    yield
    server.uninstall(name)


@pytest.fixture
def pysam(server, tmp_path):
    yield from install_example(server, PYSAM, "pysam", tmp_path)


@pytest.fixture
def weather(server, tmp_path):
    yield from install_example(server, WEATHER, "weather", tmp_path)


def test_pysam_source_function_and_sink(pysam, ek: Scope):
    stream = ek.source_stream("s", source="pyjson")
    out = ek.sink_file("out")
    rule = ek.rule("r", f"SELECT name, revert(name) AS r, value FROM {stream}", [
        {ek.plugin.sym("rows"): {"path": str(out)}},
        {"print": {"requireAck": True, "sendSingle": True}},
    ])
    rows = ek.rows(out, 3)
    assert rows[0] == {"name": "pyjson", "r": "nosjyp", "value": 2021}
    wait_for(lambda: metric(ek.server.status(rule), "sink_print_", "_records_out_total") >= 3, 20,
             "print sink acks")
    status = ek.server.status(rule)
    assert status["status"] == "running"
    assert all(v == "" for k, v in status.items() if k.endswith("_last_exception")), status
    assert ek.server.plugin_status("pysam")["refCount"] == {rule: 2}


def test_weather_steady_rows_keep_every_sensor(weather, ek: Scope):
    """readings emits one row per sensor back to back; all must arrive.

    Its ``interval`` property (default 1.0 s) is its own, but eKuiper also reads a source's ``interval`` as a
    rate limit (1.0 -> 1 ms) that keeps only the last row of each tick."""
    stream = ek.source_stream("s", 'DATASOURCE="north"', source="readings")
    out = ek.sink_file("out")
    ek.rule("r", f"SELECT station, sensor, value, c_to_f(value) AS f, join_all('/', station, sensor) AS j "
                 f"FROM {stream}", [{ek.plugin.sym("rows"): {"path": str(out)}}])
    rows = ek.rows(out, 4, timeout=20)
    assert {r["station"] for r in rows} == {"north"}
    assert rows[0]["f"] == pytest.approx(rows[0]["value"] * 9 / 5 + 32)
    assert rows[0]["j"] == f"north/{rows[0]['sensor']}"
    assert {r["sensor"] for r in rows} == {"t1", "t2"}


def test_weather_aggregate_and_generator_sink(weather, ek: Scope):
    stream = ek.source_stream("s", 'CONF_KEY="fast"', source="readings")
    archive = ek.sink_file("archive")
    out = ek.sink_file("out")
    rule = ek.rule("r", f"SELECT spread(value) AS s, count(*) AS n FROM {stream} GROUP BY COUNTWINDOW(4)", [
        {ek.plugin.sym("rows"): {"path": str(out)}},
        {"archive": {"path": str(archive)}},
        {"alert": {"threshold": 100.0, "field": "s"}},
    ])
    rows = ek.rows(out, 2)
    assert rows[0] == {"s": 0.0, "n": 4}
    wait_for(lambda: len(read_lines(archive)) >= 2, 20, "archived rows")
    assert read_lines(archive)[0] == {"s": 0.0, "n": 4}
    status = ek.server.status(rule)
    assert all(v == "" for k, v in status.items() if k.endswith("_last_exception")), status
