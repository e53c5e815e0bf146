"""The plugin process: the control loop, and the registry of running symbol instances."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any, Dict, Optional, Union

from ..errors import EkdslError, ProtocolError, TransportError
from ..model import PluginModel, SymbolModel
from ..protocol import (
    REPLY_OK,
    Control,
    ack_url,
    control_url,
    data_url,
    decode_command,
    error_reply,
    func_url,
    require_ack,
)
from ..transport import open_socket
from .answer import answer_loop
from .binding import bind_config, make_context
from .function import FunctionHandler, FunctionService
from .logs import instance_logger
from .sink import SinkRunner
from .source import SourceRunner

__all__ = ["PluginServer"]

TICK = 1.0  # the control loop looks at its parent and at shutdown requests this often
_KINDS = {"source": "source", "sink": "sink", "func": "function"}
Runner = Union[SourceRunner, SinkRunner]


class PluginServer:
    """Answers eKuiper's control commands and owns every running instance."""

    def __init__(self, model: PluginModel, log: Optional[logging.Logger] = None,
                 socket_dir: Optional[str] = None) -> None:
        self.model = model
        self.log = log or logging.getLogger("ekdsl")
        self.socket_dir = socket_dir
        self.instances: Dict[str, Runner] = {}
        self.functions: Dict[str, FunctionService] = {}
        self._lock = threading.Lock()
        self._shutdown = threading.Event()

    # ---- commands (pure dispatch over the model; sockets opened by the runners' factories)

    def handle(self, payload: bytes) -> bytes:
        """Answer one control message: ``ok`` or an error text. Never raises."""
        try:
            cmd = decode_command(payload)
        except ProtocolError as exc:
            self.log.error("refused control message: %s", exc)
            return error_reply(str(exc))
        except Exception as exc:  # whatever else a hostile message can provoke: answer, never die
            self.log.exception("refused control message")
            return error_reply(f"malformed control message: {type(exc).__name__}")
        ctrl = cmd.control
        try:
            if cmd.cmd == "stop":
                self.stop_instance(ctrl)
                return REPLY_OK
            self.start_instance(ctrl)
            return REPLY_OK
        except EkdslError as exc:
            self.log.error("cannot start %s %s: %s", ctrl.plugin_type, ctrl.key, exc)
            return error_reply(str(exc))
        except Exception as exc:
            self.log.exception("cannot start %s %s", ctrl.plugin_type, ctrl.key)
            return error_reply(f"{type(exc).__name__}: {exc}")

    def _symbol(self, ctrl: Control) -> SymbolModel:
        kind = _KINDS[ctrl.plugin_type]
        sym = self.model.get(kind, ctrl.symbol_name)
        if sym is None:
            have = ", ".join(s.name for s in self.model.of_kind(kind)) or "none"
            raise ProtocolError(f"symbol not found: {kind} '{ctrl.symbol_name}' is not in plugin "
                                f"'{self.model.name}' (its {kind}s: {have})")
        return sym

    def start_instance(self, ctrl: Control) -> None:
        sym = self._symbol(ctrl)
        if sym.kind == "function":
            self.start_functions()
            return
        with self._lock:
            old = self.instances.pop(ctrl.key, None)
        if old is not None:
            self.log.info("restarting %s", ctrl.key)
            old.stop()
        log = instance_logger(sym.name, sym.kind, ctrl.meta)
        kwargs, config = bind_config(sym, ctrl, log)
        ctx = make_context(self.model.name, sym, ctrl, config, log)
        runner: Runner
        if sym.kind == "source":
            sock = open_socket("push", data_url(ctrl.meta, self.socket_dir), attempts=50, interval=0.1)
            runner = SourceRunner(sym, kwargs, ctx, sock, log)
        else:
            data = open_socket("pull", data_url(ctrl.meta, self.socket_dir), listen=True, attempts=11,
                               interval=0.05)
            try:
                ack = open_socket("push", ack_url(ctrl.meta, self.socket_dir), attempts=50, interval=0.1)
            except TransportError:
                data.close()
                raise
            runner = SinkRunner(sym, kwargs, ctx, data, ack, require_ack(config), log)
        with self._lock:
            self.instances[ctrl.key] = runner
        runner.start()
        log.info("started")

    def start_functions(self) -> None:
        """Serve every declared function (eKuiper replays only the last function start after a restart)."""
        with self._lock:
            for sym in self.model.functions:
                if sym.name in self.functions:
                    continue
                log = instance_logger(sym.name, "function")
                sock = open_socket("req", func_url(sym.name, self.socket_dir), block=False)
                service = FunctionService(FunctionHandler(self.model.name, sym, log), sock, log)
                self.functions[sym.name] = service
                service.start()

    def stop_instance(self, ctrl: Control) -> None:
        """Stop an instance; unknown keys and functions are fine (stop is idempotent)."""
        with self._lock:
            runner = self.instances.pop(ctrl.key, None)
        if runner is None:
            self.log.debug("stop of %s: not running", ctrl.key)
            return
        runner.stop()
        runner.ctx.logger.info("stopped")

    def stop_all(self) -> None:
        with self._lock:
            runners = list(self.instances.values())
            services = list(self.functions.values())
            self.instances.clear()
            self.functions.clear()
        for r in runners:
            r.stop(wait=1.0)
        for s in services:
            s.stop()

    # ---- the control loop

    def request_shutdown(self, *_: Any) -> None:
        self._shutdown.set()

    def serve(self, watch_parent: bool = True) -> int:
        """Connect to eKuiper and answer commands until shutdown; return the exit code."""
        url = control_url(self.model.name, self.socket_dir)
        try:
            sock = open_socket("req", url, attempts=51, interval=0.1)
        except TransportError as exc:
            self.log.error("cannot reach eKuiper's control socket: %s", exc)
            return 1
        parent = os.getppid()
        try:
            self._loop(sock, parent if watch_parent else None)
        finally:
            self.stop_all()
            sock.close()
        self.log.info("plugin %s exits", self.model.name)
        return 0

    def _loop(self, sock: Any, parent: Optional[int]) -> None:
        sock.recv_timeout = TICK
        sock.send_timeout = TICK

        def parent_gone() -> bool:
            if parent is not None and os.getppid() != parent:
                self.log.warning("eKuiper (pid %d) is gone; exiting", parent)
                return True
            return False

        answer_loop(sock, self.handle, self._shutdown.is_set, parent_gone)


def install_signal_handlers(server: PluginServer) -> None:
    """SIGTERM and SIGINT stop every instance and exit 0."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, server.request_shutdown)
        signal.signal(signal.SIGINT, server.request_shutdown)
