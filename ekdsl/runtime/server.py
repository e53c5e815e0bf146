"""The plugin process: the control loop, and the registry of running symbol instances.

The control loop runs on its own thread and never runs user code: the user's module is imported on the
calling thread (after the handshake when the plugin's name is known beforehand), property conversion
(which may call a dataclass's ``__post_init__``) runs on a helper thread within :data:`START_BUDGET`, and
sources, sinks and functions run on their own threads.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import signal
import threading
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Union

from ..errors import ConnectionFailed, EkdslError, ProtocolError, TransportError
from ..kinds import KINDS, Kind, kind_of_wire
from ..model import PluginModel, SymbolModel
from ..protocol import (
    REPLY_OK,
    Control,
    control_url,
    decode_command,
    error_reply,
    func_url,
)
from ..session import KEEPALIVE
from ..transport import Socket, open_socket
from .answer import answer_loop
from .binding import bind_config, make_context
from .connections import Connections, InstanceConnections, open_connections
from .function import FunctionHandler, FunctionService
from .logs import instance_logger
from .sink import SinkRunner
from .source import SourceRunner

__all__ = ["LOAD_WAIT", "RESTART_WINDOW", "START_BUDGET", "STOP_GRACE", "PluginServer", "StartError"]

TICK = 1.0  # over pynng, the control loop looks at eKuiper's process and at shutdown requests this often
PARENT_LOOK = 60.0  # without a pidfd, an idle control channel whose keepalive is unread looks at its parent this often
START_BUDGET = 2.0  # seconds a start may spend converting properties (user code) before it is answered an error
STOP_GRACE = 1.0  # seconds a stopping instance gets to finish; at shutdown, all of them together
RESTART_WINDOW = 10.0  # a late stop of a rule's previous run is recognised for this long after its restart
LOAD_WAIT = 60.0  # a start waits this long for the user's module to finish importing (eKuiper's initTimeout)
Runner = Union[SourceRunner, SinkRunner]
Clock = Callable[[], float]


class StartError(EkdslError):
    """A start command that cannot be carried out; its text is the reply eKuiper shows on the rule."""


class _Instance(NamedTuple):
    control: Control
    runner: Runner
    links: Optional[InstanceConnections] = None  # its leases on shared connections

    def stop(self, wait: float) -> None:
        """Stop the runner; its leases go once its code has returned."""
        self.runner.stop(wait=wait)
        if self.links is not None:
            self.links.release_when_done(self.runner.done)


@functools.cache
def _runner_class(kind: Kind) -> Any:
    """What runs an instance of ``kind``: the kind table's ``runner`` (``module:attr``)."""
    module, _, attr = KINDS[kind].runner.partition(":")
    return getattr(importlib.import_module(module), attr)


class PluginServer:
    """Answers eKuiper's control commands and owns every running instance.

    Instances are identified by their rule, operator and instance number (``Meta``): that names their data
    sockets and is eKuiper's own key for them. ``model`` may come later (:meth:`serve`'s ``load``); ``name``
    is then the plugin's name, which names the control socket.
    """

    def __init__(self, model: Optional[PluginModel], log: Optional[logging.Logger] = None,
                 socket_dir: Optional[str] = None, *, name: Optional[str] = None,
                 start_budget: float = START_BUDGET, load_wait: float = LOAD_WAIT,
                 clock: Clock = time.monotonic) -> None:
        if model is None and not name:
            raise ValueError("PluginServer needs a model or the plugin's name")
        self.model: Optional[PluginModel] = model
        self.name = model.name if model is not None else str(name)
        self.log = log or logging.getLogger("ekdsl")
        self.socket_dir = socket_dir
        self.start_budget = start_budget
        self.load_wait = load_wait
        self.clock = clock
        self.instances: Dict[str, _Instance] = {}
        self.functions: Dict[str, FunctionService] = {}
        self.connections = Connections(self.log)
        self._late_stops: Dict[str, List[Tuple[Control, float]]] = {}  # previous runs' stops still to come
        self._lock = threading.Lock()
        self._shutdown = threading.Event()
        self._wake = threading.Event()  # the serving thread looks up: shutdown requested, or the control loop ended
        self._ready = threading.Event()  # the model is there, or load_error says why it never will be
        self.load_error: Optional[str] = None
        if model is not None:
            self._ready.set()

    # ---- the user's module

    def loaded(self, model: PluginModel) -> None:
        """The module is imported: serve its symbols."""
        self.model = model
        self._ready.set()

    def load_failed(self, message: str) -> None:
        """The module cannot be imported: every start is answered ``message``; the process stays up."""
        self.load_error = message
        self._ready.set()

    def _loaded_model(self) -> PluginModel:
        if not self._ready.wait(self.load_wait):
            raise StartError(f"plugin '{self.name}' is still importing its module after {self.load_wait:g} s; "
                             "start the rule again when it is done (see the plugin's log)")
        if self.model is None:
            raise StartError(self.load_error or f"plugin '{self.name}' has no module loaded")
        return self.model

    # ---- commands (dispatch over the model; sockets opened by the runners' factories)

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
            self.log.error("cannot %s %s %s: %s", cmd.cmd, ctrl.plugin_type, ctrl.key, exc)
            return error_reply(str(exc), str(kind_of_wire(ctrl.plugin_type) or ""))
        except Exception as exc:
            self.log.exception("cannot %s %s %s", cmd.cmd, ctrl.plugin_type, ctrl.key)
            return error_reply(f"{type(exc).__name__}: {exc}")

    def _symbol(self, model: PluginModel, ctrl: Control) -> SymbolModel:
        kind = kind_of_wire(ctrl.plugin_type)
        if kind is None:  # decode_command accepts only the wire names: a caller of start_instance's bug
            raise ProtocolError(f"invalid plugin type {ctrl.plugin_type!r}")
        sym = model.get(kind, ctrl.symbol_name)
        if sym is None:
            have = ", ".join(s.name for s in model.of_kind(kind)) or "none"
            raise ProtocolError(f"symbol not found: {kind} '{ctrl.symbol_name}' is not in plugin "
                                f"'{model.name}' (its {kind}s: {have})")
        return sym

    def _bind(self, sym: SymbolModel, ctrl: Control, log: logging.Logger) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """:func:`bind_config` on a helper thread: it may run user code (``__post_init__``, converters),
        which must neither block the control loop nor end the process."""
        result: List[Any] = []

        def work() -> None:
            try:
                result.append(bind_config(sym, ctrl, log))
            except BaseException as exc:  # SystemExit and KeyboardInterrupt too: they belong to this start
                result.append(exc)

        helper = threading.Thread(target=work, name=f"bind:{sym.name}:{ctrl.key}", daemon=True)
        helper.start()
        helper.join(self.start_budget)
        if not result:
            log.warning("converting the properties is still running after %gs; the start is abandoned",
                        self.start_budget)
            raise StartError(f"{sym.kind} '{sym.name}': converting its properties took longer than "
                             f"{self.start_budget:g} s (a blocking __post_init__ or converter?); the start is "
                             "abandoned")
        outcome = result[0]
        if isinstance(outcome, EkdslError):
            raise outcome
        if isinstance(outcome, BaseException):
            log.error("converting the properties raised", exc_info=outcome)
            raise StartError(f"{sym.kind} '{sym.name}': converting its properties raised "
                             f"{type(outcome).__name__}: {outcome}")
        kwargs, config = outcome
        return kwargs, config

    def start_instance(self, ctrl: Control) -> None:
        sym = self._symbol(self._loaded_model(), ctrl)
        if sym.kind == Kind.FUNCTION:
            self.start_functions()
            return
        log = instance_logger(sym.name, sym.kind, ctrl.meta)
        key = ctrl.meta.key
        if self._keep_running(key, ctrl):
            log.info("started again with the same settings while running (a rule restart, or eKuiper's replay "
                     "after a plugin restart); the running instance goes on")
            return
        kwargs, config = self._bind(sym, ctrl, log)
        links = self._connect(sym, kwargs)  # before the old run's leases go: a restart keeps its clients open
        try:
            with self._lock:
                old = self.instances.pop(key, None)
                if old is not None:  # a restart whose stop comes after this start: that stop is the old run's
                    self._late_stops.setdefault(key, []).append((old.control, self.clock() + RESTART_WINDOW))
            if old is not None:
                log.info("started again while running (a rule restart); the previous run's stop will be ignored")
                old.stop(STOP_GRACE)
            ctx = make_context(self.name, sym, ctrl, config, log, connections=links)
            runner: Runner = _runner_class(sym.kind).open(sym, kwargs, ctx, ctrl.meta, config, self.socket_dir,
                                                               log)
        except BaseException:
            if links is not None:
                links.release()
            raise
        with self._lock:
            self.instances[key] = _Instance(ctrl, runner, links)
        runner.start()
        log.info("started")

    def _connect(self, sym: SymbolModel, kwargs: Dict[str, Any]) -> Optional[InstanceConnections]:
        """Lease the shared connections the symbol uses (opening them on a helper thread, each within its
        ``open_timeout``); a failure fails this start only."""
        try:
            return open_connections(sym, kwargs, self.connections)
        except ConnectionFailed as exc:
            raise StartError(f"{sym.kind} '{sym.name}': {exc}") from None

    def _keep_running(self, key: str, ctrl: Control) -> bool:
        """A start for an instance that runs with exactly these settings keeps it: eKuiper sends one when a quick
        rule restart's stop comes late, and after a plugin restart (its replay, then the rule's own start);
        restarting would emit again what the running instance already emitted. Its stop, if one comes within
        :data:`RESTART_WINDOW`, is taken for the previous run's."""
        with self._lock:
            inst = self.instances.get(key)
            if inst is None or inst.control != ctrl or inst.runner.done.is_set():
                return False
            self._late_stops.setdefault(key, []).append((ctrl, self.clock() + RESTART_WINDOW))
            return True

    def start_functions(self) -> None:
        """Serve every declared function (eKuiper replays only the last function start after a restart); a
        function whose channel ended is served again."""
        model = self._loaded_model()
        with self._lock:
            for sym in model.functions:
                running = self.functions.get(sym.name)
                if running is not None and not running.done.is_set():
                    continue  # served; a channel that failed is replaced below
                log = instance_logger(sym.name, sym.kind)
                sock = open_socket("req", func_url(sym.name, self.socket_dir), block=False)
                service = FunctionService(FunctionHandler(self.name, sym, log), sock, log)
                self.functions[sym.name] = service
                service.start()

    def stop_instance(self, ctrl: Control) -> None:
        """Stop the run ``ctrl`` started. A stop of a run that was already replaced (its rule restarted and
        the new start came first), of an unknown instance, or of a function changes nothing."""
        key = ctrl.meta.key
        with self._lock:
            if self._take_late_stop(key, ctrl):
                self.log.info("stop of %s: its rule already started again; the new run goes on", ctrl.key)
                return
            inst = self.instances.get(key)
            if inst is None or inst.control != ctrl:
                self.log.debug("stop of %s: not running", ctrl.key)
                return
            del self.instances[key]
        inst.stop(STOP_GRACE)
        inst.runner.ctx.logger.info("stopped")

    def _take_late_stop(self, key: str, ctrl: Control) -> bool:
        pending = self._late_stops.get(key)
        if not pending:
            return False
        now = self.clock()
        pending[:] = [(c, until) for c, until in pending if until > now]
        match = next((i for i, (c, _) in enumerate(pending) if c == ctrl), None)
        if match is not None:
            del pending[match]
        if not pending:
            del self._late_stops[key]
        return match is not None

    def stop_all(self, grace: float = STOP_GRACE) -> None:
        """Stop every instance and function at once; return within about ``grace`` seconds."""
        with self._lock:
            instances = list(self.instances.values())
            services = list(self.functions.values())
            self.instances.clear()
            self.functions.clear()
            self._late_stops.clear()
        stoppers = [threading.Thread(target=i.runner.stop, args=(grace,), daemon=True, name="stop") for i in instances]
        stoppers += [threading.Thread(target=s.stop, args=(grace,), daemon=True, name="stop") for s in services]
        for t in stoppers:
            t.start()
        deadline = time.monotonic() + grace + 0.5
        for t in stoppers:
            t.join(max(0.0, deadline - time.monotonic()))
        self.connections.close_all(max(0.0, deadline - time.monotonic()))  # after their users, whatever they do

    # ---- the control loop

    def request_shutdown(self, *_: Any) -> None:
        self._shutdown.set()
        self._wake.set()

    def unreachable(self, exc: TransportError) -> int:
        """Say that eKuiper's control socket cannot be dialled; the exit code."""
        self.log.error("cannot reach eKuiper's control socket: %s", exc)
        return 1

    def serve(self, watch_parent: bool = True, load: Optional[Callable[[], PluginModel]] = None,
              sock: Optional[Socket] = None) -> int:
        """Connect to eKuiper, send the handshake and answer commands on the control thread until shutdown
        or eKuiper's end; return the exit code. ``load`` (the user's module) runs on this thread meanwhile.
        ``sock``: the control socket, dialled and the handshake sent already (:func:`ekdsl.runtime.greet`)."""
        greeted = sock is not None
        if sock is None:
            try:
                sock = open_socket("req", control_url(self.name, self.socket_dir), attempts=51, interval=0.1,
                                   redial=False)
            except TransportError as exc:
                return self.unreachable(exc)
        parent = os.getppid() if watch_parent else None
        control_sock: Socket = sock

        def control() -> None:
            try:
                self._loop(control_sock, parent, greeted)
            except Exception:
                self.log.exception("the control loop failed")
            finally:
                self._wake.set()

        thread = threading.Thread(target=control, name="ekdsl-control", daemon=True)
        thread.start()
        if load is not None:
            self._load(load)
        self._wake.wait()  # a signal interrupts the wait: its handler runs on this thread and sets _wake
        self._shutdown.set()
        if sock.interruptible:
            sock.close()  # ends a receive at once; pynng's cannot be closed under a waiting thread
        thread.join(TICK + 1.0)
        self.stop_all()
        sock.close()
        self.log.info("plugin %s exits", self.name)
        return 0

    def _load(self, load: Callable[[], PluginModel]) -> None:
        try:
            model = load()
        except BaseException as exc:  # an import that raises or exits must not end the plugin: say why
            if isinstance(exc, KeyboardInterrupt):
                self._shutdown.set()
            detail = str(exc) if isinstance(exc, EkdslError) else \
                f"its module raised {type(exc).__name__}: {exc}"
            self.load_failed(f"plugin '{self.name}': {detail}")
            self.log.error("%s; every start will be answered with this error", self.load_error, exc_info=exc)
            return
        if model.name != self.name:
            self.load_failed(f"the module defines plugin '{model.name}', but it was installed as "
                             f"'{self.name}': export it again")
            self.log.error("%s", self.load_error)
            return
        self.loaded(model)

    def _loop(self, sock: Socket, parent: Optional[int], greeted: bool = False) -> None:
        pidfd = watch_parent(sock, parent)
        # a native socket ends at once with eKuiper's control connection (and with eKuiper's process, watched
        # by a pidfd): it waits for a command or the keepalive; without a pidfd, the parent is looked at then
        sock.recv_timeout = KEEPALIVE if sock.interruptible else TICK
        sock.send_timeout = TICK

        ppid = parent if pidfd is None else None  # with a pidfd, its end ends the receive

        def ekuiper_gone() -> bool:
            return sock.lost or (ppid is not None and os.getppid() != ppid)

        try:
            # while a keepalive is unread nothing but a command comes: wait for it (its parent looked at now
            # and then where no pidfd watches it; its control connection ends with eKuiper anyway)
            answer_loop(sock, self.handle, self._shutdown.is_set, ekuiper_gone,
                        unread_wait=None if ppid is None else PARENT_LOOK, greeted=greeted)
        finally:
            if pidfd is not None:
                os.close(pidfd)
        if parent is not None and os.getppid() != parent:
            self.log.warning("eKuiper (pid %d) is gone; exiting", parent)
        elif sock.lost and not self._shutdown.is_set():
            self.log.warning("eKuiper's control connection is gone (eKuiper never closes it while it runs); "
                             "exiting")


def watch_parent(sock: Socket, parent: Optional[int]) -> Optional[int]:
    """A pidfd of ``parent`` (Linux 5.3 and later), set as ``sock.watch`` so that its end ends the socket's
    receives; ``None`` where there is none (the caller then looks at ``os.getppid()`` now and then)."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if parent is None or pidfd_open is None or not hasattr(sock, "watch"):
        return None
    try:
        fd: int = pidfd_open(parent)
    except OSError:
        return None
    if os.getppid() != parent:  # gone before the pidfd was made: that pid may be another process's now
        os.close(fd)
        return None
    sock.watch = fd
    return fd


def install_signal_handlers(server: PluginServer) -> None:
    """SIGTERM and SIGINT stop every instance and exit 0."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, server.request_shutdown)
        signal.signal(signal.SIGINT, server.request_shutdown)
