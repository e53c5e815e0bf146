"""Clients that call an ekdsl service exactly as eKuiper's executors do (``internal/service/``), written from
eKuiper's rules, not from ekdsl's schema module: the proto types of the test plugin are spelled out here."""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import socket
from typing import Any, Dict, List, Optional, Sequence, Tuple

import msgpack

# method → request fields (name, proto type, repeated); reply: a wrapper's scalar, or "message"
FIELDS: Dict[str, List[Tuple[str, str, bool]]] = {
    "add": [("a", "int64", False), ("b", "int64", False)],
    "shout": [("text", "string", False)],
    "tau": [],
    "boom": [("x", "int64", False)],
    "leave": [("x", "int64", False)],
    "stats": [("values", "double", True)],
    "scale": [("values", "double", True), ("factor", "double", False)],
    "flip": [("data", "bytes", False)],
    "positive": [("x", "double", False)],
    "whoami": [],
    "crash": [("code", "int64", False)],
    "nosuch": [],
    "nap": [("marker", "string", False), ("seconds", "double", False)],
}
REPLY = {"add": "int64", "shout": "string", "tau": "double", "boom": "int64", "leave": "int64",
         "stats": "message", "scale": "message", "flip": "bytes", "positive": "bool", "whoami": "int64",
         "nap": "string", "nosuch": "string", "crash": "int64"}
_ZERO = {"int64": 0, "double": 0.0, "string": "", "bool": False, "bytes": b""}


class CallFailed(Exception):
    """The service answered an error (eKuiper makes it the function's error)."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def jsonpb(method: str, args: Sequence[Any]) -> bytes:
    """``dynamic.Message.MarshalJSON``: lowerCamelCase names, int64 as strings, bytes as base64, zero values
    and empty lists left out."""
    out: Dict[str, Any] = {}
    for (name, proto, repeated), value in zip(FIELDS[method], args):
        if value is None or (repeated and not value) or (not repeated and value == _ZERO[proto]):
            continue
        items = value if repeated else [value]
        enc = [str(v) if proto == "int64" else base64.b64encode(v).decode() if proto == "bytes" else v
               for v in items]
        out[_camel(name)] = enc if repeated else enc[0]
    return json.dumps(out).encode()


class RestClient:
    """``httpExecutor``: POST /<method>, JSON body; the reply by content type; one keep-alive connection."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method: str, *args: Any, body: Optional[bytes] = None) -> Any:
        self.conn.request("POST", f"/{method}", body=jsonpb(method, args) if body is None else body,
                          headers={"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        if not 200 <= resp.status <= 299:
            raise CallFailed(resp.status, data.decode())
        ctype = resp.getheader("Content-Type", "")
        if ctype.startswith("application/json"):
            return json.loads(data)
        assert ctype.startswith("text/plain"), ctype
        kind = REPLY[method]  # ConvertReturnText: DecodeField(string, field 1 of the wrapper, CONVERT_ALL)
        text = data.decode("utf-8", "surrogateescape")  # Go: string(buf), any bytes
        return {"int64": int, "double": float, "string": str, "bool": lambda t: t == "true",
                "bytes": lambda _t: data}[kind](text)

    def close(self) -> None:
        self.conn.close()


class MsgpackClient:
    """ugorji's MsgpackSpecRpc client codec under Go's net/rpc: ``[0, msgid, method, params]``, strings and
    ``[]byte`` both as raw strings, params ``[nil]`` / ``[p]`` / ``[p1, ...]``."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.unpacker = msgpack.Unpacker(raw=True, strict_map_key=False)
        self.ids = itertools.count(1)

    def send(self, method: str, params: List[Any]) -> int:
        msgid = next(self.ids)
        self.sock.sendall(msgpack.packb([0, msgid, method, params], use_bin_type=False))
        return msgid

    def receive(self) -> Tuple[int, Any, Any]:
        while True:
            for message in self.unpacker:
                kind, msgid, error, result = message
                assert kind == 1
                return msgid, error, result
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the service closed the connection")
            self.unpacker.feed(data)

    def call(self, method: str, *args: Any) -> Any:
        params = [None] if not args else [args[0]] if len(args) == 1 else list(args)
        msgid = self.send(method, params)
        got, error, result = self.receive()
        assert got == msgid
        if error:
            raise CallFailed(error.decode())
        return _text(result) if REPLY[method] != "bytes" else result

    def close(self) -> None:
        self.sock.close()


def _text(value: Any) -> Any:
    """ugorji decodes raw strings into ``interface{}`` as ``[]byte``; eKuiper's cast turns them into text."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, dict):
        return {_text(k): _text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value
