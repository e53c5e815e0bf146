"""Fast unit tests of symbols: the runtime's own runners, in this process, over in-memory channels.

No process is launched and no socket is opened, but config binding, coercion, sink framings, acks and
function replies go through exactly the code that serves eKuiper.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..errors import ProtocolError
from ..kinds import Kind
from ..model import PluginModel, SymbolModel
from ..plugin import Plugin, load_target
from ..protocol import (
    Control,
    Meta,
    aggregate_args,
    decode_ack,
    decode_func_reply,
    decode_source_message,
    encode_func_request,
    func_context,
    require_ack,
    sink_payload,
)
from ..runtime.binding import bind_config, make_context
from ..runtime.connections import Connections, InstanceConnections, open_connections
from ..runtime.function import FunctionHandler
from ..runtime.logs import instance_logger
from ..runtime.sink import SinkRunner
from ..runtime.source import SourceRunner
from ..state import Location, Scope, State, Stores, parse_location
from ..transport import Closed, Socket, Timeout
from .host import check_require_ack, source_config

__all__ = ["InProcess", "MemorySocket"]

WAKE_SLICE = 0.02  # seconds between checks for close() while a receive waits


class MemorySocket(Socket):
    """One direction of an in-memory channel with the :class:`~ekdsl.transport.Socket` interface."""

    interruptible = True

    def __init__(self, url: str, q: Optional[queue.Queue[bytes]] = None, maxsize: int = 0) -> None:
        super().__init__("memory", url)
        self.queue: queue.Queue[bytes] = q if q is not None else queue.Queue(maxsize)
        self.closed = threading.Event()

    def send(self, data: bytes) -> None:
        if self.closed.is_set():
            raise Closed(f"{self.url} is closed", self.url)
        try:
            self.queue.put(bytes(data), timeout=self._send_timeout)
        except queue.Full:
            raise Timeout(f"send timed out on {self.url}", self.url) from None

    def recv(self) -> bytes:
        """The next message; :class:`Closed` as soon as :meth:`close` is called, even while waiting."""
        limit = self._recv_timeout
        deadline = None if limit is None else time.monotonic() + limit
        while not self.closed.is_set():
            left = WAKE_SLICE if deadline is None else min(WAKE_SLICE, deadline - time.monotonic())
            if left <= 0:
                raise Timeout(f"receive timed out on {self.url}", self.url)
            try:
                return self.queue.get(timeout=left)
            except queue.Empty:
                continue
        raise Closed(f"{self.url} is closed", self.url)

    def close(self) -> None:
        self.closed.set()


class _Source:
    def __init__(self, runner: SourceRunner, rows: queue.Queue[bytes], started: Dict[str, Any]) -> None:
        self.runner, self._rows, self.started = runner, rows, started

    @property
    def state(self) -> State:
        """The instance's ``ctx.state``."""
        return self.runner.ctx.state

    def recv(self, timeout: float = 5.0) -> Tuple[Optional[Dict[str, Any]], Dict[str, Any]]:
        """The next ``(message, meta)`` as eKuiper decodes it."""
        try:
            return decode_source_message(self._rows.get(timeout=timeout))
        except queue.Empty:
            raise Timeout("no row within the timeout") from None

    def rows(self, n: int, timeout: float = 5.0) -> List[Dict[str, Any]]:
        return [(self.recv(timeout)[0] or {}) for _ in range(n)]

    def stop(self) -> bool:
        return _stop(self.runner)


def _stop(runner: Any) -> bool:
    """Stop a runner; its leases on shared connections go once its code has returned."""
    finished: bool = runner.stop()
    links: Optional[InstanceConnections] = runner.ctx.connections
    if links is not None:
        links.release_when_done(runner.done)
    return finished


class _Sink:
    def __init__(self, runner: SinkRunner, data: MemorySocket, acks: queue.Queue[bytes],
                 started: Dict[str, Any]) -> None:
        self.runner, self._data, self._acks, self.started = runner, data, acks, started

    @property
    def state(self) -> State:
        """The instance's ``ctx.state``."""
        return self.runner.ctx.state

    def send(self, payload: Union[bytes, Any], timeout: float = 5.0) -> Optional[str]:
        """Deliver one payload (bytes, or a value sent as eKuiper's JSON); with requireAck return its ack
        (``None`` = ok, else the error text)."""
        self._data.send(sink_payload(payload))
        if not self.runner.require_ack:
            return None
        try:
            return decode_ack(self._acks.get(timeout=timeout))
        except queue.Empty:
            raise Timeout("no ack within the timeout") from None

    def stop(self) -> bool:
        return _stop(self.runner)


class _Function:
    def __init__(self, handler: FunctionHandler) -> None:
        self.handler = handler

    def call(self, func: str, arg: Any) -> Tuple[bool, Any]:
        return decode_func_reply(self.handler.handle(encode_func_request(func, arg)))

    def validate(self, *nodes: Any) -> Tuple[bool, Any]:
        return self.call("Validate", list(nodes))

    def is_aggregate(self) -> Tuple[bool, Any]:
        return self.call("IsAggregate", None)

    def exec(self, *args: Any, rule: str = "rule1", op: str = "op1", instance: int = 0,
             func_id: int = 0) -> Tuple[bool, Any]:
        """Call the function as eKuiper does: an aggregate's arguments are sent as columns
        (:func:`~ekdsl.protocol.aggregate_args`), ``bytes`` as base64 (Go ``[]byte``)."""
        if self.handler.sym.aggregate:
            args = tuple(aggregate_args(args))
        return self.call("Exec", [*args, func_context(rule, op, instance, func_id)])

    def state(self, rule: str = "rule1", op: str = "op1", instance: int = 0, func_id: int = 0) -> State:
        """The ``ctx.state`` the function sees when called from ``rule``/``op``/``instance`` at ``func_id``."""
        sym = self.handler.sym
        return State(self.handler.stores.store(self.handler.plugin),
                     Scope("function", sym.name, rule, op, instance, func_id))


Handle = Union[_Source, _Sink]


class InProcess:
    """Run a plugin's symbols in this process. ``target`` is a :class:`Plugin` or a target string.

    ``state`` is where ``ctx.state`` lives: a folder or a ``redis://`` URL, kept after :meth:`close` (so a second
    ``InProcess`` resumes from it); by default a private folder removed by :meth:`close`.
    """

    def __init__(self, target: Union[Plugin, str], state: Union[str, os.PathLike[str], None] = None) -> None:
        plugin = target if isinstance(target, Plugin) else load_target(target)
        self.model: PluginModel = plugin.model()
        self.connections = Connections()  # the shared connections' clients, as the plugin process keeps them
        self._running: List[Any] = []
        self._scratch: Optional[str] = None
        self.stores = Stores(parse_location(os.fspath(state), "InProcess(state=...)")) if state is not None \
            else Stores(find=self._scratch_location)

    def _scratch_location(self) -> Location:
        self._scratch = tempfile.mkdtemp(prefix="ekdsl-state-")
        return Location("sqlite", folder=self._scratch, origin="InProcess, removed at close")

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _symbol(self, kind: Kind, name: str) -> SymbolModel:
        sym = self.model.get(kind, name)
        if sym is None:
            raise ProtocolError(f"symbol not found: {kind} '{name}' is not in plugin '{self.model.name}'")
        return sym

    def _bind(self, sym: SymbolModel, control: Control) -> Tuple[Dict[str, Any], Any]:
        """Arguments and context of a start, its shared connections leased (:class:`ConnectionFailed` if one
        cannot be opened)."""
        log = instance_logger(sym.name, sym.kind, control.meta)
        kwargs, config = bind_config(sym, control, log)
        links = open_connections(sym, kwargs, self.connections)
        return kwargs, make_context(self.model.name, sym, control, config, log, self.stores, links)

    def source(self, name: str, config: Optional[Mapping[str, Any]] = None, datasource: str = "",
               rule: str = "rule1", op: str = "stream1", buffer: int = 1000) -> _Source:
        """Start a source with eKuiper's always-set keys plus ``config``; rows are buffered up to ``buffer``."""
        sym = self._symbol(Kind.SOURCE, name)
        conf = source_config({}, "", datasource, extra=dict(config or {}))
        control = Control(name, Kind.SOURCE.wire, Meta(rule, op), config=conf)
        kwargs, ctx = self._bind(sym, control)
        sock = MemorySocket(f"memory://{rule}_{op}", maxsize=buffer)
        runner = SourceRunner(sym, kwargs, ctx, sock, ctx.logger)
        runner.start()
        self._running.append(runner)
        return _Source(runner, sock.queue, {"name": name, "config": config, "datasource": datasource, "rule": rule,
                                            "op": op, "buffer": buffer})

    def sink(self, name: str, config: Optional[Mapping[str, Any]] = None, rule: str = "rule1",
             op: str = "sink_0") -> _Sink:
        sym = self._symbol(Kind.SINK, name)
        check_require_ack(config or {})
        control = Control(name, Kind.SINK.wire, Meta(rule, op), config=dict(config or {}))
        kwargs, ctx = self._bind(sym, control)
        data = MemorySocket(f"memory://{rule}_{op}")
        ack = MemorySocket(f"memory://{rule}_{op}_ack")
        runner = SinkRunner(sym, kwargs, ctx, data, ack, require_ack(control.config), ctx.logger)
        runner.start()
        self._running.append(runner)
        return _Sink(runner, data, ack.queue, {"name": name, "config": config, "rule": rule, "op": op})

    def function(self, name: str) -> _Function:
        sym = self._symbol(Kind.FUNCTION, name)
        return _Function(FunctionHandler(self.model.name, sym, instance_logger(sym.name, sym.kind), self.stores))

    def restart(self, handle: Handle) -> Handle:
        """Stop a source or sink and start it again as its rule would be: same settings, same state."""
        handle.stop()
        if handle.runner in self._running:
            self._running.remove(handle.runner)
        if isinstance(handle, _Source):
            return self.source(**handle.started)
        return self.sink(**handle.started)

    @property
    def shared_state(self) -> State:
        """The plugin's ``ctx.state.shared``."""
        return State(self.stores.store(self.model.name), Scope("shared"))

    def close(self) -> None:
        """Stop everything started; remove the private state folder (a ``state=`` given is kept)."""
        for runner in self._running:
            _stop(runner)
        self._running.clear()
        self.connections.close_all()
        self.stores.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

