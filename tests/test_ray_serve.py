"""The REST service on Ray Serve (``ekdsl.service.ray_serve``), on a local Ray cluster started here and torn down.

Opt-in and slow to start (``pip install -e '.[ray]'``, then ``python -m pytest -m ray -n 0``). Each deployment is an
application of its own under ``/<name>``; eKuiper's REST executor would have the same path in the service's address.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set

import pytest

serve = pytest.importorskip("ray.serve", reason="Ray Serve is not installed: pip install -e '.[ray]'")

from ekdsl.errors import UsageError  # noqa: E402
from ekdsl.host import Emulator  # noqa: E402
from ekdsl.service.ray_serve import app, settings  # noqa: E402

from .conftest import ROOT, SOAK_FIGURES, wait_for  # noqa: E402
from .ray_local import QUIET, Cluster, local_cluster  # noqa: E402
from .service_clients import PLUGIN, CallFailed, RestClient  # noqa: E402
from .test_service import CASES, portable, unwrap  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore:The `metrics_interval_s` field:DeprecationWarning")]


def test_replica_benchmark_runs(tmp_path):
    """benchmarks/ray_replicas.py, briefly and with one replica count, on a cluster of its own (first: none other
    runs yet)."""
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "benchmarks/ray_replicas.py", "--seconds", "0.3", "--replicas", "2",
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    assert sorted(results) == sorted(f"{server}|{call}|{clients}" for server in ("uvicorn, 1 proc", "ray, 2 replicas")
                                     for call in ("add", "burn") for clients in (1, 8))
    assert all(r["calls"] > 0 for r in results.values())


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with local_cluster(num_cpus=4) as running:
        yield running


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The test plugin as a portable plugin, the judge of the answers."""
    with Emulator(str(PLUGIN), socket_dir=str(tmp_path_factory.mktemp("sock"))) as emu:
        yield emu


@contextlib.contextmanager
def deployed(name: str, **args: str) -> Iterator[str]:
    """The test plugin deployed as application ``name`` under ``/name`` (half a CPU per replica); its prefix."""
    serve.run(app({"target": str(PLUGIN), "num_cpus": "0.5", **args}), name=name, route_prefix=f"/{name}")
    try:
        yield f"/{name}"
    finally:
        if name in serve.status().applications:  # gone when a docs command ended Serve
            serve.delete(name)


def replicas(name: str) -> Dict[str, int]:
    """Replicas of application ``name`` by state (``RUNNING``, ``STARTING`` ...)."""
    states = serve.status().applications[name].deployments["ekdsl"].replica_states
    return {str(getattr(state, "value", state)): count for state, count in states.items()}


@pytest.fixture(scope="module")
def two(cluster: Cluster) -> Iterator[str]:
    """Two replicas, a 1 s call deadline and a 4 KiB body limit."""
    with deployed("two", num_replicas="2", call_timeout="1", max_body="4096") as prefix:
        yield prefix


@pytest.mark.parametrize(("name", "args"), CASES, ids=[f"{n}{len(a)}" for n, a in CASES])
def test_ray_answers_as_the_portable_runtime(cluster, two, emulator, name, args):
    c = RestClient(cluster.port, prefix=two)
    try:
        got = unwrap(name, c.call(name, *args))
    finally:
        c.close()
    assert (True, got) == portable(emulator, name, args)


def test_two_replicas_share_the_calls(cluster, two):
    clients = [RestClient(cluster.port, prefix=two) for _ in range(4)]
    pids = {c.call("whoami") for _ in range(15) for c in clients}
    for c in clients:
        c.close()
    assert len(pids) == 2 and os.getpid() not in pids
    SOAK_FIGURES.append(("ray", f"2 replicas: 60 calls from 4 clients served by processes {sorted(pids)}"))


def _raw(port: int, data: bytes) -> bytes:
    """Send ``data``, read the answer until the server closes (it does, after refusing a request)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return answer
            answer += chunk


def test_errors_deadlines_and_limits_as_the_service_answers_them(cluster, two, emulator, tmp_path):
    c = RestClient(cluster.port, prefix=two)
    other = RestClient(cluster.port, prefix=two)
    try:
        with pytest.raises(CallFailed) as failed:
            c.call("boom", 7)
        assert failed.value.args[0] == 500 and portable(emulator, "boom", (7,))[1] in failed.value.args[1]
        with pytest.raises(CallFailed) as failed:
            c.call("add", body=b'{"a": "1", "b": "2", "c": "3"}')
        assert failed.value.args == (400, "add() has no parameter 'c': it takes a, b")
        with pytest.raises(CallFailed) as failed:
            c.call("nosuch")
        assert failed.value.args[0] == 404 and "no function 'nosuch'" in failed.value.args[1]
        answers: List[Any] = []
        stuck = threading.Thread(target=lambda: answers.append(_failure(c, "nap", str(tmp_path / "m"), 30.0)))
        stuck.start()
        assert wait_for((tmp_path / "m").exists, 10)
        assert other.call("add", 20, 22) == 42  # served while the stuck call waits for its deadline
        stuck.join(10)
        assert answers == [(504, "nap() did not answer within its 1 s deadline (the service's --call-timeout)")]
        assert c.call("add", 1, 2) == 3
        c.conn.request("GET", f"{two}/healthz")
        health = c.conn.getresponse()
        assert (health.status, health.read()) == (200, b"ok")
    finally:
        c.close()
        other.close()
    big = _raw(cluster.port, f"POST {two}/add HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n".encode()
               + b" " * 5000)
    assert big.startswith(b"HTTP/1.1 413 ") and b"over the service's limit of 4096 bytes" in big
    chunks = b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    big = _raw(cluster.port, f"POST {two}/add HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
               + chunks)
    assert big.startswith(b"HTTP/1.1 413 ")
    smuggled = _raw(cluster.port, f"POST {two}/add HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode())
    assert smuggled.startswith(b"HTTP/1.1 400 ")  # Ray's proxy refuses conflicting framing


def _failure(c: RestClient, method: str, *args: Any) -> Any:
    try:
        return c.call(method, *args)
    except CallFailed as exc:
        return exc.args


def test_a_replica_dying_mid_call_fails_that_call_and_is_replaced(cluster, two):
    c = RestClient(cluster.port, timeout=20, prefix=two)
    before = {c.call("whoami") for _ in range(20)}
    t0 = time.monotonic()
    with pytest.raises(CallFailed) as failed:
        c.call("crash", 3)
    answered = time.monotonic() - t0
    status, text = failed.value.args
    assert 500 <= status <= 599 and text.strip()
    c.close()
    c = RestClient(cluster.port, timeout=20, prefix=two)
    assert [c.call("add", i, 1) for i in range(20)] == [i + 1 for i in range(20)]  # the other replica serves on
    seen: Set[int] = set()

    def new_pid() -> Set[int]:
        seen.add(c.call("whoami"))
        return seen - before

    assert wait_for(new_pid, 90, 0.1)  # a replacement serves
    replaced = time.monotonic() - t0
    assert wait_for(lambda: replicas("two") == {"RUNNING": 2}, 30, 0.2), replicas("two")
    c.close()
    SOAK_FIGURES.append(("ray", f"a replica died mid-call: answered {status} {text!r} after {answered:.2f} s; the "
                                f"other served on; a replacement served {replaced:.1f} s after the crash"))


def test_autoscaling_stays_within_its_bounds_under_load(cluster, tmp_path):
    scaling = {"min_replicas": "1", "max_replicas": "2", "target_ongoing_requests": "1", "upscale_delay_s": "0",
               "downscale_delay_s": "1", "look_back_period_s": "1", "metrics_interval_s": "0.5"}
    with deployed("auto", max_ongoing_requests="4", **scaling) as prefix:
        samples: List[int] = []
        peaks: List[int] = []
        stop = threading.Event()
        errors: List[str] = []

        def load(k: int) -> None:
            c = RestClient(cluster.port, timeout=20, prefix=prefix)
            try:
                while not stop.is_set():
                    c.call("nap", str(tmp_path / f"m{k}"), 0.2)
            except Exception as exc:  # collected, the test fails below
                errors.append(repr(exc))
            finally:
                c.close()

        def running() -> int:
            states = replicas("auto")
            samples.append(states.get("RUNNING", 0))
            peaks.append(samples[-1] + states.get("STARTING", 0))  # a replica beyond the bound would start first
            return samples[-1]

        assert running() == 1
        t0 = time.monotonic()
        threads = [threading.Thread(target=load, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        try:
            assert wait_for(lambda: running() == 2, 60, 0.2), samples[-5:]
            up = time.monotonic() - t0
            end = time.monotonic() + 5  # six clients want six replicas: the bound holds at two
            while time.monotonic() < end:
                running()
                time.sleep(0.2)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        t1 = time.monotonic()
        assert wait_for(lambda: running() == 1, 60, 0.2), samples[-5:]
        down = time.monotonic() - t1
        assert errors == []
        assert min(samples) == 1 and max(samples) == 2 and max(peaks) == 2
    SOAK_FIGURES.append(("ray", f"autoscaling 1..2 replicas, 6 clients: 2 after {up:.1f} s, back to 1 {down:.1f} s "
                                f"after the load; {len(samples)} samples, none outside 1..2"))


@pytest.mark.parametrize(("args", "error"), [
    ({}, "no plugin to serve: pass target=plugin.py"),
    ({"target": "p.py", "replicas": "2"}, "unknown argument replicas=: ekdsl.service.ray_serve:app takes target="),
    ({"target": "p.py", "num_replicas": "2", "max_replicas": "4"}, "num_replicas= fixes the replicas"),
    ({"target": "p.py", "num_replicas": "0"}, "num_replicas='0' must be a whole number above 0"),
    ({"target": "p.py", "num_replicas": "1.5"}, "num_replicas='1.5' must be a whole number above 0"),
    ({"target": "p.py", "num_cpus": "none"}, "num_cpus='none' must be a number above 0"),
    ({"target": "p.py", "max_ongoing_requests": "inf"}, "max_ongoing_requests='inf' must be a whole number above 0"),
    ({"target": "p.py", "call_timeout": "0"}, "call_timeout must be a positive number of seconds"),
    ({"target": "p.py", "max_body": "big"}, "max_body='big' is not a valid int"),
    ({"target": "p.py", "min_replicas": "3", "max_replicas": "2"}, "Ray refused the autoscaling arguments"),
])
def test_arguments_are_checked_before_anything_is_deployed(args, error):
    with pytest.raises(UsageError) as refused:
        settings(args)
    assert error in str(refused.value)


def test_arguments_from_a_config_file_may_be_numbers():
    chosen = settings({"target": "p.py", "min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 2.5,
                       "max_ongoing_requests": 8, "num_cpus": 0.25, "call_timeout": 2})
    scaling = chosen.deployment["autoscaling_config"]
    assert (scaling.min_replicas, scaling.max_replicas, scaling.target_ongoing_requests) == (1, 4, 2.5)
    assert chosen.deployment["max_ongoing_requests"] == 8 and "num_replicas" not in chosen.deployment
    assert chosen.deployment["ray_actor_options"] == {"num_cpus": 0.25}
    assert chosen.options.call_timeout == 2.0


def test_a_plugin_that_cannot_load_fails_the_deployment_with_its_error(cluster):
    with pytest.raises(RuntimeError):
        serve.run(app({"target": "/nonexistent/plugin.py", "num_cpus": "0.5"}), name="broken",
                  route_prefix="/broken")
    try:
        message = serve.status().applications["broken"].deployments["ekdsl"].message
        assert "cannot load '/nonexistent/plugin.py': no such file" in message
    finally:
        serve.delete("broken")


DOCS = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def _serve_run_lines() -> List[Any]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for kind, body in FENCE.findall(text):
            found += [pytest.param(doc, line[2:], id=doc.name) for line in body.splitlines()
                      if kind == "console" and line.startswith("$ serve run ")]
    return found


@pytest.mark.parametrize(("doc", "command"), _serve_run_lines())
def test_docs_serve_run_commands_deploy(cluster, doc, command, tmp_path):
    """Each ``$ serve run`` line of the docs, with the page's ``# file:`` blocks in its folder, run against this
    cluster (last: its Ctrl-C ends Serve)."""
    for kind, body in FENCE.findall(doc.read_text(encoding="utf-8")):
        named = re.match(r"^# file: (\S+)\n", body)
        if kind == "python" and named:
            (tmp_path / named.group(1)).write_text(body, encoding="utf-8")
    argv = [str(Path(sys.executable).parent / "serve"), *shlex.split(command)[1:]]  # Ray's command, beside python
    env = {**os.environ, **QUIET, "RAY_ADDRESS": cluster.address}
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: List[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        assert wait_for(lambda: _health(cluster.port) or proc.poll() is not None, 120, 0.5)
        assert proc.poll() is None, "".join(output)
        conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=10)
        conn.request("POST", "/nosuch", body=b"{}")
        answer = conn.getresponse()
        listing = answer.read().decode()
        conn.close()
        assert answer.status == 404 and "this service has " in listing and "has none" not in listing, listing
        proc.send_signal(signal.SIGINT)  # serve run's Ctrl-C: it shuts Serve down and exits
        try:  # Ray's own shutdown, which now and then hangs on a busy machine (then it is killed below)
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        serve.start(http_options={"host": "127.0.0.1", "port": cluster.port})  # as the other tests expect it


def _health(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False
