"""The ``rest`` protocol: what eKuiper's REST executor sends for a protobuf-described service.

``POST /<method>`` with the request message as proto JSON (``Content-Type: application/json``). The reply to a
scalar function is ``text/plain`` (eKuiper decodes it into the wrapper's value); to any other, the reply
message as ``application/json``. A failed call answers 400 (bad arguments) or 500 (the function failed) with a
``text/plain`` message, which eKuiper reports as the call's error; the connection stays up.
"""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Tuple

from .calls import Outcome
from .lifecycle import Draining
from .schema import Shape

__all__ = ["RestServer", "encode_reply"]

log = logging.getLogger("ekdsl.service")
MAX_BODY = 64 * 1024 * 1024


def encode_reply(shape: Shape, value: Any) -> Tuple[str, bytes]:
    """``(content type, body)`` of a successful reply."""
    if shape.reply == "wrapper":
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, bytes):
            return "text/plain; charset=utf-8", value
        elif isinstance(value, float):
            text = repr(value)
        else:
            text = str(value)
        return "text/plain; charset=utf-8", text.encode("utf-8")
    return "application/json", json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    server: RestServer
    protocol_version = "HTTP/1.1"  # keep-alive, as Go's client expects
    disable_nagle_algorithm = True  # headers and body leave as separate writes: no 40 ms delayed-ACK stall

    def setup(self) -> None:
        super().setup()
        self.server.track(self.request)

    def finish(self) -> None:
        self.server.untrack(self.request)
        super().finish()

    def do_POST(self) -> None:
        method = self.path.split("?", 1)[0].strip("/")
        shape = self.server.calls.shape(method)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._send(400, "text/plain; charset=utf-8", b"bad Content-Length")
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        if shape is None:
            outcome = self.server.calls.call(method, [])
        else:
            try:
                message = json.loads(body) if body.strip() else {}
                if not isinstance(message, dict):
                    raise ValueError(f"{method}() expects its request message as a JSON object, "
                                     f"got {type(message).__name__}")
                args = shape.args_from_json(message)
            except ValueError as exc:
                outcome = Outcome(False, str(exc), True)
            else:
                outcome = self.server.calls.call(method, args)
        if outcome.ok and shape is not None:
            try:
                self._send(200, *encode_reply(shape, outcome.value))
                return
            except (ValueError, TypeError) as exc:
                outcome = Outcome(False, f"{method}() result cannot be sent: {exc}")
        status = 404 if shape is None else 400 if outcome.bad_request else 500
        self._send(status, "text/plain; charset=utf-8", str(outcome.value).encode("utf-8", "replace"))

    def do_GET(self) -> None:
        self._send(405, "text/plain; charset=utf-8", b"use POST /<function>")

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("rest %s " + format, self.client_address[0], *args)


class RestServer(Draining, ThreadingHTTPServer):
    """A threading HTTP server answering every function of ``calls``."""

    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], calls: Any) -> None:
        self.calls = calls
        Draining.__init__(self)
        ThreadingHTTPServer.__init__(self, address, _Handler)
