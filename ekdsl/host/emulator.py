"""The eKuiper emulator: install (or export) a plugin, launch it, drive its symbols, report findings."""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from ..errors import PackagingError
from ..kinds import Kind
from ..state import Location, Scope, State, Stores, parse_location
from ..state.locate import BASE_ENV, STATE_ENV, sqlite_folder
from ..transport import Timeout
from .batching import BatchedSink, batched
from .host import INIT_TIMEOUT, FunctionHandle, Handle, Host, SinkHandle, SourceHandle
from .install import Installed, install, source_props, stream_config
from .planner import RateLimitedSource, plan_sink, plan_source
from .transform import sink_templates

__all__ = ["Emulator", "is_package"]


def _inner(handle: Any) -> Any:
    """The host's handle behind a modelled one (a rate-limited source, a batched sink)."""
    return handle.handle if isinstance(handle, (RateLimitedSource, BatchedSink)) else handle


def is_package(target: str) -> bool:
    """A zip or a folder: something to install as eKuiper does (a module to export is a ``.py`` file or a module
    name, never a folder)."""
    return target.endswith(".zip") or os.path.isdir(target)


class Emulator:
    """eKuiper for one plugin. ``target`` is a package (zip or folder) or a module to export first.

    ``state`` is where the plugin's ``ctx.state`` lives: a folder or a ``redis://`` URL (passed as
    ``EKDSL_STATE``), kept after :meth:`close`; by default the emulated eKuiper's own data folder, where the
    plugin finds it as under eKuiper, removed with everything else. Use as a context manager; everything it
    started or wrote is removed on exit.
    """

    def __init__(self, target: str, *, python: Optional[str] = None, socket_dir: Optional[str] = None,
                 init_timeout: float = INIT_TIMEOUT, name: Optional[str] = None, shell_paras: Sequence[str] = (),
                 install_env: Optional[Mapping[str, str]] = None,
                 state: Union[str, os.PathLike[str], None] = None,
                 progress: Optional[Callable[[str], None]] = None,
                 install_echo: Optional[Callable[[str], None]] = None) -> None:
        self.target = target
        self.root = tempfile.mkdtemp(prefix="ekdsl-emu-")
        self.findings: List[str] = []
        self.install_output = ""
        try:
            package = target if is_package(target) else self._export(target)
            self.installed: Installed = install(package, self.root, name)
            self._run_install_script(python, shell_paras, install_env, progress, install_echo)
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        self._own_root = True
        self._attach(python, socket_dir, init_timeout, state)

    @classmethod
    def from_root(cls, root: str, name: str, *, python: Optional[str] = None, socket_dir: Optional[str] = None,
                  init_timeout: float = INIT_TIMEOUT, state: Union[str, os.PathLike[str], None] = None) -> Emulator:
        """Plugin ``name`` as kuiperd finds it at boot in the eKuiper root ``root`` (e.g. laid out by ``export
        --layout``; see :mod:`ekdsl.host.boot`): nothing is installed, and :meth:`close` leaves the root."""
        from .boot import boot

        booted = boot(root)
        if name not in booted.plugins:
            why = "; ".join(w for w in booted.warnings if name in w) or f"no folder plugins/portable/{name}"
            raise PackagingError(f"eKuiper would not load plugin '{name}' from {root} at boot: {why}", root)
        self = cls.__new__(cls)
        self.target, self.root, self.install_output, self._own_root = root, root, "", False
        self.installed = booted.plugins[name]
        self.findings = []
        self._attach(python, socket_dir, init_timeout, state)
        return self

    def _attach(self, python: Optional[str], socket_dir: Optional[str], init_timeout: float,
                state: Union[str, os.PathLike[str], None]) -> None:
        self.findings.extend(self.installed.findings)
        self.sdk = self.installed.language == "python" and self.installed.uses_official_sdk()
        self._own_sockets = socket_dir is None and self._honours_socket_dir()
        self.socket_dir = socket_dir or (tempfile.mkdtemp(prefix="ek", dir="/tmp") if self._own_sockets else None)
        self.state_location = self._state_location(state)
        self.host = Host(self.installed.name, self.installed.executable, language=self.installed.language,
                         python=python, socket_dir=self.socket_dir, init_timeout=init_timeout,
                         env=self._plugin_env(state))
        self._stores = Stores(self.state_location)
        self.connections: Dict[str, Dict[str, Any]] = {}  # eKuiper's named connections: id → {"typ", "props"}

    def _state_location(self, state: Union[str, os.PathLike[str], None]) -> Location:
        if state is not None:
            return parse_location(os.fspath(state), "Emulator(state=...)")
        data = os.path.join(self.root, "data")
        os.makedirs(data, exist_ok=True)
        return Location("sqlite", folder=sqlite_folder(data), origin=f"the emulator's data folder {data}")

    @staticmethod
    def _plugin_env(state: Union[str, os.PathLike[str], None]) -> Dict[str, str]:
        """eKuiper's environment for the plugin: this one's, with its state where ``state`` says (else in the
        emulator's own folders, whatever this environment says about eKuiper's)."""
        env = {k: v for k, v in os.environ.items()
               if k not in (STATE_ENV, BASE_ENV) and not k.startswith("KUIPER__STORE__")}
        if state is not None:
            env[STATE_ENV] = os.fspath(state)
        return env

    def _run_install_script(self, python: Optional[str], shell_paras: Sequence[str],
                            env: Optional[Mapping[str, str]], progress: Optional[Callable[[str], None]],
                            echo: Optional[Callable[[str], None]]) -> None:
        """Run the package's install.sh as eKuiper does, its venv built from the Python the plugin runs with;
        ``progress`` is told when it starts and ends, ``echo`` gets each line it writes."""
        if not os.path.isfile(os.path.join(self.installed.plugin_dir, "install.sh")):
            return
        from ..deploy.installer import run_install_script

        with open(os.path.join(self.installed.plugin_dir, f"{self.installed.name}.json"), encoding="utf-8") as fh:
            conda = json.load(fh).get("virtualEnvType") == "conda"
        paras = list(shell_paras)
        if not conda and not any(p == "--python" or p.startswith("--python=") for p in paras):
            paras = ["--python", python or sys.executable, *paras]
        if progress is not None:
            shown = "" if echo else "; -v shows pip's output"
            progress(f"installing the requirements of '{self.installed.name}' as eKuiper does (install.sh builds "
                     f"its venv and runs pip: this takes a while{shown})...")
        started = time.monotonic()
        self.install_output = run_install_script(self.installed.plugin_dir, paras, env=env, echo=echo)
        if progress is not None:
            progress(f"requirements installed in {time.monotonic() - started:.1f} s")

    def _export(self, target: str) -> str:
        from ..package import export
        from ..plugin import load_target

        model = load_target(target).model()
        return export(model, os.path.join(self.root, "export")).directory

    def _honours_socket_dir(self) -> bool:
        main = self.installed.executable
        if self.installed.language != "python" or not os.path.isfile(main):
            return False
        with open(main, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        return "from ekdsl" in text or "import ekdsl" in text

    @property
    def name(self) -> str:
        return self.installed.name

    @property
    def meta(self) -> Dict[str, Any]:
        return self.installed.meta

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> None:
        self.host.start()

    # ---- symbols

    def source_config(self, symbol: str, conf_key: str = "", datasource: str = "",
                      extra: Optional[Mapping[str, Any]] = None,
                      options: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """The config eKuiper builds for a stream on ``symbol``: ``extra`` is the stream's EXTRA option,
        ``options`` its other WITH options (``FORMAT``, ``KEY``, ...), which overwrite the same props."""
        return stream_config(self._source_props(symbol, conf_key, extra), datasource, options=options)

    def _source_props(self, symbol: str, conf_key: str, extra: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        before = len(self.installed.findings)  # reading the yaml may find something to report
        named = {cid: c["props"] for cid, c in self.connections.items()}
        props = source_props(self.installed, symbol, conf_key, dict(extra or {}), named)
        for text in self.installed.findings[before:]:
            self._finding(text)
        return props

    # ---- eKuiper's named connections (POST /connections)

    def create_connection(self, id: str, typ: str, props: Mapping[str, Any]) -> None:
        """What ``POST /connections {"id", "typ", "props"}`` does for a plugin: a source whose confKey sets
        ``connectionSelector: <id>`` gets ``props`` over its yaml's; a sink named ``typ`` whose rule action sets it
        gets them over the action's own."""
        if id in self.connections:
            raise PackagingError(f"connection {id} already been created")
        self.connections[id] = {"typ": typ, "props": dict(props)}

    def drop_connection(self, id: str) -> None:
        """``DELETE /connections/<id>``: rules started later no longer get its props."""
        self.connections.pop(id, None)

    def sink_config(self, symbol: str, config: Mapping[str, Any]) -> Dict[str, Any]:
        """The props a rule action gives a sink: its own, with a named connection's over them
        (``internal/topo/node/conf/conn.go OverwriteByConnectionConf``: the connection's ``typ`` must be the
        sink's name)."""
        props = dict(config)
        selector = props.get("connectionSelector")
        if isinstance(selector, str):
            conn = self.connections.get(selector)
            if conn is not None and conn["typ"] == symbol:
                props.update(conn["props"])
            else:
                what = f"is of typ '{conn['typ']}'" if conn is not None else "does not exist"
                self._finding(f"sink '{symbol}': connectionSelector '{selector}' {what}: eKuiper merges only a "
                              f"connection of typ '{symbol}' (the action's name) and otherwise goes on silently "
                              "with the action's own props")
        return props

    def start_source(self, symbol: str, conf_key: str = "", datasource: str = "",
                     extra: Optional[Mapping[str, Any]] = None, rule: str = "rule1",
                     op: Optional[str] = None,
                     options: Optional[Mapping[str, Any]] = None) -> Union[SourceHandle, RateLimitedSource]:
        """Start ``symbol`` as a rule on a stream would; with an ``interval`` property eKuiper's rate
        limiter is modelled (:class:`~ekdsl.host.planner.RateLimitedSource`)."""
        self._known(Kind.SOURCE, symbol)
        props = self._source_props(symbol, conf_key, extra)
        config = stream_config(props, datasource, options=options)
        period, findings = plan_source(symbol, props, config)
        for text in findings:
            self._finding(text)
        if self.sdk and datasource:
            self._finding(f"source '{symbol}': DATASOURCE '{datasource}' reaches the plugin only as "
                          "config['datasource']; the official SDK passes '' to Source.configure() because it "
                          "reads a 'datasource' key that eKuiper v2 never sends")
        handle = self.host.start_source(symbol, config, rule=rule, op=op or f"{symbol}Stream")
        return RateLimitedSource(handle, period) if period > 0 else handle

    def start_sink(self, symbol: str, config: Optional[Mapping[str, Any]] = None, rule: str = "rule1",
                   op: Optional[str] = None) -> Union[SinkHandle, BatchedSink]:
        """Start ``symbol`` as a rule action would; props eKuiper cannot decode fail as rule creation does. With
        ``batchSize`` or ``lingerInterval``, eKuiper's batching is modelled (:class:`~ekdsl.host.batching.
        BatchedSink`), with the corruption of batches that wait for a busy sink."""
        self._known(Kind.SINK, symbol)
        props = self.sink_config(symbol, config or {})
        for text in plan_sink(symbol, props, self._sink_properties(symbol)):
            self._finding(text)
        for text in sink_templates(props)[1]:
            self._finding(f"sink '{symbol}': eKuiper renders the template {text!r} for each row or event with Go's "
                          "text/template and drops what it fails on; the emulator cannot evaluate it, so it "
                          "delivers every message")
        return batched(self.host.start_sink(symbol, props, rule=rule, op=op or f"{symbol}_0"), props)

    def _sink_properties(self, symbol: str) -> List[str]:
        """The property names the sink's metadata declares (none if it cannot be read)."""
        try:
            with open(self.installed.etc("sinks", f"{symbol}.json"), encoding="utf-8") as fh:
                props = json.load(fh).get("properties")
        except (OSError, ValueError, AttributeError):
            return []
        return [p["name"] for p in props if isinstance(p, dict) and isinstance(p.get("name"), str)] \
            if isinstance(props, list) else []

    def stop(self, handle: Any) -> None:
        """Stop a source or sink as eKuiper does; report acks the plugin sent that nobody asked for."""
        handle = _inner(handle)
        if isinstance(handle, SinkHandle):
            if not handle.require_ack:
                stray = self._drain_acks(handle)
                if stray:
                    self._finding(f"sink '{handle.control.symbol_name}' sent {stray} ack(s) without requireAck: "
                                  "eKuiper never reads them, so they pile up until the plugin's sends time out")
            self.host.stop_sink(handle)
        else:
            self.host.stop_source(handle)

    def restart(self, handle: Union[Handle, RateLimitedSource, BatchedSink], *, late_stop: bool = False,
                config: Optional[Mapping[str, Any]] = None) -> Handle:
        """Restart a rule's source or sink; ``late_stop`` sends the old run's stop after the new start, as a
        quick rule restart in eKuiper can (see :meth:`Host.restart`)."""
        inner: Handle = _inner(handle)
        if config is not None and isinstance(inner, SinkHandle):
            config = self.sink_config(inner.control.symbol_name, config)
        return self.host.restart(inner, late_stop=late_stop, config=config)

    def restart_plugin(self) -> None:
        """Kill the plugin (SIGKILL) and launch it again, replaying the starts of what runs, as eKuiper's plugin
        update does; handles go on, and each instance's ``ctx.state`` is what the killed process left."""
        self.host.restart_process()

    def function(self, symbol: str) -> FunctionHandle:
        self._known(Kind.FUNCTION, symbol)
        return self.host.function(symbol)

    def state(self, handle: Union[Handle, RateLimitedSource, BatchedSink, FunctionHandle, None] = None, *,
              rule: str = "rule1", op: str = "op1", instance: int = 0, func_id: int = 0) -> State:
        """The ``ctx.state`` of a source or sink ``handle``; of a function called from ``rule``/``op``/
        ``instance`` at ``func_id``; or, without a handle, the plugin's shared state."""
        if isinstance(handle, (RateLimitedSource, BatchedSink)):
            handle = handle.handle
        if handle is None:
            scope = Scope("shared")
        elif isinstance(handle, FunctionHandle):
            scope = Scope("function", handle.name, rule, op, instance, func_id)
        else:
            meta, kind = handle.control.meta, "sink" if isinstance(handle, SinkHandle) else "source"
            scope = Scope(kind, handle.control.symbol_name, meta.rule_id, meta.op_id, meta.instance_id)
        return State(self._stores.store(self.name), scope)

    def _known(self, kind: Kind, symbol: str) -> None:
        if symbol not in self.meta[kind.folder]:
            have = ", ".join(self.meta[kind.folder]) or "none"
            raise PackagingError(f"plugin '{self.name}' declares no {kind} '{symbol}' (its {kind.folder}: {have})")

    @staticmethod
    def _drain_acks(handle: SinkHandle) -> int:
        n = 0
        handle.channel.ack.recv_timeout = 0.2
        while True:
            try:
                handle.channel.ack.recv()
                n += 1
            except Timeout:
                return n

    def _finding(self, text: str) -> None:
        if text not in self.findings:
            self.findings.append(text)

    # ---- process

    @property
    def output(self) -> str:
        return self.host.process.output if self.host.process else ""

    @property
    def exit_code(self) -> Optional[int]:
        return self.host.process.poll() if self.host.process else None

    def close(self) -> None:
        """Kill the plugin, close every socket, remove the install root (with the state, unless ``state`` was
        given) and socket files."""
        self.host.close()
        self._stores.close()
        if self._own_sockets and self.socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
        else:
            sock_dir = self.socket_dir or "/tmp"
            for pattern in (f"plugin_{self.name}.ipc", *(f"func_{f}.ipc" for f in self.meta["functions"])):
                for path in glob.glob(os.path.join(sock_dir, pattern)):
                    try:
                        os.unlink(path)
                    except OSError:
                        pass
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)
