"""Clients that call an ekdsl service exactly as eKuiper's executors do (``internal/service/``), written from
eKuiper's rules, not from ekdsl's schema module: the proto types of the test plugin are spelled out here."""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import msgpack

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = Path(__file__).resolve().parent / "plugins" / "svcfuncs.py"
PROTO = Path(__file__).resolve().parent / "golden" / "service" / "svcfuncs.proto"  # what export --service writes

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
    "ipow": [("base", "int64", False), ("exp", "int64", False)],
    "ipows": [("base", "int64", False), ("exps", "int64", True)],
    "whoami": [],
    "crash": [("code", "int64", False)],
    "nosuch": [],
    "nap": [("marker", "string", False), ("seconds", "double", False)],
    "snooze": [("marker", "string", False), ("seconds", "double", False)],
}
REPLY = {"add": "int64", "shout": "string", "tau": "double", "boom": "int64", "leave": "int64",
         "stats": "message", "scale": "message", "flip": "bytes", "positive": "bool", "ipow": "int64",
         "ipows": "message", "whoami": "int64", "nap": "string", "nosuch": "string", "crash": "int64",
         "snooze": "string"}
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
    """``httpExecutor``: POST <prefix>/<method> (the service's address may have a path), JSON body; the reply by
    content type; one keep-alive connection."""

    def __init__(self, port: int, timeout: float = 10.0, prefix: str = "") -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.prefix = prefix

    def call(self, method: str, *args: Any, body: Optional[bytes] = None) -> Any:
        self.conn.request("POST", f"{self.prefix}/{method}", body=jsonpb(method, args) if body is None else body,
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


class GrpcClient:
    """``grpcExecutor``: one channel, each function's rpc by name with a 5 s deadline, arguments set on the request
    message's fields in order (a null left unset), the reply converted back (a wrapper's value, a message as a map
    of every field). The message classes come from protoc run on the exported ``.proto``."""

    def __init__(self, port: int, proto: str, timeout: float = 5.0) -> None:
        import grpc

        self.grpc = grpc
        self.timeout = timeout
        self.pb, self.package, self.service = compile_proto(proto)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")

    def stub(self, method: str, request_cls: Any, reply_cls: Any) -> Any:
        return self.channel.unary_unary(f"/{self.package}.{self.service}/{method}",
                                        request_serializer=request_cls.SerializeToString,
                                        response_deserializer=reply_cls.FromString)

    def call(self, method: str, *args: Any, timeout: Optional[float] = None) -> Any:
        req_cls, reply_cls = self.classes(method)
        request = req_cls()
        for field, value in zip(req_cls.DESCRIPTOR.fields, args):
            if value is None:
                continue
            if _repeated(field):
                getattr(request, field.name).extend(value)
            else:
                setattr(request, field.name, value)
        try:
            reply = self.stub(method, req_cls, reply_cls)(request, timeout=timeout or self.timeout)
        except self.grpc.RpcError as exc:
            raise CallFailed(exc.code().name, exc.details()) from None
        if reply_cls.DESCRIPTOR.full_name.startswith("google.protobuf."):
            return reply.value
        return {f.name: (list(getattr(reply, f.name)) if _repeated(f) else getattr(reply, f.name))
                for f in reply_cls.DESCRIPTOR.fields}

    def call_raw(self, method: str, data: bytes, timeout: Optional[float] = None) -> bytes:
        """Send ``data`` as the request of ``method`` (any rpc name), return the reply's bytes."""
        stub = self.channel.unary_unary(f"/{self.package}.{self.service}/{method}")
        try:
            reply: bytes = stub(data, timeout=timeout or self.timeout)
            return reply
        except self.grpc.RpcError as exc:
            raise CallFailed(exc.code().name, exc.details()) from None

    def classes(self, method: str) -> Tuple[Any, Any]:
        from google.protobuf import symbol_database

        desc = self.pb.DESCRIPTOR.services_by_name[self.service].methods_by_name[method]
        db = symbol_database.Default()
        return (db.GetSymbol(desc.input_type.full_name), db.GetSymbol(desc.output_type.full_name))

    def close(self) -> None:
        self.channel.close()


def _repeated(field: Any) -> bool:
    """Whether a protobuf field is repeated (``is_repeated`` in newer protobuf, ``label`` in older)."""
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return bool(field.label == field.LABEL_REPEATED)


_COMPILED: Dict[str, Tuple[Any, str, str]] = {}


def compile_proto(proto: str) -> Tuple[Any, str, str]:
    """``(module, package, service)`` of a ``.proto`` compiled by protoc (grpcio-tools), once per file."""
    if proto not in _COMPILED:
        import importlib.util
        import os
        import tempfile

        import grpc_tools
        from grpc_tools import protoc

        out = tempfile.mkdtemp(prefix="ekdsl-pb-")
        folder, name = os.path.split(proto)
        well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        code = protoc.main(["protoc", f"-I{folder}", f"-I{well_known}", f"--python_out={out}", proto])
        assert code == 0, f"protoc refused {proto}"
        module_name = name[:-len(".proto")] + "_pb2"
        spec = importlib.util.spec_from_file_location(module_name, os.path.join(out, module_name + ".py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        service = next(iter(module.DESCRIPTOR.services_by_name))
        _COMPILED[proto] = (module, module.DESCRIPTOR.package, service)
    return _COMPILED[proto]


class Server:
    """A server process started with ``argv``; its output lines (stdout and stderr) in a queue."""

    def __init__(self, argv: Sequence[str], env: Optional[Dict[str, str]] = None) -> None:
        self.proc = subprocess.Popen(list(argv), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: List[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def _expect(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}: {''.join(self.output)}") from None
            match = re.search(pattern, line)
            if match:
                return match

    def stop(self) -> int:
        """SIGTERM, then its exit status (killed after 30 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


class Service(Server):
    """A ``python -m ekdsl service`` process on a free port."""

    def __init__(self, protocol: str, *extra: str, plugin: Path = PLUGIN, prefix: Sequence[str] = ()) -> None:
        super().__init__([*prefix, sys.executable, "-m", "ekdsl", "service", str(plugin), "--listen", "127.0.0.1:0",
                          "--protocol", protocol, *extra])
        self.port = int(self._expect(r"serving .* on 127\.0\.0\.1:(\d+)").group(1))


class Gunicorn(Server):
    """gunicorn with ``workers`` workers of ekdsl's worker class serving the REST application of ``plugin``."""

    def __init__(self, workers: int, plugin: Path = PLUGIN, **env: str) -> None:
        extra = []
        help_text = subprocess.run([sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True,
                                   timeout=60).stdout
        if "--no-control-socket" in help_text:
            extra.append("--no-control-socket")  # newer gunicorn: else every instance shares ~/.gunicorn/
        super().__init__([sys.executable, "-m", "gunicorn", "-k", "ekdsl.service.gunicorn.Worker", "-w",
                          str(workers), "-b", "127.0.0.1:0", "--graceful-timeout", "5", *extra,
                          f"ekdsl.service.asgi:app({str(plugin)!r})"], env={**os.environ, **env})
        self.port = int(self._expect(r"Listening at: http://127\.0\.0\.1:(\d+)").group(1))
        for _ in range(workers):
            self._expect(r"Application startup complete")
