"""A small client of eKuiper's REST API (``internal/server/rest.go``), on the standard library.

eKuiper answers errors as ``{"error":<code>,"message":"<prefix>: <err>"}`` (HTTP 400, or 404 when the
error carries code 1002), and its auth middleware as plain text with 401. Every failure becomes one
:class:`~ekdsl.errors.DeployError` line holding the server's message. With ``dry_run`` nothing is sent:
each request is printed instead, with the ``bin/kuiper`` line that does the same where there is one.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple

from ..errors import DeployError, UsageError
from . import DEFAULT_SERVER

__all__ = ["DEFAULT_SERVER", "Client", "Response", "auth_header"]

NOT_FOUND = 1002


class Response(NamedTuple):
    """A server's answer: HTTP status and body text (``status`` 0 in a dry run)."""

    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


def auth_header(token: str = "", user: str = "") -> Dict[str, str]:
    """``Authorization``: eKuiper takes the bare JWT; ``user`` (``name:password``) is basic auth for a proxy."""
    if token and user:
        raise UsageError("give --token (eKuiper's JWT) or --user (basic auth of a proxy in front of it), not both")
    if token:
        return {"Authorization": token}
    if user:
        if ":" not in user:
            raise UsageError(f"--user '{user}' needs a password: --user NAME:PASSWORD")
        return {"Authorization": "Basic " + base64.b64encode(user.encode("utf-8")).decode("ascii")}
    return {}


def _message(body: str) -> Tuple[str, int]:
    """The server's message in one line, and its eKuiper error code (0 if none)."""
    code = 0
    text = body
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and "message" in data:
        text = str(data["message"])
        code = data["error"] if isinstance(data.get("error"), int) else 0
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines) or "(empty answer)", code


class Client:
    """Requests to one eKuiper server; ``show`` prints dry-run lines."""

    def __init__(self, server: str = DEFAULT_SERVER, *, headers: Optional[Dict[str, str]] = None,
                 timeout: float = 330.0, dry_run: bool = False, show: Callable[[str], None] = print) -> None:
        parsed = urllib.parse.urlsplit(server)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise UsageError(f"--server '{server}' is not an http(s) URL, e.g. {DEFAULT_SERVER}")
        self.server = server.rstrip("/")
        self.host = parsed.hostname
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.dry_run = dry_run
        self.show = show

    @property
    def is_local(self) -> bool:
        """True when the server runs on this machine, so it can read a ``file://`` URL of a local file."""
        if self.host in ("localhost", "ip6-localhost"):
            return True
        try:
            return any(str(info[4][0]).startswith("127.") or info[4][0] == "::1"
                       for info in socket.getaddrinfo(self.host, None))
        except OSError:
            return False

    def url(self, path: str) -> str:
        return self.server + path

    def request(self, method: str, path: str, *, body: Any = None, upload: Optional[str] = None,
                kuiper: Sequence[str] = (), ok: Sequence[int] = (200, 201), missing_ok: bool = False
                ) -> Optional[Response]:
        """Send one request; return its response, ``None`` for "not found" when ``missing_ok``.

        ``body`` is sent as JSON; ``upload`` is a file sent as multipart field ``uploadFile``. ``kuiper``
        lists the equivalent ``bin/kuiper`` lines, shown in a dry run.
        """
        if self.dry_run:
            self._show(method, path, body, upload, kuiper)
            return Response(0, "")
        data, content_type = self._encode(body, upload)
        req = urllib.request.Request(self.url(path), data=data, method=method)
        for key, value in self.headers.items():
            req.add_header(key, value)
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                answer = Response(resp.status, resp.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            answer = Response(exc.code, exc.read().decode("utf-8", "replace"))
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeployError(f"cannot reach eKuiper at {self.server} ({reason}): is it running, and is its REST "
                              "port right? (default 9081; choose with --server URL)", method=method,
                              url=self.url(path)) from None
        if answer.status in ok:
            return answer
        message, code = _message(answer.text)
        if missing_ok and (answer.status == 404 or code == NOT_FOUND or "not found" in message.lower()):
            return None
        if answer.status == 401:
            message += (": this eKuiper requires authentication; pass --token with a JWT it accepts "
                        "(or --user NAME:PASSWORD for a proxy in front of it)")
        raise DeployError(message, method=method, url=self.url(path), status=answer.status, code=code)

    @staticmethod
    def _encode(body: Any, upload: Optional[str]) -> Tuple[Optional[bytes], str]:
        if upload is None:
            if body is None:
                return None, ""
            return json.dumps(body).encode("utf-8"), "application/json"
        boundary = uuid.uuid4().hex
        with open(upload, "rb") as fh:
            content = fh.read()
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="uploadFile"; '
                f'filename="{os.path.basename(upload)}"\r\nContent-Type: application/zip\r\n\r\n')
        data = head.encode("utf-8") + content + f"\r\n--{boundary}--\r\n".encode("ascii")
        return data, f"multipart/form-data; boundary={boundary}"

    def _show(self, method: str, path: str, body: Any, upload: Optional[str], kuiper: Sequence[str]) -> None:
        line = f"{method} {self.url(path)}"
        if upload is not None:
            line += f"  (multipart form, field uploadFile = {upload})"
        self.show(line)
        if body is not None:
            self.show(f"  {json.dumps(body)}")
        for command in kuiper:
            self.show(f"  = {command}")
