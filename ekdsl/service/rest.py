"""The ``rest`` protocol as an ASGI application: what eKuiper's REST executor sends for a protobuf service.

``POST /<method>`` with the request message as proto JSON (``Content-Type: application/json``). The reply to a
scalar function is ``text/plain`` (eKuiper decodes it into the wrapper's value); to any other, the reply message as
``application/json``. A failed call answers with a ``text/plain`` message, which eKuiper reports as the call's
error: 400 (the arguments), 404 (no such function), 500 (the function failed), 503 (the service is stopping), 504
(past the call's deadline). ``GET /healthz`` answers 200 while the service takes calls.

The application reads the body itself, so its size and time limits hold while it arrives. It runs under any ASGI
server; :mod:`.http` serves it with uvicorn, which adds a deadline for the request head.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from .calls import Calls, uncancel
from .functions import BAD_REQUEST, DEADLINE, FAILED, INT64_MAX, NOT_FOUND, OK, UNAVAILABLE, Outcome
from .schema import Shape

__all__ = ["MAX_BODY", "RestApp", "encode_reply"]

log = logging.getLogger("ekdsl.service")

MAX_BODY = 16 * 1024 * 1024
STATUS = {OK: 200, BAD_REQUEST: 400, NOT_FOUND: 404, FAILED: 500, UNAVAILABLE: 503, DEADLINE: 504}
TEXT = b"text/plain; charset=utf-8"

Receive = Callable[[], Awaitable[Dict[str, Any]]]
Send = Callable[[Dict[str, Any]], Awaitable[None]]


def encode_reply(shape: Shape, value: Any) -> Tuple[bytes, bytes]:
    """``(content type, body)`` of a successful reply."""
    if shape.reply == "wrapper":
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, bytes):
            return TEXT, value
        elif isinstance(value, float):
            text = repr(value)
        else:
            text = str(value)
        return TEXT, text.encode("utf-8")
    for where, number in shape.reply_ints(value):
        if float(number) > INT64_MAX:  # eKuiper reads JSON numbers as float64 (internal/service/schema.go)
            raise ValueError(f"{number} in {where} rounds past int64 as a JSON number, which eKuiper reads as a "
                             "float64: serve over grpc or msgpack-rpc, or return a str")
    return b"application/json", json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")


class _Refused(Exception):
    """The request cannot be read: answer ``status`` with ``text`` and close the connection."""

    def __init__(self, status: int, text: str) -> None:
        self.status, self.text = status, text
        super().__init__(text)


class RestApp:
    """ASGI application serving ``calls`` (``max_body`` bytes read within ``body_timeout`` seconds per request);
    ``grace`` bounds the drain when the server's lifespan ends."""

    def __init__(self, calls: Calls, max_body: int = MAX_BODY, body_timeout: float = 10.0,
                 grace: float = 10.0) -> None:
        self.calls, self.max_body, self.body_timeout, self.grace = calls, max_body, body_timeout, grace
        self.cut_off: Optional[int] = None  # set when the lifespan ends: calls cut off by the drain

    async def __call__(self, scope: Dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.cut_off = await self.calls.drain(self.grace)
                self.calls.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Dict[str, Any], receive: Receive, send: Send) -> None:
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):  # mounted under a prefix (Ray Serve's route_prefix): the rest names it
            path = path[len(root):]
        method = path.strip("/")
        verb = scope["method"]
        if verb == "GET" and method == "healthz":
            stopping = self.calls.closing
            await _respond(send, 503 if stopping else 200, TEXT, b"stopping" if stopping else b"ok")
            return
        if verb != "POST":
            await _respond(send, 405, TEXT, b"use POST /<function>", [(b"allow", b"POST")])
            return
        try:
            body = await self._body(scope, receive)
        except _Refused as refused:
            await _respond(send, refused.status, TEXT, refused.text.encode(), [(b"connection", b"close")])
            return
        outcome = await self._call(method, body)
        shape = self.calls.functions.shape(method)
        if outcome.ok and shape is not None:
            try:
                await _respond(send, 200, *encode_reply(shape, outcome.value))
                return
            except (ValueError, TypeError) as exc:
                outcome = Outcome.error(FAILED, f"{method}() result cannot be sent: {exc}")
        await _respond(send, STATUS[outcome.status], TEXT, str(outcome.value).encode("utf-8", "replace"))

    async def _call(self, method: str, body: bytes) -> Outcome:
        shape = self.calls.functions.shape(method)
        if shape is None:
            return self.calls.functions.unknown(method)
        try:
            message = json.loads(body) if body.strip() else {}
        except RecursionError:
            return Outcome.error(BAD_REQUEST, f"{method}(): the request body nests too deeply to be a request "
                                              "message")
        except ValueError as exc:
            return Outcome.error(BAD_REQUEST, f"{method}(): the request body is not JSON: {exc}")
        if not isinstance(message, dict):
            return Outcome.error(BAD_REQUEST, f"{method}() expects its request message as a JSON object, got "
                                              f"{type(message).__name__}")
        try:
            args = shape.args_from_json(message)
        except (ValueError, TypeError) as exc:
            return Outcome.error(BAD_REQUEST, str(exc))
        return await self.calls.call(method, args)

    async def _body(self, scope: Dict[str, Any], receive: Receive) -> bytes:
        """The whole body, refused past ``max_body`` bytes (declared or counted) or ``body_timeout`` seconds."""
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                raise _Refused(413, f"request body of {int(value)} bytes is over the service's limit of "
                                    f"{self.max_body} bytes (--max-body)")
        task = asyncio.current_task()
        assert task is not None
        late: List[bool] = []
        timer = asyncio.get_running_loop().call_later(self.body_timeout, _expire, task, late)
        chunks: List[bytes] = []
        size = 0
        try:
            while True:
                message = await receive()  # one timer per request, not a task per receive as wait_for makes
                if message["type"] == "http.disconnect":
                    raise _Refused(400, "the client went away")
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    raise _Refused(413, f"request body is over the service's limit of {self.max_body} bytes "
                                        "(--max-body)")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
        except asyncio.CancelledError:
            if not late:
                raise
            uncancel(task)
            raise _Refused(408, f"request body not received within {self.body_timeout:.3g} s (--body-timeout)") \
                from None
        finally:
            timer.cancel()


def _expire(task: asyncio.Task[Any], late: List[bool]) -> None:
    late.append(True)
    task.cancel()


async def _respond(send: Send, status: int, ctype: bytes, body: bytes,
                   extra: Optional[List[Tuple[bytes, bytes]]] = None) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())] + (extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
