"""Served functions against hostile and broken clients, over real sockets: framing tricks, slow and stuck peers,
bombs, clients that never read, descriptor exhaustion, stuck calls and bounded shutdown, on every protocol."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List

import msgpack
import pytest

from .conftest import wait_for
from .service_clients import CallFailed, GrpcClient, MsgpackClient, RestClient, Service, jsonpb

# short limits, so that each rule shows in a second or two
FAST = ("--call-timeout", "1", "--header-timeout", "1", "--body-timeout", "1", "--max-body", "65536",
        "--grace", "1")


PROTOCOLS = ["rest", "grpc", "msgpack-rpc"]


def client(protocol: str, port: int) -> Any:
    from .service_clients import PROTO

    if protocol == "grpc":
        return GrpcClient(port, str(PROTO))
    return RestClient(port) if protocol == "rest" else MsgpackClient(port)


@pytest.fixture(scope="module")
def rest() -> Iterator[Service]:
    svc = Service("rest", *FAST)
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def mrpc() -> Iterator[Service]:
    svc = Service("msgpack-rpc", *FAST)
    yield svc
    svc.stop()


def exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    """Send ``data`` on a new connection and read until the service closes it (or ``wait`` seconds pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        return read_until_closed(sock, wait)


def read_until_closed(sock: socket.socket, wait: float) -> bytes:
    got = b""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk
    raise AssertionError(f"the service kept the connection open; it sent {got!r}")


def statuses(data: bytes) -> List[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


# --- REST: framing ---------------------------------------------------------------------------------------------

def test_rest_refuses_content_length_beside_chunked_and_runs_no_smuggled_call(rest, tmp_path):
    """TE.CL smuggling: a front proxy honouring chunked forwards one request whose only chunk is a second request;
    a server honouring Content-Length (4: the chunk's size line) would run that second request on its own."""
    marker = tmp_path / "smuggled"
    hidden = jsonpb("nap", (str(marker), 0.0))
    smuggled = (b"POST /nap HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(hidden)).encode() + b"\r\n\r\n" + hidden)
    size = b"%x\r\n" % len(smuggled)
    assert len(size) == 4
    request = (b"POST /add HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + size + smuggled + b"\r\n0\r\n\r\n")
    answer = exchange(rest.port, request)
    assert statuses(answer) == [400], answer
    assert not marker.exists()


def test_rest_reads_a_chunked_body(rest):
    body = b'{"a": "2", "b": "40"}'
    request = (b"POST /add HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n" + b"%x\r\n" % 5 + body[:5] + b"\r\n" + b"%x\r\n" % (len(body) - 5)
               + body[5:] + b"\r\n0\r\n\r\n")
    answer = exchange(rest.port, request)
    assert statuses(answer) == [200] and answer.endswith(b"\r\n\r\n42"), answer


def test_rest_ends_heads_that_never_complete_and_serves_others(rest):
    slow = []
    for i in range(40):
        sock = socket.create_connection(("127.0.0.1", rest.port), timeout=5)
        sock.sendall(b"POST /add HTTP/1.1\r\nHost: x\r\n" if i % 2 else b"")  # half a head, or nothing at all
        slow.append(sock)
    client = RestClient(rest.port)
    try:
        assert client.call("add", 1, 2) == 3  # served while the slow ones wait
        for sock in slow:  # each is answered 408 and closed after --header-timeout (1 s)
            assert statuses(read_until_closed(sock, 5.0)) in ([408], []), "a connection was not ended"
    finally:
        client.close()
        for sock in slow:
            sock.close()


def test_rest_a_lying_content_length_is_ended_by_the_body_timeout(rest):
    request = (b"POST /add HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
               b'{"a": "1"')
    answer = exchange(rest.port, request)
    assert statuses(answer) == [408] and b"--body-timeout" in answer, answer


def test_rest_nested_json_is_a_bad_request_and_the_connection_serves_on(rest):
    client = RestClient(rest.port)
    try:
        with pytest.raises(CallFailed) as failed:
            client.call("add", body=b"{\"a\": " + b"[" * 30_000 + b"]" * 30_000 + b"}")
        assert failed.value.args[0] == 400 and "nests too deeply" in failed.value.args[1]
        assert client.call("add", 40, 2) == 42
    finally:
        client.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_rest_a_body_over_the_limit_is_refused_while_it_arrives(rest, chunked):
    body = b'{"text": "' + b"x" * 200_000 + b'"}'
    if chunked:
        head = b"POST /shout HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        request = head + b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 8192]), body[i:i + 8192])
                                  for i in range(0, len(body), 8192)) + b"0\r\n\r\n"
    else:
        request = b"POST /shout HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    try:
        answer = exchange(rest.port, request)
    except (BrokenPipeError, ConnectionResetError):
        return  # the service answered and closed before the rest was sent: refused while it arrived
    assert statuses(answer) == [413] and b"--max-body" in answer, answer


def test_rest_answers_other_methods_405(rest):
    answer = exchange(rest.port, b"GET /add HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert statuses(answer) == [405] and b"allow: post" in answer.lower()
    assert b"200" in exchange(rest.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_many_connections_queue_while_the_server_is_busy(protocol):
    """A backlog of 5 (the standard library's) leaves most of 64 simultaneous connections unanswered by the
    kernel while the server is busy; the service's backlog (2048 by default; grpc's own) holds them all."""
    svc = Service(protocol, *FAST)
    socks: List[socket.socket] = []
    try:
        os.kill(svc.proc.pid, signal.SIGSTOP)  # the service accepts nothing meanwhile: only the backlog holds them
        for _ in range(64):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", svc.port))
            socks.append(sock)
        time.sleep(0.5)  # a measurement window, not a synchronisation: the kernel completes handshakes at once
        established = sum(1 for s in socks if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                          and _connected(s))
        assert established == 64
    finally:
        os.kill(svc.proc.pid, signal.SIGCONT)
        for s in socks:
            s.close()
        svc.stop()


def _connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
        return True
    except OSError:
        return False


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_out_of_descriptors_the_server_neither_spins_nor_stays_stuck(protocol):
    svc = Service(protocol, *FAST, prefix=("prlimit", "--nofile=96"))
    held: List[socket.socket] = []
    try:
        for _ in range(160):  # more than the service can accept
            held.append(socket.create_connection(("127.0.0.1", svc.port), timeout=5))
        before = _cpu_seconds(svc.proc.pid)
        time.sleep(2.0)  # a measurement window: CPU used while out of descriptors
        used = _cpu_seconds(svc.proc.pid) - before
        assert used < 0.5, f"the service spent {used:.2f} s of CPU in 2 s while out of descriptors"
        for sock in held:
            sock.close()
        held.clear()
        assert wait_for(lambda: _answers(protocol, svc.port), timeout=10)  # descriptors came back: served
    finally:
        for sock in held:
            sock.close()
        svc.stop()


def _answers(protocol: str, port: int) -> bool:
    try:
        c = client(protocol, port)
    except OSError:
        return False
    try:
        return bool(c.call("add", 1, 1) == 2)
    except (OSError, CallFailed):
        return False
    finally:
        c.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- deadlines, on every protocol ------------------------------------------------------------------------------

def _deadline_error(protocol: str, failed: CallFailed) -> bool:
    expected = {"rest": 504, "grpc": "DEADLINE_EXCEEDED"}.get(protocol)
    text = str(failed.args[-1])
    return (expected is None or failed.args[0] == expected) and "deadline" in text


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_stuck_call_is_answered_by_its_deadline_while_others_are_served(protocol, tmp_path):
    svc = Service(protocol, *FAST)
    stuck, other = client(protocol, svc.port), client(protocol, svc.port)
    errors: List[CallFailed] = []
    marker = tmp_path / "started"

    def call_stuck() -> None:
        try:
            stuck.call("nap", str(marker), 3600.0)
        except CallFailed as exc:
            errors.append(exc)

    caller = threading.Thread(target=call_stuck)
    caller.start()
    try:
        assert wait_for(marker.exists, 10)
        assert other.call("add", 2, 3) == 5
        caller.join(10)
        assert not caller.is_alive() and len(errors) == 1 and _deadline_error(protocol, errors[0]), errors
        assert stuck.call("add", 1, 1) == 2  # the stuck call's connection serves on
    finally:
        stuck.close()
        other.close()
        assert svc.stop() == 1  # the stuck thread was still running: cut off
        assert "1 calls cut off" in "".join(svc.output)


def test_msgpack_stuck_calls_on_eKuipers_one_connection_do_not_starve_the_next(mrpc, tmp_path):
    c = MsgpackClient(mrpc.port)
    try:
        stuck = [c.send("nap", [str(tmp_path / f"m{i}"), 3600.0]) for i in range(8)]
        fast = c.send("add", [20, 22])
        first = c.receive()
        assert first == (fast, None, 42)  # answered while eight calls before it are stuck
        rest = [c.receive() for _ in stuck]
        assert sorted(m for m, _, _ in rest) == sorted(stuck)
        assert all(b"deadline" in error for _, error, _ in rest)
    finally:
        c.close()


def test_an_async_call_is_cancelled_at_its_deadline_and_nothing_is_left_running(tmp_path):
    svc = Service("rest", *FAST)
    c = RestClient(svc.port)
    try:
        with pytest.raises(CallFailed) as failed:
            c.call("snooze", str(tmp_path / "started"), 3600.0)
        assert _deadline_error("rest", failed.value)
    finally:
        c.close()
        assert svc.stop() == 0  # cancelled at its deadline: nothing was cut off at exit


def test_workers_replace_a_stuck_worker_and_serve_others(tmp_path):
    svc = Service("msgpack-rpc", "--workers", "2", *FAST)
    clients = [MsgpackClient(svc.port) for _ in range(3)]
    try:
        before = {clients[2].call("whoami") for _ in range(6)}
        ids = [clients[i].send("nap", [str(tmp_path / f"m{i}"), 3600.0]) for i in range(2)]
        for i, msgid in enumerate(ids):  # both workers stuck: each call is answered by its deadline
            got, error, _ = clients[i].receive()
            assert got == msgid and b"deadline" in error and b"worker process was replaced" in error
        # new workers serve, once started (a start may take longer than the 1 s deadline on a busy machine)
        assert wait_for(lambda: _try(clients[2].call, "add", 4, 5) == 9, 60)
        after = {clients[2].call("whoami") for _ in range(6)}
        assert not before & after, "the stuck workers were not replaced"
    finally:
        for c in clients:
            c.close()
        assert svc.stop() == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sigterm_ends_a_stuck_service_within_its_grace(protocol, tmp_path):
    svc = Service(protocol, "--call-timeout", "30", "--grace", "1")
    c = client(protocol, svc.port)
    marker = tmp_path / "started"
    caller = threading.Thread(target=lambda: _ignore(c.call, "nap", str(marker), 3600.0), daemon=True)
    caller.start()
    try:
        assert wait_for(marker.exists, 10)
        started = time.monotonic()
        svc.proc.send_signal(signal.SIGTERM)
        assert svc.proc.wait(timeout=15) == 1
        assert time.monotonic() - started < 10
        assert "1 calls cut off" in "".join(svc.output)
    finally:
        c.close()
        svc.stop()


def test_a_second_sigterm_cuts_off_at_once(tmp_path):
    svc = Service("msgpack-rpc", "--call-timeout", "30", "--grace", "600")
    c = MsgpackClient(svc.port)
    marker = tmp_path / "started"
    try:
        c.send("snooze", [str(marker), 3600.0])
        assert wait_for(marker.exists, 10)
        svc.proc.send_signal(signal.SIGTERM)
        assert wait_for(lambda: "SIGTERM: stopping" in "".join(svc.output), 10)
        svc.proc.send_signal(signal.SIGTERM)
        assert svc.proc.wait(timeout=15) == 1  # not the 600 s grace
        assert "second SIGTERM" in "".join(svc.output)
    finally:
        c.close()
        svc.stop()


def _try(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except CallFailed:
        return None


def _ignore(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        pass


# --- msgpack-rpc: malformed frames and a client that never reads -----------------------------------------------

def test_msgpack_a_map_keyed_by_a_list_fails_its_call_not_the_connection(mrpc):
    c = MsgpackClient(mrpc.port)
    try:
        c.sock.sendall(b"\x94\x00\x07\xa3add\x92\x81\x91\x01\x02\x03")  # [0, 7, "add", [{[1]: 2}, 3]]
        msgid, error, result = c.receive()
        assert msgid == 7 and result is None and b"map keys must be strings" in error
        assert c.call("add", 1, 2) == 3
    finally:
        c.close()


@pytest.mark.parametrize("frame", [
    [0, -1, "add", [1, 2]],
    [0, "7", "add", [1, 2]],
    [0, True, "add", [1, 2]],
    [0, 7, "add"],
    [5, 7, "add", [1, 2]],
    "not a request",
], ids=["negative-id", "text-id", "bool-id", "three-items", "type-5", "text"])
def test_msgpack_a_frame_without_a_usable_id_closes_only_its_connection(mrpc, frame):
    lines = len(mrpc.output)
    answer = exchange(mrpc.port, msgpack.packb(frame))
    assert answer == b""
    c = MsgpackClient(mrpc.port)
    try:
        assert c.call("add", 2, 2) == 4
    finally:
        c.close()
    assert wait_for(lambda: any("closing its connection" in line for line in mrpc.output[lines:]), 5)
    assert "Traceback" not in "".join(mrpc.output[lines:])


def test_msgpack_a_method_that_is_not_text_is_answered(mrpc):
    c = MsgpackClient(mrpc.port)
    try:
        c.sock.sendall(msgpack.packb([0, 9, 42, [1]]))
        assert c.receive()[:2] == (9, b"bad request: the method name must be a string, got int")
    finally:
        c.close()


@pytest.mark.parametrize("data", [b"\xc1" * 16, b"GET / HTTP/1.1\r\n\r\n", b"\xdd\xff\xff\xff\xff"],
                         ids=["never-used-byte", "http", "huge-array"])
def test_msgpack_bytes_that_are_not_msgpack_close_the_connection(mrpc, data):
    lines = len(mrpc.output)
    assert exchange(mrpc.port, data) == b""
    assert wait_for(lambda: any("closing its connection" in line for line in mrpc.output[lines:]), 5)
    assert "Traceback" not in "".join(mrpc.output[lines:])


def test_msgpack_a_message_over_the_limit_closes_the_connection(mrpc):
    frame = msgpack.packb([0, 1, "shout", ["x" * 100_000]])
    assert exchange(mrpc.port, frame) == b""


def test_msgpack_notifications_run_without_a_reply(mrpc, tmp_path):
    marker = tmp_path / "notified"
    c = MsgpackClient(mrpc.port)
    try:
        c.sock.sendall(msgpack.packb([2, "nap", [str(marker), 0.0]]))
        assert wait_for(marker.exists, 5)
        assert c.call("add", 1, 1) == 2  # the first reply on the connection is this call's
    finally:
        c.close()


def test_msgpack_a_client_that_never_reads_is_stopped_not_the_server(mrpc):
    rss_before = _rss_mib(mrpc.proc.pid)
    greedy = socket.create_connection(("127.0.0.1", mrpc.port))
    greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    payload = msgpack.packb([0, 1, "shout", ["x" * 60_000]])  # each reply is as large: 60 KB
    sent = 0
    greedy.settimeout(2.0)
    try:
        while sent < 256 * 1024 * 1024:
            greedy.sendall(payload)
            sent += len(payload)
    except socket.timeout:
        pass  # the service stopped reading this connection: its replies are not being read
    other = MsgpackClient(mrpc.port)
    try:
        assert other.call("add", 3, 4) == 7  # the server serves others meanwhile
    finally:
        other.close()
        greedy.close()
    assert sent < 64 * 1024 * 1024, f"{sent} bytes of calls were accepted from a client that reads nothing"
    grown = _rss_mib(mrpc.proc.pid) - rss_before
    assert grown < 48, f"the service grew by {grown:.0f} MiB"


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# --- gRPC -------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def grpc_svc() -> Iterator[Service]:
    svc = Service("grpc", *FAST)
    yield svc
    svc.stop()


def test_grpc_honours_a_client_deadline_shorter_than_its_own(grpc_svc, tmp_path):
    c = GrpcClient(grpc_svc.port, _proto())
    try:
        with pytest.raises(CallFailed) as failed:
            c.call("nap", str(tmp_path / "m"), 3600.0, timeout=0.3)
        assert failed.value.args[0] == "DEADLINE_EXCEEDED"
        assert c.call("add", 1, 2) == 3
    finally:
        c.close()


def test_grpc_a_message_over_the_limit_is_refused(grpc_svc):
    c = GrpcClient(grpc_svc.port, _proto())
    try:
        with pytest.raises(CallFailed) as failed:
            c.call("shout", "x" * 100_000)
        assert failed.value.args[0] == "RESOURCE_EXHAUSTED"
        assert c.call("shout", "ok") == "OK!"
    finally:
        c.close()


@pytest.mark.parametrize("data", [b"\x00" * 64, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                  b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64],
                         ids=["zeros", "http1", "bad-frames"])
def test_grpc_bytes_that_are_not_http2_close_the_connection_only(grpc_svc, data):
    exchange(grpc_svc.port, data, wait=15)
    c = GrpcClient(grpc_svc.port, _proto())
    try:
        assert c.call("add", 2, 2) == 4
    finally:
        c.close()


def test_grpc_a_connection_that_never_speaks_is_closed(grpc_svc):
    with socket.create_connection(("127.0.0.1", grpc_svc.port), timeout=15) as sock:
        read_until_closed(sock, 15)  # --header-timeout 1: the handshake never came


def _proto() -> str:
    from .service_clients import PROTO

    return str(PROTO)
