"""A stand-in for eKuiper's REST API on 127.0.0.1: records requests, answers as ``internal/server`` does.

Answers follow eKuiper at ``0014e7fab0dd``: ``handleError`` gives ``{"error":<code>,"message":"<prefix>: <err>"}``
with 404 for code 1002 and 400 otherwise (``rest.go``); the auth middleware answers 401 in plain text;
``describe stream`` of a missing stream is a 400 with code 3000 (``DescStream`` wraps the not-found error).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import os
import threading
import urllib.parse
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple


class Seen(NamedTuple):
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes


Answer = Tuple[int, Dict[str, str], bytes]  # status, headers, body


class Recorder:
    """An HTTP server on 127.0.0.1, as a context manager: ``url`` is its address, ``seen`` the requests in
    order; ``respond(request)`` gives each answer."""

    def __init__(self, respond: Callable[[Seen], Answer]) -> None:
        self.seen: List[Seen] = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _do(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Seen(self.command, self.path, dict(self.headers),
                               self.rfile.read(length) if length else b"")
                with recorder.lock:
                    recorder.seen.append(request)
                    status, headers, data = respond(request)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _do

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class FakeEkuiper(Recorder):
    """Use as a context manager; ``url`` is its address, ``seen`` the requests in order."""

    def __init__(self, uploads: str, token: str = "") -> None:
        self.uploads = uploads
        self.token = token
        self.plugins: Dict[str, Dict[str, Any]] = {}
        self.streams: Dict[str, str] = {}
        self.rules: Dict[str, Any] = {}
        self.services: Dict[str, Dict[str, Any]] = {}
        super().__init__(self._respond)

    def __enter__(self) -> FakeEkuiper:
        super().__enter__()
        return self

    def _respond(self, req: Seen) -> Answer:
        status, ctype, text = self.answer(req.method, req.path, req.headers, req.body)
        return status, {"Content-Type": ctype}, text.encode("utf-8")

    # ---- eKuiper's answers

    @staticmethod
    def _error(message: str, code: int = 1000) -> Tuple[int, str, str]:
        return (404 if code == 1002 else 400), "text/plain; charset=utf-8", json.dumps(
            {"error": code, "message": message}) + "\n"

    @staticmethod
    def _text(status: int, text: str) -> Tuple[int, str, str]:
        return status, "text/plain; charset=utf-8", text

    @staticmethod
    def _json(data: Any) -> Tuple[int, str, str]:
        return 200, "application/json", json.dumps(data)

    def answer(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> Tuple[int, str, str]:
        if self.token and headers.get("Authorization") != self.token:
            return self._text(401, "missing_token\n" if "Authorization" not in headers else "invalid token\n")
        parts = [urllib.parse.unquote(p) for p in path.split("?")[0].strip("/").split("/")]
        if parts[:2] == ["plugins", "portables"]:
            return self._plugins(method, parts[2:], body)
        if parts == ["config", "uploads"] and method == "POST":
            return self._upload(headers, body)
        if parts[0] in ("streams", "tables"):
            return self._streams(method, parts[0][:-1], parts[1:], body)
        if parts[0] == "rules":
            return self._rules(method, parts[1:], body)
        if parts[0] == "services":
            return self._services(method, parts[1:], body)
        return self._text(404, "404 page not found\n")

    def _register(self, body: bytes, prefix: str) -> Optional[Tuple[int, str, str]]:
        try:
            req = json.loads(body)
        except ValueError as exc:
            return self._error(f"Invalid body: Error decoding the portable plugin json: {exc}")
        name, uri = str(req.get("name", "")).strip(), str(req.get("file", ""))
        if not name:
            return self._error(f"{prefix}: invalid name {name}: should not be empty")
        if not uri.endswith(".zip") or "://" not in uri:
            return self._error(f"{prefix}: invalid uri {uri}")
        if name in self.plugins:
            return self._error(f"{prefix}: invalid name {name}: duplicate")
        local = urllib.request.url2pathname(urllib.parse.urlsplit(uri).path)
        if not os.path.isfile(local):
            return self._error(f"{prefix}: fail to download file {uri}: open {local}: no such file or directory")
        with zipfile.ZipFile(local) as zf:
            info = json.loads(zf.read(f"{name}.json"))
        info["executable"] = f"/ekuiper/plugins/portable/{name}/{info['executable']}"
        self.plugins[name] = {"info": info, "request": req}
        return None

    def _plugins(self, method: str, rest: List[str], body: bytes) -> Tuple[int, str, str]:
        if not rest:
            if method == "GET":
                return self._json([p["info"] for p in self.plugins.values()])
            failed = self._register(body, "portable plugin create command error")
            name = json.loads(body)["name"] if failed is None else ""
            return failed or self._text(201, f"portable plugin {name} is created")
        name = rest[0]
        if rest[1:] == ["status"]:
            if name not in self.plugins:
                return self._error(f"portable plugin {name} not found: not found", 1002)
            return self._json({"refCount": {}, "status": "running", "errMsg": ""})
        if method == "GET":
            if name not in self.plugins:
                return self._error(f"describe portable plugin {name} error: not found", 1002)
            return self._json(self.plugins[name]["info"])
        if method == "DELETE":
            if self.plugins.pop(name, None) is None:
                return self._error(f"delete portable plugin {name} error: portable plugin {name} is not found")
            return self._text(200, f"portable plugin {name} is deleted")
        self.plugins.pop(name, None)  # PUT: delete (error only logged), then register
        failed = self._register(body, "portable plugin update command error")
        return failed or self._text(200, f"portable plugin {json.loads(body)['name']} is updated")

    def _services(self, method: str, rest: List[str], body: bytes) -> Tuple[int, str, str]:
        """``internal/server/service_init.go`` over ``internal/service/manager.go`` (Create/Update/Delete)."""
        if not rest:
            if method == "GET":
                return self._json(sorted(self.services))
            req = json.loads(body)
            name = str(req.get("name", ""))
            if name in self.services:
                return self._error(f"service create command error: service {name} exist")
            failed = self._read_service(name, str(req.get("file", "")), "service create command error")
            return failed or self._text(201, f"service {name} is created")
        name = rest[0]
        if method == "GET":
            if name not in self.services:
                return self._error(f"describe service {name} error: not found", 1002)
            return self._json(self.services[name])
        if method == "DELETE":
            if self.services.pop(name, None) is None:
                return self._error(f"delete service {name} error: {name} is not found", 1002)
            return self._text(200, f"service {name} is deleted")
        if name not in self.services:
            return self._error(f"service update command error: service {name} not found")
        failed = self._read_service(name, str(json.loads(body).get("file", "")), "service update command error")
        return failed or self._text(200, f"service {name} is updated")

    def _read_service(self, name: str, uri: str, prefix: str) -> Optional[Tuple[int, str, str]]:
        local = urllib.request.url2pathname(urllib.parse.urlsplit(uri).path)
        if "://" not in uri or not os.path.isfile(local):
            return self._error(f"{prefix}: fail to download file {uri}: open {local}: no such file or directory")
        with zipfile.ZipFile(local) as zf:
            try:
                info = json.loads(zf.read(f"{name}.json"))
            except KeyError:
                return self._error(f"{prefix}: open {name}.json: no such file or directory")
        self.services[name] = {"About": info.get("about", {}), "Interfaces": info.get("interfaces", {})}
        return None

    def _upload(self, headers: Dict[str, str], body: bytes) -> Tuple[int, str, str]:
        head = f"Content-Type: {headers.get('Content-Type', '')}\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in msg.iter_parts() if msg.is_multipart() else []:
            if part.get_param("name", header="content-disposition") == "uploadFile":
                filename = part.get_filename() or "upload"
                target = os.path.join(self.uploads, filename)
                with open(target, "wb") as fh:
                    fh.write(part.get_payload(decode=True))
                return self._text(201, target)
        return self._error("Error Retrieving the File: http: no such file")

    def _streams(self, method: str, kind: str, rest: List[str], body: bytes) -> Tuple[int, str, str]:
        if not rest:
            sql = json.loads(body)["sql"]
            name = sql.split()[2]
            if name in self.streams:
                return self._error(f"{kind.title()} command error: {kind} {name} already exists")
            self.streams[name] = sql
            return self._text(201, f"{kind.title()} {name} is created.")
        name = rest[0]
        if name not in self.streams:
            if method == "GET":
                return self._error(f"describe {kind} error: Describe {kind} fails, {name} is not found.", 3000)
            return self._error(f"delete {kind} error: {kind} {name} is not found", 1002)
        if method == "GET":
            return self._json({"Name": name, "StreamType": kind})
        if method == "DELETE":
            del self.streams[name]
            return self._text(200, f"{kind.title()} {name} is dropped.")
        self.streams[name] = json.loads(body)["sql"]
        return self._text(200, f"{kind.title()} {name} is replaced.")

    def _rules(self, method: str, rest: List[str], body: bytes) -> Tuple[int, str, str]:
        if not rest:
            rule = json.loads(body)
            if rule["id"] in self.rules:
                return self._error(f"rule {rule['id']} already exists")
            self.rules[rule["id"]] = rule
            return self._text(201, f"Rule {rule['id']} was created successfully.")
        rid = rest[0]
        if rid not in self.rules and method == "DELETE":
            return self._error(f"Delete rule error: rule {rid} not found")
        if rid not in self.rules:
            return self._error(f"Describe rule error: Rule {rid} is not found.", 1002)
        if method == "GET":
            return self._json(self.rules[rid])
        if method == "DELETE":
            del self.rules[rid]
            return self._text(200, f"Rule {rid} is dropped.")
        self.rules[rid] = json.loads(body)
        return self._text(200, f"Rule {rid} was updated successfully.")
