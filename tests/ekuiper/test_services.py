"""Functions served by ``python -m ekdsl service`` and called by a real eKuiper, one protocol at a time.

For each protocol a copy of ``tests/plugins/svcfuncs.py`` under a name unique to the run (its functions too) is
served on a free loopback port, exported with ``export --service`` for that address and registered with
``deploy install --service``. Rules read rows from a ``simulator`` stream and write what they select through the
e2e plugin's ``rows`` sink. Checked: the golden cases of ``tests/test_service.py`` give what the portable plugin
gives; a stuck call and a raising call are rule errors (the stuck one answered by the service's deadline, not by
eKuiper's 5 s timeout) while a rule calling another function of the same service keeps producing rows; an integer
past int64 is an error, not a wrapped bigint; a rule calls the service again once it is back after a restart.

rest and grpc run against ``EKDSL_EKUIPER_URL`` (a release build speaks both); msgpack-rpc needs an eKuiper built
with ``-tags msgpack``, named by ``EKDSL_EKUIPER_MSGPACK_URL`` (it may be the same server), and is skipped
without it. The server must allow services on loopback (``basic.enablePrivateNet: true``)::

    EKDSL_EKUIPER_URL=http://127.0.0.1:9081 EKDSL_EKUIPER_MSGPACK_URL=http://127.0.0.1:9091 \\
        python -m pytest tests/ekuiper/test_services.py -n 0 -v
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest

from ekdsl.host import Emulator

from ..conftest import ROOT
from ..service_clients import PLUGIN, Service
from ..test_service import CASES, portable, unwrap
from .conftest import E2EPlugin, Scope, _installed
from .rest import Server, metric, read_lines, require_server, wait_for

require_server()

MSGPACK_URL_ENV = "EKDSL_EKUIPER_MSGPACK_URL"
CALL_TIMEOUT = 1.0  # the service's deadline; eKuiper's rest and grpc executors wait 5 s
NAP = 8.0  # a stuck call sleeps longer than both
PERIOD = "100ms"  # the simulator's interval between rows


def ekdsl(*args: str) -> str:
    """Run ``python -m ekdsl ARGS`` from this checkout; its stdout (the test fails on a non-zero exit)."""
    proc = subprocess.run([sys.executable, "-m", "ekdsl", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, f"ekdsl {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def unique_copy(folder: Path, name: str) -> Path:
    """``svcfuncs.py`` as plugin ``name``, each function renamed ``<name>_<function>`` (eKuiper's function names are
    global, and its executors are pooled by service name for as long as it runs)."""
    text = PLUGIN.read_text(encoding="utf-8")
    assert 'Plugin("svcfuncs"' in text
    text = text.replace('Plugin("svcfuncs"', f'Plugin("{name}"')
    text, n = re.subn(r"@plugin\.function\n((?:async )?def (\w+))",
                      lambda m: f'@plugin.function(name="{name}_{m.group(2)}")\n{m.group(1)}', text)
    assert n >= 10, "svcfuncs.py no longer declares its functions with a bare @plugin.function"
    path = folder / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    return path


def serve(protocol: str, source: Path, *extra: str) -> Service:
    """``python -m ekdsl service`` of ``source`` on a free loopback port (or ``--listen`` in ``extra``)."""
    return Service(protocol, "--call-timeout", f"{CALL_TIMEOUT:g}", "--grace", "1", *extra, plugin=source)


@dataclass
class Deployed:
    """One protocol's service, registered with one eKuiper, and a simulator stream of ``rows``."""

    protocol: str
    name: str
    server: Server
    sink: E2EPlugin
    service: Service
    source: Path
    tmp: Path
    stream: str = ""

    def fn(self, function: str) -> str:
        return f"{self.name}_{function}"

    def scope(self, suffix: str) -> Scope:
        return Scope(self.server, self.sink, self.tmp, f"{self.name}_{suffix}")

    def rule(self, scope: Scope, suffix: str, select: str) -> Path:
        """A rule ``SELECT <select> FROM <stream>`` writing to a rows sink; the sink's file."""
        out = scope.sink_file(f"{self.protocol}_{suffix}")
        scope.rule(suffix, f"SELECT {select} FROM {self.stream}", [{self.sink.sym("rows"): {"path": str(out)}}])
        return out


def _rows(marker: Path) -> List[Dict[str, Any]]:
    """The simulator's rows: ``n`` counts, ``c<j>_<k>`` is argument k of golden case j (bytes as base64, which
    SQL decodes), ``marker`` is the file a ``nap`` call creates."""
    base: Dict[str, Any] = {"marker": str(marker)}
    for j, (_name, args) in enumerate(CASES):
        for k, arg in enumerate(args):
            base[f"c{j}_{k}"] = base64.b64encode(arg).decode() if isinstance(arg, bytes) else arg
    return [dict(base, n=n) for n in range(10)]


def _servers(server: Server) -> Dict[str, Server]:
    found = {"rest": server, "grpc": server}
    url = os.environ.get(MSGPACK_URL_ENV, "")
    if url:
        found["msgpack-rpc"] = server if url.rstrip("/") == server.url else Server(url)
    return found


@pytest.fixture(scope="module")
def sinks(server: Server, plugin: E2EPlugin, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Callable[[Server], E2EPlugin]]:
    """The e2e plugin (for its rows sink) installed on a server: the session's on ``EKDSL_EKUIPER_URL``."""
    installed = {server.url: plugin}
    with ExitStack() as stack:
        def get(srv: Server) -> E2EPlugin:
            if srv.url not in installed:
                srv.ok("GET", "/ping")
                installed[srv.url] = stack.enter_context(
                    contextmanager(_installed)(srv, tmp_path_factory.mktemp("e2e")))
            return installed[srv.url]

        yield get


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The same functions as a portable plugin, under the emulator."""
    with Emulator(str(PLUGIN), socket_dir=str(tmp_path_factory.mktemp("sock"))) as emu:
        yield emu


@pytest.fixture(scope="module", params=["rest", "grpc", "msgpack-rpc"])
def deployed(request: pytest.FixtureRequest, server: Server, sinks: Callable[[Server], E2EPlugin],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    protocol = request.param
    target = _servers(server).get(protocol)
    if target is None:
        pytest.skip(f"msgpack-rpc needs an eKuiper built with -tags msgpack: set {MSGPACK_URL_ENV}")
    name = "svc" + uuid.uuid4().hex[:8]
    tmp = tmp_path_factory.mktemp(name)
    source = unique_copy(tmp, name)
    dep = Deployed(protocol, name, target, sinks(target), serve(protocol, source), source, tmp)
    with ExitStack() as cleanup:
        cleanup.callback(lambda: dep.service.stop())  # the one running then (a test may restart it)
        ekdsl("export", str(source), "-o", str(tmp / "dist"), "--service", f"127.0.0.1:{dep.service.port}",
              "--protocol", protocol)
        ekdsl("deploy", "install", str(tmp / "dist" / f"{name}.service.zip"), "--service", "--server", target.url)
        cleanup.callback(ekdsl, "deploy", "delete", name, "--service", "--server", target.url)
        key = f"{name}rows"
        target.ok("PUT", f"/metadata/sources/simulator/confKeys/{key}",
                  {"data": _rows(tmp / "nap-started"), "interval": PERIOD, "loop": True})
        cleanup.callback(target.call, "DELETE", f"/metadata/sources/simulator/confKeys/{key}")
        streams = dep.scope("s")
        cleanup.callback(streams.close)
        dep.stream = streams.stream("rows", f'TYPE="simulator", CONF_KEY="{key}"')
        yield dep


def _sql_args(j: int, args: Tuple[Any, ...]) -> str:
    return ", ".join(f'decode(c{j}_{k}, "base64")' if isinstance(a, bytes) else f"c{j}_{k}"
                     for k, a in enumerate(args))


def _as_json(value: Any) -> Any:
    """A value as eKuiper's JSON writes it (Go's ``[]byte`` as base64)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return json.loads(json.dumps(value))


def test_golden_cases_give_what_the_portable_plugin_gives(deployed, emulator):
    scope = deployed.scope("golden")
    try:
        select = ", ".join(f"{deployed.fn(name)}({_sql_args(j, args)}) AS r{j}" for j, (name, args) in enumerate(CASES))
        out = deployed.rule(scope, "golden", "n, " + select)
        row = scope.rows(out, 1)[0]
    finally:
        scope.close()
    got = {name + repr(args): unwrap(name, row[f"r{j}"]) for j, (name, args) in enumerate(CASES)}
    expected = {}
    for name, args in CASES:
        ok, value = portable(emulator, name, args)
        assert ok, value
        expected[name + repr(args)] = _as_json(value)
    assert got == expected


def status(server: Server, rule_id: str) -> Tuple[int, str]:
    """(exceptions, last exception) of a rule's project operator."""
    st = server.status(rule_id)
    return metric(st, "op_", "_project_0_exceptions_total"), metric(st, "op_", "_project_0_last_exception")


def test_stuck_and_raising_calls_are_rule_errors_while_another_rule_produces(deployed, emulator):
    scope = deployed.scope("errors")
    stuck, raising = f"{scope.prefix}_stuck", f"{scope.prefix}_raising"
    try:
        steady = deployed.rule(scope, "steady", f"n, {deployed.fn('add')}(n, 1000) AS r")
        scope.rows(steady, 3)
        deployed.rule(scope, "stuck", f"{deployed.fn('nap')}(marker, {NAP}) AS r")
        deployed.rule(scope, "raising", f"{deployed.fn('boom')}(7) AS r")
        wait_for(lambda: status(deployed.server, stuck)[0] >= 2 and status(deployed.server, raising)[0] >= 2, 30,
                 "errors of the stuck and the raising rules")
        before = len(read_lines(steady))
        failures = status(deployed.server, stuck)[0]
        wait_for(lambda: status(deployed.server, stuck)[0] >= failures + 2, 30, "more calls past their deadline")
        during = read_lines(steady)
        stuck_status, raising_status = status(deployed.server, stuck), status(deployed.server, raising)
    finally:
        scope.close()
    print(f"\n{deployed.protocol}: stuck {stuck_status!r}\nraising {raising_status!r}\n"
          f"steady rows {before} -> {len(during)}")
    assert (deployed.tmp / "nap-started").exists()  # the stuck call reached the function
    assert len(during) >= before + 5, "the rule calling add stalled while the others failed"
    assert all(r["r"] == r["n"] + 1000 for r in during)
    ok, error = portable(emulator, "boom", (7,))
    assert not ok and error in raising_status[1]
    # the service's deadline, not eKuiper's 5 s: the http client's timeout, or the grpc executor's (executors.go)
    assert f"nap() did not answer within its {CALL_TIMEOUT:g} s deadline" in stuck_status[1]
    assert "Client.Timeout" not in stuck_status[1] and f"invoke {deployed.fn('nap')} timeout" not in stuck_status[1]


def first(deployed: Deployed, scope: Scope, suffix: str, select: str) -> Tuple[Any, str]:
    """The first row of a new rule, or (None, its last error) once it has failed twice."""
    out = deployed.rule(scope, suffix, select)
    rule_id = f"{scope.prefix}_{suffix}"
    found = wait_for(lambda: read_lines(out)[:1] or status(deployed.server, rule_id)[0] >= 2, 30,
                     f"a row or errors of {rule_id}")
    return (found[0], "") if isinstance(found, list) else (None, status(deployed.server, rule_id)[1])


def test_an_integer_past_int64_is_a_rule_error_not_a_wrapped_bigint(deployed):
    """eKuiper casts results to int64 unchecked (pkg/cast/cast.go ToInt64) and reads rest JSON replies as float64:
    without the service's check 2**63 came back as -2**63 over rest and msgpack-rpc."""
    top = 2**63 - 1
    scope = deployed.scope("ints")
    try:
        past = first(deployed, scope, "past", f"{deployed.fn('ipow')}(2, 63) AS r")
        wrapper = first(deployed, scope, "wrapper", f"{deployed.fn('ipow')}({top}, 1) AS r")
        listed = first(deployed, scope, "list", f"{deployed.fn('ipows')}({top}, array_create(1)) AS r")
    finally:
        scope.close()
    assert past[0] is None and f"{deployed.fn('ipow')}() returned 9223372036854775808, past int64" in past[1]
    assert wrapper == ({"r": top}, "")  # a rest wrapper travels as text: exact
    if deployed.protocol == "rest":
        assert listed[0] is None and "9223372036854775807 in result[0] rounds past int64" in listed[1]
    else:
        assert listed == ({"r": {"result": [top]}}, "")


def test_a_rule_recovers_when_the_service_restarts(deployed):
    """eKuiper's rest client dials again per request and its grpc connection reconnects by itself (with backoff)."""
    if deployed.protocol == "msgpack-rpc":
        pytest.skip("eKuiper's msgpack-rpc executor keeps its lock when it cannot dial again "
                    "(internal/service/executors_msgpack.go InvokeFunction returns without Unlock): one call while "
                    "the service is down hangs every later call of that service until kuiperd restarts")
    scope = deployed.scope("restart")
    rule_id = f"{scope.prefix}_steady"
    try:
        out = deployed.rule(scope, "steady", f"n, {deployed.fn('add')}(n, 1000) AS r")
        scope.rows(out, 3)
        port = deployed.service.port
        deployed.service.stop()
        wait_for(lambda: "connection refused" in status(deployed.server, rule_id)[1], 30,
                 "calls refused while the service is down")
        count = len(read_lines(out))
        deployed.service = serve(deployed.protocol, deployed.source, "--listen", f"127.0.0.1:{port}")
        rows = scope.rows(out, count + 5, timeout=60)
    finally:
        scope.close()
    assert all(r["r"] == r["n"] + 1000 for r in rows)
