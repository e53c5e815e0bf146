"""The handshake sent before the transport is imported (ekdsl.hello), and the transport adopting it."""

from __future__ import annotations

import os
import socket
import threading

import pynng
import pytest

from ekdsl.hello import REP_HEADER, greet
from ekdsl.transport.dialer import ReqSocket
from ekdsl.wire import HANDSHAKE


def test_a_greeting_is_a_request_eKuiper_reads_and_the_transport_carries_on(sockdir):
    path = os.path.join(sockdir, "plugin_hello.ipc")
    with pynng.Rep0(listen="ipc://" + path, recv_timeout=5000, send_timeout=5000) as rep:
        made = greet(path, HANDSHAKE, attempts=5, interval=0.05, timeout=1.0)
        assert made is not None
        assert rep.recv() == HANDSHAKE
        sock = ReqSocket.adopted("ipc://" + path, *made)
        sock.recv_timeout = 5.0
        try:
            rep.send(b"cmd")  # the reply to the greeting: the adopted socket's pending request
            assert sock.recv() == b"cmd"
            sock.send(b"ok")
            assert rep.recv() == b"ok"
        finally:
            sock.close()


def test_nobody_listening_is_an_os_error_after_the_attempts(sockdir):
    with pytest.raises(OSError):
        greet(os.path.join(sockdir, "none.ipc"), HANDSHAKE, attempts=3, interval=0.01, timeout=1.0)


@pytest.mark.parametrize("answer", [b"\x00SP\x00\x00\x50\x00\x00", b"HTTP/1.1", b""])
def test_a_peer_that_is_not_a_rep_socket_is_refused(sockdir, answer):
    """A PUSH/PULL peer, another protocol, or a peer that closes at once: each attempt fails, then OSError."""
    path = os.path.join(sockdir, "odd.ipc")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    seen = []

    def serve() -> None:
        for _ in range(2):
            conn, _addr = listener.accept()
            with conn:
                seen.append(conn.recv(8))
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(OSError):
            greet(path, HANDSHAKE, attempts=2, interval=0.01, timeout=1.0)
        thread.join(5)
        assert seen == [b"\x00SP\x00\x00\x30\x00\x00"] * 2 and answer != REP_HEADER
    finally:
        listener.close()


def test_a_listener_that_never_accepts_does_not_block_the_dial(sockdir, monkeypatch):
    """Its queue full, connect() would block: the header wait bounds each attempt."""
    import ekdsl.hello as hello

    monkeypatch.setattr(hello, "HEADER_WAIT", 0.2)
    path = os.path.join(sockdir, "stuck.ipc")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(0)
    try:
        with pytest.raises(OSError):
            greet(path, HANDSHAKE, attempts=2, interval=0.01, timeout=1.0)
    finally:
        listener.close()


def test_the_greeting_speaks_the_transports_wire(sockdir):
    """hello writes SP's headers and a REQ frame itself (to import nothing first): they are sp.py's, byte for byte."""
    from ekdsl.hello import REQ_HEADER
    from ekdsl.transport.sp import check_header, conn_header, frame

    assert conn_header("req") == REQ_HEADER and conn_header("rep") == REP_HEADER
    check_header(REP_HEADER, "req")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = os.path.join(sockdir, "wire.ipc")
    listener.bind(path)
    listener.listen(1)
    try:
        def serve() -> None:
            conn, _addr = listener.accept()
            conn.recv(8)
            conn.sendall(REP_HEADER)
            got.append(conn)

        got: list = []
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        made = greet(path, HANDSHAKE, attempts=1, interval=0.0, timeout=1.0)
        thread.join(5)
        assert made is not None
        sock, rid, sent = made
        assert sent == frame(HANDSHAKE, rid.to_bytes(4, "big")) and rid & 0x80000000
        assert got[0].recv(len(sent)) == sent
        sock.close()
        got[0].close()
    finally:
        listener.close()
