"""deploy against hostile servers (real sockets on 127.0.0.1): redirects, endless and trickling answers,
credentials in URLs and echoed back; credentials from the environment."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from typing import Callable, Dict, List, Optional

import pytest

from ekdsl import DeployError
from ekdsl.cli import main
from ekdsl.deploy.rest import Client

from .fake_ekuiper import Answer, Recorder, Seen

TOKEN = "eyJhbGciOi.s3cretTokenBody.sig"


def reply(status: int, body: bytes = b"[]", headers: Optional[Dict[str, str]] = None) -> Callable[[Seen], Answer]:
    return lambda request: (status, headers or {}, body)


def deploy(capsys, *argv: str) -> tuple:
    code = main(["deploy", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_redirects_are_followed_within_the_origin_only(capsys):
    """Within the origin a redirect keeps its credentials; to another origin it is refused, nothing sent there."""
    with Recorder(reply(200)) as other:
        target = f"http://localhost:{other.port}/plugins/portables"

        def answer(request: Seen) -> Answer:
            if request.path == "/plugins/portables":
                return 307, {"Location": "/v2/plugins/portables"}, b""
            if request.path == "/v2/plugins/portables":
                return 200, {}, b'["pysam"]'
            return 302, {"Location": target}, b"moved"

        with Recorder(answer) as first:
            client = Client(f"http://127.0.0.1:{first.port}", headers={"Authorization": TOKEN})
            resp = client.request("GET", "/plugins/portables")
            assert resp is not None and resp.json() == ["pysam"]
            assert [(s.path, s.headers.get("Authorization")) for s in first.seen] == [
                ("/plugins/portables", TOKEN), ("/v2/plugins/portables", TOKEN)]
            for auth in (["--token", TOKEN], ["--user", "ann:pa55word"]):
                code, _, err = deploy(capsys, "status", "pysam", "--server", f"http://127.0.0.1:{first.port}", *auth)
                assert code == 1
                assert f"redirected (302) to another origin, http://localhost:{other.port}" in err
                assert "if eKuiper is there, give it as --server" in err
            assert [s.headers.get("Authorization") for s in first.seen[2:]] == [
                TOKEN, "Basic " + base64.b64encode(b"ann:pa55word").decode()]
    assert other.seen == []  # nothing reached the other origin: no header, no body


class RawServer:
    """A TCP server on 127.0.0.1 that answers each connection with ``serve(conn)`` in a thread."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.serve = serve
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.recv(65536)
            try:
                self.serve(conn)
            except OSError:
                pass  # the client hung up: what the tests want
        self.done.set()

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        self.thread.join(60)


def endless(conn: socket.socket, limit: int = 64 << 20) -> None:
    """An answer without Content-Length that goes on (64 MiB here, so that an unbounded client also ends)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
    block = b"[" * 65536
    for _ in range(limit // len(block)):
        conn.sendall(block)


def test_the_answer_cap_is_an_option(capsys):
    with RawServer(endless) as server:
        code, _, err = deploy(capsys, "list", "--server", f"http://127.0.0.1:{server.port}", "--max-answer", "0.5")
        assert code == 1 and "the answer is larger than 524288 bytes" in err


def test_an_endless_answer_is_cut_at_the_cap(capsys):
    with RawServer(endless) as server:
        code, _, err = deploy(capsys, "list", "--server", f"http://127.0.0.1:{server.port}")
        assert code == 1
        assert "the answer is larger than 16777216 bytes, the most ekdsl reads" in err
        assert "(read more with --max-answer MIB)" in err


def test_a_declared_huge_answer_is_refused_before_it_is_read():
    def huge(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n")
        conn.sendall(b"[" * 65536)

    with RawServer(huge) as server, pytest.raises(DeployError, match="the answer is larger than 16777216 bytes"):
        Client(f"http://127.0.0.1:{server.port}").request("GET", "/plugins/portables")


def trickle(head: bytes, body: bytes, sent: List[int]) -> Callable[[socket.socket], None]:
    """Send ``head`` at once, then ``body`` a byte every 50 ms (about 20 s for 400 bytes)."""
    def serve(conn: socket.socket) -> None:
        conn.sendall(head)
        for i in range(len(body)):
            conn.sendall(body[i:i + 1])
            sent.append(i)
            time.sleep(0.05)  # the trickle's pace (the behaviour under test), not a synchronisation

    return serve


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_trickling_answer_cannot_stretch_the_deadline(capsys, where):
    body = json.dumps(["x" * 400]).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    sent: List[int] = []
    serve = trickle(head, body, sent) if where == "body" else trickle(b"", head + body, sent)
    with RawServer(serve) as server:
        code, _, err = deploy(capsys, "list", "--server", f"http://127.0.0.1:{server.port}", "--timeout", "1")
        assert code == 1 and "no complete answer within 1 s" in err and "--timeout S" in err
        assert server.done.wait(30)
    assert len(sent) < len(body)  # the client hung up while the server was still trickling


def test_userinfo_in_the_server_url_is_basic_auth_and_never_printed(capsys):
    with Recorder(reply(400, json.dumps({"error": 1000, "message": f"bad auth {TOKEN} / pa55word"}).encode())) as s:
        code, _, err = deploy(capsys, "list", "--server", f"http://ann:pa55word@127.0.0.1:{s.port}")
        assert code == 1
        assert s.seen[0].headers["Authorization"] == "Basic " + base64.b64encode(b"ann:pa55word").decode()
        assert f"GET http://127.0.0.1:{s.port}/plugins/portables failed (400): bad auth" in err
        assert "pa55word" not in err and "ann:" not in err
        code, _, err = deploy(capsys, "list", "--server", f"http://127.0.0.1:{s.port}", "--token", TOKEN)
        assert TOKEN not in err and "bad auth *** / pa55word" in err
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    for server in (f"http://ann:pa55word@127.0.0.1:{closed}", "http://ann:pa55word@no-such-host.invalid",
                   "http://ann:pa55word@127.0.0.1:notaport", "ftp://ann:pa55word@host"):
        code, out, err = deploy(capsys, "status", "pysam", "--server", server)
        assert code in (1, 2) and "pa55word" not in out + err, server


def test_dry_run_shows_that_credentials_are_set_but_not_them(capsys, tmp_path):
    for auth in (["--token", TOKEN], ["--user", "ann:pa55word"], ["--server", "http://ann:pa55word@10.1.2.3:9081"]):
        code, out, err = deploy(capsys, "describe", "pysam", "--dry-run", *auth)
        assert code == 0 and "  Authorization: *** (set, not shown)\n" in out
        assert TOKEN not in out + err and "pa55word" not in out + err


def test_credentials_from_the_environment(capsys, monkeypatch):
    with Recorder(reply(200)) as server:
        url = f"http://127.0.0.1:{server.port}"
        monkeypatch.setenv("EKUIPER_USER", "ann:pa55word")
        assert deploy(capsys, "list", "--server", url)[0] == 0
        assert server.seen[-1].headers["Authorization"] == "Basic " + base64.b64encode(b"ann:pa55word").decode()
        monkeypatch.setenv("EKUIPER_TOKEN", TOKEN)
        code, _, err = deploy(capsys, "list", "--server", url)
        assert code == 2 and "both $EKUIPER_TOKEN and $EKUIPER_USER are set" in err
        assert deploy(capsys, "list", "--server", url, "--token", "eyJ.other.tok")[0] == 0  # an option wins
        assert server.seen[-1].headers["Authorization"] == "eyJ.other.tok"
        monkeypatch.delenv("EKUIPER_USER")
        assert deploy(capsys, "list", "--server", url)[0] == 0
        assert server.seen[-1].headers["Authorization"] == TOKEN


@pytest.mark.parametrize(("body", "expected"), [
    (b"<html>oops</html>", "the answer is not JSON ('<html>oops</html>'...): is --server eKuiper's REST API"),
    (b'[{"name": "other", "functions": 5, "sources": "pyjson"}, 7, "x"]', None),  # odd shapes: nothing taken
    (b'{"plugins": []}', None),
])
def test_install_reads_an_odd_plugin_list_without_a_traceback(capsys, pysam_zip, body, expected):
    def answer(request: Seen) -> Answer:
        return (200, {}, body) if request.method == "GET" else (201, {}, b'"created"')

    with Recorder(answer) as server:
        code, _, err = deploy(capsys, "install", pysam_zip, "--server", f"http://127.0.0.1:{server.port}")
    assert "Traceback" not in err
    if expected is None:
        assert code == 0, err
    else:
        assert code == 1 and expected in err and err.count("\n") == 1
        assert [s.method for s in server.seen] == ["GET"]  # nothing installed
