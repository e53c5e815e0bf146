"""``dev TARGET serve``: the REST API of eKuiper's plugin test server (``tools/plugin_server``).

``POST /symbol/start`` and ``POST /symbol/stop`` take a Control JSON body
(``{"symbolName": ..., "pluginType": "source"|"sink"|"func", "config": {...}}``). A started
source prints its rows; a sink is fed the tool's two mock rows every second; a function is called
with the tool's mock arguments every second. Meta is ``rule1``/``op1``/instance 1, as in the tool.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Tuple

from ..errors import EkdslError
from ..kinds import Kind, kind_of_wire
from ..transport import Timeout
from .emulator import Emulator

__all__ = ["serve"]

MOCK_SINK_DATA = [{"name": "hello", "count": 5}, {"name": "world", "count": 10}]
MOCK_FUNC_DATA = [["twelve"], ["eleven"]]


class _Symbols:
    def __init__(self, emu: Emulator, out: Callable[[str], None]) -> None:
        self.emu, self.out = emu, out
        self.running: Dict[str, Tuple[threading.Event, threading.Thread]] = {}
        self.lock = threading.Lock()

    def start(self, ctrl: Dict[str, Any]) -> Tuple[int, str]:
        name, ptype = str(ctrl.get("symbolName", "")), str(ctrl.get("pluginType", ""))
        config = ctrl.get("config") or {}
        key = ptype + name
        with self.lock:
            if key in self.running:
                return 400, f"source symbol {name} already exists"
        stop = threading.Event()
        loop: Callable[[Any, threading.Event], None]
        kind = kind_of_wire(ptype)
        if kind is None:
            return 400, f"invalid plugin type {ptype}"
        try:
            handle: Any
            if kind == Kind.SOURCE:
                handle = self.emu.host.start_source(name, config, rule="rule1", op="op1", instance=1)
                loop = self._source
            elif kind == Kind.SINK:
                handle = self.emu.host.start_sink(name, config, rule="rule1", op="op1", instance=1)
                loop = self._sink
            else:
                handle = self.emu.function(name)
                loop = self._func
        except EkdslError as exc:
            return 400, f"running {ptype} {name} {exc}"
        thread = threading.Thread(target=loop, args=(handle, stop), daemon=True)
        with self.lock:
            self.running[key] = (stop, thread)
        thread.start()
        return 200, "ok"

    def stop(self, ctrl: Dict[str, Any]) -> Tuple[int, str]:
        key = str(ctrl.get("pluginType", "")) + str(ctrl.get("symbolName", ""))
        with self.lock:
            entry = self.running.pop(key, None)
        if entry is None:
            return 400, f"Symbol {ctrl.get('symbolName')} already close"
        entry[0].set()
        entry[1].join(5)
        return 200, "ok"

    def _source(self, handle: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                msg, _ = handle.recv(0.5)
                self.out(json.dumps(msg))
            except Timeout:
                continue
            except EkdslError as exc:
                self.out(str(exc))
        self.emu.host.stop_source(handle)

    def _sink(self, handle: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            for row in MOCK_SINK_DATA:
                try:
                    handle.send(json.dumps(row).encode())
                except EkdslError as exc:
                    self.out(f"cannot collect data: {exc}")
                if stop.wait(1.0):
                    break
        self.out("stop sink")
        self.emu.host.stop_sink(handle)

    def _func(self, handle: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            for args in MOCK_FUNC_DATA:
                ok, result = handle.exec(*args, rule="rule1", op="op1", instance=1)
                self.out(json.dumps(result) if ok else "cannot exec func")
                if stop.wait(1.0):
                    break
        self.out("stop func")


def serve(emu: Emulator, port: int, out: Callable[[str], None]) -> int:
    """Serve until interrupted; return the exit code."""
    symbols = _Symbols(emu, out)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            routes = {"/symbol/start": symbols.start, "/symbol/stop": symbols.stop}
            route = routes.get(self.path)
            if route is None:
                self._reply(404, "404 page not found")
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
            except ValueError as exc:
                self._reply(400, f"Invalid body: decode error {exc}")
                return
            self._reply(*route(body))

        def _reply(self, status: int, text: str) -> None:
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args: Any) -> None:
            out(f"http: {fmt % args}")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    out(f"serving eKuiper's plugin test API on http://127.0.0.1:{server.server_address[1]}")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        for key in list(symbols.running):
            stop, thread = symbols.running.pop(key)
            stop.set()
            thread.join(5)
    return 0
