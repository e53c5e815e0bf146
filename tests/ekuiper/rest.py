"""A small client of eKuiper's REST API (standard library only) and the helpers the real-server suite shares."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

URL_ENV = "EKDSL_EKUIPER_URL"


class RestError(AssertionError):
    """A REST call answered with an unexpected status."""


class Server:
    """eKuiper at ``url`` (e.g. ``http://127.0.0.1:9081``)."""

    def __init__(self, url: str, timeout: float = 90.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None) -> Tuple[int, Any]:
        """(HTTP status, decoded JSON or text) of one request; never raises on an HTTP error status."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        text = raw.decode("utf-8", "replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def ok(self, method: str, path: str, body: Any = None, expect: Tuple[int, ...] = (200, 201)) -> Any:
        status, payload = self.call(method, path, body)
        if status not in expect:
            raise RestError(f"{method} {path} -> {status} {payload!r}")
        return payload

    # plugins
    def install(self, name: str, zip_path: str) -> Any:
        return self.ok("POST", "/plugins/portables", {"name": name, "file": f"file://{zip_path}"})

    def update(self, name: str, zip_path: str) -> Any:
        return self.ok("PUT", f"/plugins/portables/{name}", {"name": name, "file": f"file://{zip_path}"})

    def plugin(self, name: str) -> Tuple[int, Any]:
        return self.call("GET", f"/plugins/portables/{name}")

    def plugin_status(self, name: str) -> Any:
        return self.ok("GET", f"/plugins/portables/{name}/status")

    def uninstall(self, name: str) -> Tuple[int, Any]:
        return self.call("DELETE", f"/plugins/portables/{name}")

    # streams and rules
    def stream(self, sql: str) -> Any:
        return self.ok("POST", "/streams", {"sql": sql})

    def rule(self, rule_id: str, sql: str, actions: List[Dict[str, Any]], **options: Any) -> Tuple[int, Any]:
        body: Dict[str, Any] = {"id": rule_id, "sql": sql, "actions": actions}
        if options:
            body["options"] = options
        return self.call("POST", "/rules", body)

    def status(self, rule_id: str) -> Dict[str, Any]:
        payload = self.ok("GET", f"/rules/{rule_id}/status")
        assert isinstance(payload, dict), payload
        return payload

    def drop_rule(self, rule_id: str) -> None:
        self.call("DELETE", f"/rules/{rule_id}")

    def drop_stream(self, name: str) -> None:
        self.call("DELETE", f"/streams/{name}")


def server_from_env() -> Optional[Server]:
    url = os.environ.get(URL_ENV, "")
    return Server(url) if url else None


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll until ``predicate`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {value!r})")
        time.sleep(interval)


def read_lines(path: Path) -> List[Any]:
    """The JSON values a recording sink appended to ``path``, one per line (none if it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def metric(status: Dict[str, Any], prefix: str, suffix: str) -> Any:
    """The value of the one metric ``<prefix>...<suffix>`` (e.g. ``sink_``, ``_records_out_total``)."""
    found = [v for k, v in status.items() if k.startswith(prefix) and k.endswith(suffix)]
    assert len(found) == 1, f"expected one metric {prefix}*{suffix}, got {sorted(status)}"
    return found[0]


def require_server() -> None:
    """Skip the calling test module unless a running eKuiper is named by ``EKDSL_EKUIPER_URL``."""
    import pytest

    if server_from_env() is None:
        pytest.skip(f"needs a running eKuiper: set {URL_ENV}=http://127.0.0.1:9081 to run the real-server suite",
                    allow_module_level=True)
