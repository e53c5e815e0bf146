"""A small client of eKuiper's REST API (``internal/server/rest.go``), on the standard library.

eKuiper answers errors as ``{"error":<code>,"message":"<prefix>: <err>"}`` (HTTP 400, or 404 when the
error carries code 1002), and its auth middleware as plain text with 401. Every failure becomes one
:class:`~ekdsl.errors.DeployError` line holding the server's message. With ``dry_run`` nothing is sent:
each request is printed instead, with the ``bin/kuiper`` line that does the same where there is one.
Each request is bounded in time and size and never carries credentials to another origin
(:mod:`ekdsl.deploy.http`); no credential is printed: a user and password in ``--server`` become basic
auth, and a secret the server echoes back is masked.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import uuid
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..errors import DeployError, UsageError
from . import DEFAULT_MAX_ANSWER, DEFAULT_SERVER
from .http import CrossOrigin, Deadline, Expired, TooLarge, exchange, origin

__all__ = ["DEFAULT_SERVER", "Client", "Response", "auth_header", "redact_url"]

_MASK = "***"
NOT_FOUND = 1002


class Response(NamedTuple):
    """A server's answer: HTTP status and body text (``status`` 0 in a dry run)."""

    status: int
    text: str
    method: str = ""
    url: str = ""

    def json(self) -> Any:
        """The body as JSON (``None`` when empty); :class:`DeployError` when it is not JSON."""
        try:
            return json.loads(self.text) if self.text else None
        except ValueError:
            start = " ".join(self.text.split())[:80]
            raise DeployError(f"the answer is not JSON ({start!r}...): is --server eKuiper's REST API, and not a "
                              "proxy's or another service's page?", method=self.method, url=self.url) from None


def auth_header(token: str = "", user: str = "") -> Dict[str, str]:
    """``Authorization``: eKuiper takes the bare JWT; ``user`` (``name:password``) is basic auth for a proxy."""
    if token and user:
        raise UsageError("give --token (eKuiper's JWT) or --user (basic auth of a proxy in front of it), not both")
    if token:
        return {"Authorization": token}
    if user:
        if ":" not in user:
            raise UsageError("--user needs a password: --user NAME:PASSWORD (or $EKUIPER_USER)")
        return {"Authorization": "Basic " + base64.b64encode(user.encode("utf-8")).decode("ascii")}
    return {}


def redact_url(url: str) -> str:
    """``url`` with the user and password it may hold masked: ``http://***@host:9081/``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = _MASK + "@" + netloc.rpartition("@")[2]
    return f"{scheme}://{netloc}{slash}{path}"


def _split_userinfo(server: str) -> Tuple[str, str]:
    """``server`` without its ``user:password@``, and that ``user:password`` (percent-decoded)."""
    parts = urllib.parse.urlsplit(server)
    if "@" not in parts.netloc:
        return server, ""
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    clean = urllib.parse.urlunsplit(parts._replace(netloc=host))
    return clean, f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"


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
    """Requests to one eKuiper server; ``show`` prints dry-run lines.

    ``timeout``: seconds one request may take in all (a deadline, not a socket timeout); ``max_answer``:
    the most bytes of an answer read.
    """

    def __init__(self, server: str = DEFAULT_SERVER, *, headers: Optional[Dict[str, str]] = None,
                 timeout: float = 330.0, dry_run: bool = False, show: Callable[[str], None] = print,
                 max_answer: int = DEFAULT_MAX_ANSWER, clock: Callable[[], float] = time.monotonic) -> None:
        server, userinfo = _split_userinfo(server)
        parsed = urllib.parse.urlsplit(server)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise UsageError(f"--server '{redact_url(server)}' is not an http(s) URL, e.g. {DEFAULT_SERVER}")
        self.headers = dict(headers or {})
        if userinfo:
            if "Authorization" in self.headers:
                raise UsageError("--server holds a user and password, and --token or --user gives credentials too: "
                                 "give one")
            self.headers.update(auth_header(user=userinfo))
        self.server = server.rstrip("/")
        self.host = parsed.hostname
        self.timeout = timeout
        self.max_answer = max_answer
        self.dry_run = dry_run
        self.show = show
        self.clock = clock
        self._secrets = _secrets(self.headers.get("Authorization", ""))

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

    def scrub(self, text: str) -> str:
        """``text`` with every credential of this client masked (a server may echo one back)."""
        for secret in self._secrets:
            text = text.replace(secret, _MASK)
        return text

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
        answer = self._send(method, path, body, upload)
        if answer.status in ok:
            return answer
        message, code = _message(answer.text)
        if missing_ok and (answer.status == 404 or code == NOT_FOUND or "not found" in message.lower()):
            return None
        if answer.status == 401:
            message += (": this eKuiper requires authentication; pass --token with a JWT it accepts "
                        "(or --user NAME:PASSWORD for a proxy in front of it; or $EKUIPER_TOKEN, $EKUIPER_USER)")
        raise DeployError(message, method=method, url=self.url(path), status=answer.status, code=code)

    def _send(self, method: str, path: str, body: Any, upload: Optional[str]) -> Response:
        data, content_type = self._encode(body, upload)
        headers = dict(self.headers, **({"Content-Type": content_type} if content_type else {}))
        url = self.url(path)
        try:
            status, raw = exchange(method, url, data, headers, deadline=Deadline(self.timeout, self.clock),
                                   max_bytes=self.max_answer)
        except Expired:
            raise DeployError(f"no complete answer within {self.timeout:g} s: eKuiper is busy or stuck, or --server "
                              "is not eKuiper's REST API (wait longer with --timeout S)", method=method,
                              url=url) from None
        except TooLarge:
            raise DeployError(f"the answer is larger than {self.max_answer} bytes, the most ekdsl reads: is --server "
                              "eKuiper's REST API? (read more with --max-answer MIB)", method=method, url=url) from None
        except CrossOrigin as exc:
            there = "{}://{}{}".format(*origin(exc.url)[:2], f":{origin(exc.url).port}")
            raise DeployError(f"the server redirected ({exc.code}) to another origin, {there}: ekdsl follows "
                              f"redirects within {self.server} only, so that credentials and packages go nowhere "
                              "else (eKuiper itself never redirects); if eKuiper is there, give it as --server",
                              method=method, url=url) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            reason = self.scrub(str(getattr(exc, "reason", exc)))
            raise DeployError(f"cannot reach eKuiper at {self.server} ({reason}): is it running, and is its REST "
                              "port right? (default 9081; choose with --server URL)", method=method,
                              url=url) from None
        return Response(status, self.scrub(raw.decode("utf-8", "replace")), method, url)

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
        if "Authorization" in self.headers:
            self.show(f"  Authorization: {_MASK} (set, not shown)")
        if body is not None:
            self.show(f"  {json.dumps(body)}")
        for command in kuiper:
            self.show(f"  = {command}")


def _secrets(authorization: str) -> List[str]:
    """The texts that reveal a credential, longest first: the header, its token, a basic-auth password.

    Texts under 4 characters are left alone (masking them would garble every message)."""
    found = [authorization, authorization.partition(" ")[2]]
    if authorization.startswith("Basic "):
        try:
            user = base64.b64decode(found[1], validate=True).decode("utf-8")
        except ValueError:
            user = ""
        found += [user, user.partition(":")[2]]
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)
