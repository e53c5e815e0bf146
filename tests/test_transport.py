"""Both transports: the SP wire pinned with golden bytes, and the native sockets against pynng peers."""

from __future__ import annotations

import os
import stat
import tempfile
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ekdsl.errors import ProtocolError, TransportError
from ekdsl.transport import BadState, Closed, Timeout, open_socket
from ekdsl.transport.sp import CHUNK, MAX_MESSAGE, PEER, FrameReader, check_header, conn_header, frame

from .conftest import wait_for


def test_sp_golden_bytes():
    assert conn_header("req") == b"\x00SP\x00\x00\x30\x00\x00"
    assert conn_header("pull") == b"\x00SP\x00\x00\x51\x00\x00"
    assert frame(b"ok") == b"\x01\x00\x00\x00\x00\x00\x00\x00\x02ok"
    assert frame(b"hi", b"\x80\x00\x00\x01") == b"\x01" + (6).to_bytes(8, "big") + b"\x80\x00\x00\x01hi"
    check_header(conn_header("rep"), "req")
    with pytest.raises(ProtocolError, match="expected 0x31"):
        check_header(conn_header("pull"), "req")
    with pytest.raises(ProtocolError, match="not an SP connection header"):
        check_header(b"GET / HT", "push")
    with pytest.raises(ProtocolError, match="bad SP message type"):
        FrameReader().feed(b"\x02" + bytes(8))


@given(st.lists(st.binary(max_size=300), max_size=8), st.lists(st.integers(1, 50), min_size=1, max_size=10))
def test_frame_reader_reassembles_any_split(messages, cuts):
    wire = b"".join(frame(m) for m in messages)
    reader, got, pos, i = FrameReader(), [], 0, 0
    while pos < len(wire):
        step = cuts[i % len(cuts)]
        got += reader.feed(wire[pos:pos + step])
        pos, i = pos + step, i + 1
    assert got == messages
    assert reader.pending() is None


def _receiver(wire, cuts):
    """A ``recv_into`` that hands out ``wire`` in pieces of the given sizes, then EOF."""
    pos, i = 0, 0

    def recv_into(room):
        nonlocal pos, i
        n = min(len(room), cuts[i % len(cuts)], len(wire) - pos)
        room[:n] = wire[pos:pos + n]
        pos, i = pos + n, i + 1
        return n

    return recv_into


def _large(n: int) -> bytes:
    return (bytes(range(251)) * (n // 251 + 1))[:n]


@settings(deadline=None)
@given(st.lists(st.binary(max_size=300) | st.integers(60_000, 200_000).map(_large), max_size=6),
       st.lists(st.integers(1, 70_000), min_size=1, max_size=10))
def test_frame_reader_receives_any_split_in_place(messages, cuts):
    """Messages of any size, received in pieces of any size into the reader's own buffer, come out whole and in
    order; then EOF. Once nothing is held the buffer is at most CHUNK again."""
    wire = b"".join(frame(m) for m in messages)
    reader, receive = FrameReader(), _receiver(wire, cuts)
    got = [msg for msg in iter(lambda: reader.next(receive), None)]
    assert got == messages
    assert not reader.holding
    reader.space()
    assert len(reader.buf) <= CHUNK


def test_frame_reader_allocates_for_what_arrived_not_for_what_is_declared():
    """A peer that declares a message of 2**39 bytes and sends 10 of them gets a buffer of a few KiB."""
    reader = FrameReader()
    assert reader.feed(b"\x01" + (1 << 39).to_bytes(8, "big") + bytes(10)) == []
    assert reader.holding and reader.pending() == (1 << 39) - 10
    assert len(reader.buf) <= 8192
    with pytest.raises(ProtocolError, match="too large"):
        FrameReader().feed(b"\x01" + (MAX_MESSAGE + 1).to_bytes(8, "big"))
    assert FrameReader().next(_receiver(b"\x01" + bytes(5), [3])) is None  # EOF inside a header


def _raw_peer(path, kind):
    """A plain Unix socket speaking SP as ``kind``, dialled to ``path`` (its header sent; the listener's is read
    by whoever cares: a native listener sends it only when its owner next receives)."""
    import socket as s

    sock = s.socket(s.AF_UNIX, s.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(path)
    sock.sendall(conn_header(kind))
    return sock


@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(max_size=200) | st.integers(5_000, 150_000).map(_large), min_size=1, max_size=8),
       st.lists(st.integers(1, 9_000), min_size=1, max_size=6))
def test_native_pull_takes_messages_in_any_split(messages, cuts):
    """Whatever the peer's writes cut, alone or several per receive, the native PULL returns each message once."""
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        u = f"ipc://{d}/p.ipc"
        pull = open_socket("pull", u, listen=True, impl="native", recv_timeout=5)
        peer = _raw_peer(u[6:], "push")
        wire = b"".join(frame(m) for m in messages)

        def write():
            pos, i = 0, 0
            while pos < len(wire):
                step = cuts[i % len(cuts)]
                peer.sendall(wire[pos:pos + step])
                pos, i = pos + step, i + 1

        writer = threading.Thread(target=write, daemon=True)
        try:
            writer.start()
            assert [pull.recv() for _ in messages] == messages
            writer.join(5)
            pull.recv_timeout = 0.05
            with pytest.raises(Timeout):
                pull.recv()
        finally:
            peer.close()
            pull.close()


def _dialled(path, kind, **options):
    """A native ``kind`` socket dialled to a plain Unix listener at ``path``, and that listener's end of the
    connection (SP headers exchanged; it reads nothing more on its own)."""
    import socket as s

    listener = s.socket(s.AF_UNIX, s.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    peers = []

    def accept():
        peer, _ = listener.accept()
        peer.settimeout(5)
        peer.sendall(conn_header(PEER[kind]))
        peers.append(peer)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        sock = open_socket(kind, f"ipc://{path}", impl="native", **options)
        acceptor.join(5)
        assert peers[0].recv(8) == conn_header(kind)
    finally:
        listener.close()
    return sock, peers[0]


@pytest.mark.parametrize("cut", [1, 7, 13, 100, 1 << 20])
@pytest.mark.parametrize("stale", [False, True])
def test_native_req_takes_its_reply_in_any_split(sockdir, cut, stale):
    """The reply to the pending request, whole or cut anywhere, after a reply to an abandoned request or not:
    recv_or_none() returns it; the abandoned one is dropped."""
    req, peer = _dialled(os.path.join(sockdir, "r.ipc"), "req", recv_timeout=5, send_timeout=5)
    try:
        req.send(b"first")
        for round_ in range(3):
            head = peer.recv(13)
            rid, body = head[9:13], peer.recv(int.from_bytes(head[1:9], "big") - 4)
            answer = f"reply {round_}".encode() * (round_ * 1000 + 1)
            old = frame(b"stale", rid[:3] + bytes([rid[3] ^ 1])) if stale else b""
            wire = old + frame(answer, rid)
            pieces = [wire[pos:pos + cut] for pos in range(0, len(wire), cut)]
            writer = threading.Thread(target=lambda pieces=pieces: [peer.sendall(x) for x in pieces], daemon=True)
            writer.start()
            assert req.recv_or_none() == answer, (round_, body)
            writer.join(5)
            req.send(b"next")
    finally:
        peer.close()
        req.close()


def test_drained_says_whether_the_peer_has_read_everything(sockdir):
    """A native dialler knows when its peer has left what it sent unread (the kernel's queue, on Linux)."""
    push, peer = _dialled(os.path.join(sockdir, "d.ipc"), "push", send_timeout=5)
    try:
        assert push.drained()
        push.send(b"unread")
        assert not push.drained()
        assert peer.recv(100) == frame(b"unread")
        assert wait_for(push.drained, timeout=5)
    finally:
        push.close()
        peer.close()


def send_all(sock, messages):
    t = threading.Thread(target=lambda: [sock.send(m) for m in messages], daemon=True)
    t.start()
    return t


def url(sockdir, name):
    return f"ipc://{sockdir}/{name}.ipc"




@pytest.mark.parametrize(("plugin", "peer"), [("native", "pynng"), ("pynng", "pynng")])
def test_push_to_pull(sockdir, plugin, peer):
    u = url(sockdir, "src")
    pull = open_socket("pull", u, listen=True, impl=peer, recv_timeout=5)
    push = open_socket("push", u, impl=plugin, send_timeout=5)
    try:
        big = os.urandom(3 << 20)
        sender = send_all(push, [b"a", b"", big, b"z"])
        assert [pull.recv() for _ in range(4)] == [b"a", b"", big, b"z"]
        sender.join(5)
    finally:
        push.close()
        pull.close()


@pytest.mark.parametrize("peer", ["native", "pynng"])
def test_native_pull_from_pynng_push(sockdir, peer):
    u = url(sockdir, "sink")
    pull = open_socket("pull", u, listen=True, impl="native", recv_timeout=5)
    assert stat.S_IMODE(os.stat(u[6:]).st_mode) == 0o600  # owner-only socket file
    big = os.urandom(5 << 20)
    holder = {}

    def dial_and_send():  # eKuiper dials the sink synchronously while the plugin is already receiving
        holder["push"] = open_socket("push", u, impl=peer, send_timeout=5, attempts=1)
        for msg in (b"1", big, b""):
            holder["push"].send(msg)

    t = threading.Thread(target=dial_and_send, daemon=True)
    t.start()
    try:
        assert [pull.recv() for _ in range(3)] == [b"1", big, b""]
        t.join(5)
        pull.recv_timeout = 0.1
        with pytest.raises(Timeout):
            pull.recv()
    finally:
        holder["push"].close()
        pull.close()
    assert not os.path.exists(u[6:])


def test_native_req_against_pynng_rep(sockdir):
    u = url(sockdir, "ctl")
    rep = open_socket("rep", u, listen=True, impl="pynng", recv_timeout=5, send_timeout=5)
    req = open_socket("req", u, impl="native", recv_timeout=5, send_timeout=5)
    try:
        with pytest.raises(BadState):
            req.recv()
        req.send(b"handshake")
        assert rep.recv() == b"handshake"
        rep.send(b"cmd1")
        assert req.recv() == b"cmd1"
        req.send(b"ok")
        assert rep.recv() == b"ok"
        # a new request abandons the old one: the late reply to it is dropped
        req.send(b"handshake")  # keepalive replaces the pending "ok"... which was answered; now pending
        assert rep.recv() == b"handshake"
        rep.send(b"cmd2")
        assert req.recv() == b"cmd2"
        req.send(b"first")
        req.send(b"second")
        assert rep.recv() == b"first"
        rep.send(b"reply-to-first")  # stale for the REQ side
        assert rep.recv() == b"second"
        rep.send(b"reply-to-second")
        assert req.recv() == b"reply-to-second"
        req.send(b"x")
        req.recv_timeout = 0.1
        with pytest.raises(Timeout):
            req.recv()
    finally:
        req.close()
        rep.close()


def test_non_blocking_dial_connects_when_the_peer_appears(sockdir):
    u = url(sockdir, "late")
    req = open_socket("req", u, impl="native", block=False, send_timeout=0.2, recv_timeout=5)
    try:
        with pytest.raises(Timeout):
            req.send(b"handshake")  # nobody listens yet
        rep = open_socket("rep", u, listen=True, impl="pynng", recv_timeout=5)
        req.send_timeout = 5
        req.send(b"handshake")
        assert rep.recv() == b"handshake"
        rep.close()
    finally:
        req.close()


def test_push_reconnects_after_the_peer_restarts(sockdir):
    u = url(sockdir, "re")
    pull = open_socket("pull", u, listen=True, impl="pynng", recv_timeout=5)
    push = open_socket("push", u, impl="native", send_timeout=5)
    try:
        push.send(b"one")
        assert pull.recv() == b"one"
        pull.close()
        pull = open_socket("pull", u, listen=True, impl="pynng", recv_timeout=5)

        def resend():
            push.send(b"two")
            return True

        assert wait_for(lambda: _try(resend), timeout=5)
        assert pull.recv() == b"two"
    finally:
        push.close()
        pull.close()


def _try(fn):
    try:
        return fn()
    except (Timeout, TransportError):
        return False


def test_backpressure_keeps_messages_whole(sockdir):
    """A send that times out midway finishes its message later: the peer never sees a torn frame."""
    u = url(sockdir, "bp")
    pull = open_socket("pull", u, listen=True, impl="pynng", recv_timeout=5)
    push = open_socket("push", u, impl="native", send_timeout=0.05)
    payload = b"x" * 100_000
    sent = 0
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                push.send(payload)
                sent += 1
            except Timeout:
                break
        assert sent > 0
        push.send_timeout = 5
        threading.Thread(target=lambda: push.send(b"last"), daemon=True).start()
        got = [pull.recv() for _ in range(sent + 1)]
        assert got[:-1] == [payload] * sent and got[-1] in (b"last", payload)
    finally:
        push.close()
        pull.close()


def test_close_interrupts_a_blocked_recv(sockdir):
    pull = open_socket("pull", url(sockdir, "c"), listen=True, impl="native")
    assert pull.interruptible
    errors = []

    def reader():
        try:
            pull.recv()
        except Closed as exc:
            errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.05)  # let the reader block (nothing observable to wait on)
    t0 = time.monotonic()
    pull.close()
    t.join(2)
    assert not t.is_alive() and errors and time.monotonic() - t0 < 1


def test_listen_errors(sockdir):
    u = url(sockdir, "busy")
    first = open_socket("pull", u, listen=True, impl="native")
    try:
        with pytest.raises(TransportError, match="cannot listen on .*Address in use"):
            open_socket("pull", u, listen=True, impl="native", attempts=1)
    finally:
        first.close()
    stale = os.path.join(sockdir, "stale.ipc")
    import socket as s

    sock = s.socket(s.AF_UNIX, s.SOCK_STREAM)
    sock.bind(stale)
    sock.close()  # a socket file nobody listens on, as a killed process leaves it
    open_socket("pull", f"ipc://{stale}", listen=True, impl="native").close()
    with pytest.raises(TransportError, match="cannot dial"):
        open_socket("push", url(sockdir, "nobody"), impl="native", attempts=2, interval=0.01)


def test_transport_env(monkeypatch, sockdir):
    monkeypatch.setenv("EKDSL_TRANSPORT", "carrier-pigeon")
    with pytest.raises(TransportError, match="is not a transport"):
        open_socket("pull", url(sockdir, "e"), listen=True)


@pytest.mark.parametrize("impl", ["native", "pynng"])
def test_a_request_that_opens_the_connection_goes_once(sockdir, impl):
    """The first send of a non-blocking REQ connects; the request must not go twice (the copy would be
    taken as the answer to the host's first command)."""
    u = url(sockdir, "once")
    rep = open_socket("rep", u, listen=True, impl="pynng", recv_timeout=5, send_timeout=5)
    req = open_socket("req", u, impl=impl, block=False, recv_timeout=5, send_timeout=5)
    try:
        req.send(b"handshake")
        assert rep.recv() == b"handshake"
        rep.send(b"cmd")
        assert req.recv() == b"cmd"
        req.send(b"ok")
        assert rep.recv() == b"ok"
    finally:
        req.close()
        rep.close()


def squat(path):
    """A listener at ``path`` that never accepts, its queue full (a stuck process, a squatter)."""
    import socket as s

    squatter = s.socket(s.AF_UNIX, s.SOCK_STREAM)
    squatter.bind(path)
    squatter.listen(0)
    clients = []
    while True:
        c = s.socket(s.AF_UNIX, s.SOCK_STREAM)
        c.setblocking(False)
        clients.append(c)
        try:
            c.connect(path)
        except BlockingIOError:
            return [squatter, *clients]


@pytest.mark.parametrize(("role", "impl"), [("listen", "native"), ("listen", "pynng"), ("dial", "native")])
def test_a_listener_that_never_accepts_is_given_up_on(sockdir, role, impl):
    """A stuck process (its queue full, never accepting) at the path: listening refuses it as in use, dialling
    fails within the header wait; neither blocks on it."""
    u = url(sockdir, "squat")
    held = squat(u[6:])
    outcome = []

    def attempt():
        try:
            if role == "listen":
                open_socket("pull", u, listen=True, impl=impl, attempts=2, interval=0.01).close()
            else:
                open_socket("push", u, impl=impl, attempts=2, interval=0.01).close()
            outcome.append("opened")
        except TransportError as exc:
            outcome.append(str(exc))

    t = threading.Thread(target=attempt, daemon=True)
    try:
        t.start()
        t.join(10)
        assert not t.is_alive(), f"{role} blocked on the squatter"
        assert outcome and ("in use" if role == "listen" else "cannot dial") in outcome[0], outcome
    finally:
        for sock in held:
            sock.close()
        t.join(5)


def _fds(pid):
    return sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))


def test_a_sink_start_out_of_descriptors_leaves_nothing_behind(host, tmp_path, sockdir):
    """Sink starts that run out of descriptors at each step in turn: each fails whole (no listener, no
    socket file, no descriptor left behind) and the plugin goes on."""
    import resource

    from ekdsl.host import CommandError
    from ekdsl.host.channels import SinkChannel
    from ekdsl.protocol import Control, Meta

    h = host()
    pid = h.process.pid
    conf = {"path": str(tmp_path / "rows.jsonl"), "requireAck": True}
    h.stop_sink(h.start_sink("collect", conf))  # whatever a first start loads once is loaded
    base = _fds(pid)
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    failed = 0
    for extra in range(6):
        ctrl = Control("collect", "sink", Meta("rule1", f"k_{extra}"), config=conf)
        channel = SinkChannel(ctrl.meta, sockdir)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (base[-1] + 1 + extra, hard))
        try:
            h.control.send_cmd("start", ctrl)
        except CommandError as exc:
            failed += 1
            assert "open files" in str(exc) or "Out of files" in str(exc)  # the OS's words, or nng's
            assert not os.path.exists(f"{sockdir}/{ctrl.meta.key}.ipc")
        else:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
            channel.connect()
            channel.send(b'{"i":1}')
            assert channel.recv_ack() is None
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
            channel.close()
            h.control.send_cmd("stop", ctrl)
        assert wait_for(lambda: _fds(pid) == base), (extra, base, _fds(pid))
    assert failed
    h.stop_sink(h.start_sink("collect", conf))


@pytest.mark.long
@pytest.mark.parametrize("transport", ["native"])
def test_500_sources_and_500_sinks_under_a_4096_descriptor_limit(host, tmp_path, transport):
    """One plugin process, started with RLIMIT_NOFILE 4096, serves 500 sources and 500 sinks, then stops them.

    Native sockets only: pynng's cost about as many descriptors (``benchmarks/instances.py``), but its
    sockets cannot be interrupted, so 1,000 stops take a minute there."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 8192:
        pytest.skip(f"the test's own sockets need more than the hard limit of {hard} descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))  # inherited by the plugin process
    try:
        h = host()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 8192), hard))  # the host side holds ~2,500
    try:
        assert resource.prlimit(h.process.pid, resource.RLIMIT_NOFILE)[0] == 4096
        sources = [h.start_source("ticker", {"interval": 3600}, op=f"s{i}") for i in range(500)]
        sinks = [h.start_sink("collect", {"path": str(tmp_path / f"{i}.jsonl"), "requireAck": True}, op=f"k{i}")
                 for i in range(500)]
        assert all(src.rows(1)[0]["i"] == 0 for src in sources)
        assert all(snk.send(b'{"i":1}') is None for snk in sinks)
        for src in sources:
            h.stop_source(src)
        for snk in sinks:
            h.stop_sink(snk)
        assert "Too many open files" not in h.process.output
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
