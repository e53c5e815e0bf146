"""A host that drives one plugin process the way eKuiper does (PROTOCOL §1–6)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..kinds import Kind
from ..protocol import Control, Meta, aggregate_args, func_context, require_ack, send_single, sink_payload
from ..template import Template
from ..transport import Timeout
from .channels import CommandError, ControlChannel, FunctionChannel, HostError, SinkChannel, SourceChannel
from .process import PluginProcess
from .transform import screen, sink_templates

__all__ = ["ALWAYS_SET_SOURCE_KEYS", "INIT_TIMEOUT", "FunctionHandle", "Host", "SinkHandle", "SourceHandle",
           "source_config"]

INIT_TIMEOUT = 60.0  # eKuiper's shipped portable.initTimeout: the handshake must come within it

ALWAYS_SET_SOURCE_KEYS: Dict[str, Any] = {
    "datasource": "", "delimiter": "", "format": "json", "key": "", "retainSize": 0, "schemaId": "",
    "strictValidation": False, "timestamp": "", "timestampFormat": "",
}


def layered_props(sections: Mapping[str, Any], conf_key: str = "",
                  extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """A source's properties before eKuiper's own keys: the yaml's ``default`` section, the confKey's over it
    (looked up lower-cased first, then exact; a missing one is only a warning in eKuiper), then EXTRA."""
    props: Dict[str, Any] = dict(sections.get("default") or {})
    if conf_key:
        props.update(sections.get(conf_key.lower(), sections.get(conf_key)) or {})
    props.update(extra or {})
    return props


def source_config(yaml_sections: Optional[Mapping[str, Any]] = None, conf_key: str = "", datasource: str = "",
                  fmt: str = "json", extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The config eKuiper sends a source (``GetSourceConf``): yaml ``default``, the confKey over it, the
    stream's EXTRA option, then the keys eKuiper always sets."""
    conf = layered_props(yaml_sections or {}, conf_key, extra)
    conf.update(ALWAYS_SET_SOURCE_KEYS)
    conf["datasource"] = datasource
    conf["format"] = fmt.lower()
    return conf


def check_require_ack(config: Mapping[str, Any]) -> None:
    """eKuiper's ``Provision`` reads ``requireAck`` (any case) as a strict bool: anything else fails the rule."""
    for key, value in config.items():
        if isinstance(key, str) and key.lower() == "requireack" and value is not None \
                and not isinstance(value, bool):
            raise HostError(f"1 error(s) decoding:\n\n* '{key}' expected type 'bool', got unconvertible type "
                            f"'{type(value).__name__}', value: '{value}'")


@dataclass
class SourceHandle:
    control: Control
    channel: SourceChannel

    def recv(self, timeout: float = 5.0) -> Tuple[Optional[Dict[str, Any]], Dict[str, Any]]:
        return self.channel.recv(timeout)

    def rows(self, n: int, timeout: float = 10.0) -> List[Dict[str, Any]]:
        """The next ``n`` rows' messages."""
        out: List[Dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            msg, _ = self.channel.recv(max(0.01, deadline - time.monotonic()))
            out.append(msg or {})
        return out


@dataclass
class SinkHandle:
    control: Control
    channel: SinkChannel
    require_ack: bool = False
    acks: List[Optional[str]] = field(default_factory=list)
    templates: List[Template] = field(default_factory=list)  # properties eKuiper renders per row or event
    send_single: bool = False

    def send(self, payload: Any, ack_timeout: float = 10.0) -> Optional[str]:
        """Push one payload (bytes as they are, any other value as eKuiper's JSON); with requireAck,
        wait for its ack and return it (``None`` = ok, else the error text). A payload on which eKuiper could not
        render a property's template is dropped as eKuiper does: :class:`~ekdsl.host.transform.MessageDropped`."""
        self.channel.send(screen(sink_payload(payload), self.templates, self.send_single))
        if not self.require_ack:
            return None
        ack = self.channel.recv_ack(ack_timeout)
        self.acks.append(ack)
        return ack


@dataclass
class FunctionHandle:
    name: str
    channel: FunctionChannel
    aggregate: Optional[bool] = None  # eKuiper's answer to IsAggregate, asked once and kept (PortableFunc.isAgg)

    def validate(self, *nodes: Any) -> Tuple[bool, Any]:
        return self.channel.call("Validate", list(nodes))

    def is_aggregate(self) -> Tuple[bool, Any]:
        state, result = self.channel.call("IsAggregate", None)
        if state and isinstance(result, bool):  # anything else: eKuiper logs it, takes false, asks again later
            self.aggregate = result
        return state, result

    def exec(self, *args: Any, rule: str = "rule1", op: str = "op1", instance: int = 0, func_id: int = 0,
             timeout: float = 5.0) -> Tuple[bool, Any]:
        """Call the function as eKuiper does. An aggregate (eKuiper asks ``IsAggregate`` first) gets every
        argument as a list of per-row values: a list is taken as that column, anything else as a constant (a
        literal in the SQL) repeated once per row (:func:`~ekdsl.protocol.aggregate_args`). ``bytes`` are
        sent as base64, as Go sends ``[]byte``; ``str`` as plain strings."""
        if self.aggregate is None:
            self.is_aggregate()
        if self.aggregate:
            args = tuple(aggregate_args(args))
        return self.channel.call("Exec", [*args, func_context(rule, op, instance, func_id)], timeout)


Handle = Union[SourceHandle, SinkHandle]


class Host:
    """eKuiper's side for one plugin: control channel, process, and the symbols' sockets."""

    def __init__(self, name: str, executable: str, *, language: str = "python", python: Optional[str] = None,
                 socket_dir: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                 init_timeout: float = INIT_TIMEOUT, wrapper: Sequence[str] = ()) -> None:
        self.name = name
        self.executable = executable
        self.language = language
        self.python = python
        self.socket_dir = socket_dir
        self.env = dict(os.environ if env is None else env)
        if socket_dir:
            self.env["EKDSL_SOCKET_DIR"] = socket_dir
        self.init_timeout = init_timeout
        self.wrapper = tuple(wrapper)
        self.control: Optional[ControlChannel] = None
        self.process: Optional[PluginProcess] = None
        self.handshake_ms = 0.0
        self._open: List[Any] = []

    def __enter__(self) -> Host:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> None:
        """Listen on the control socket, spawn the process, wait for its handshake."""
        if self.control is None:
            self.control = ControlChannel(self.name, self.socket_dir)
        self.process = PluginProcess(self.executable, self.language, self.python, self.env, self.wrapper)
        try:
            self._await_handshake(self.process)
        except Timeout:
            code = self.process.poll()
            self.process.kill()
            last = self.process.lines[-1].strip() if self.process.lines else ""
            tail = f"; its last output: {last[:300]}" if last else ""
            if code is not None:
                raise HostError(f"plugin {self.executable} exited with code {code} before its handshake"
                                f"{tail}") from None
            raise HostError(f"plugin {self.executable} control handshake error: receive time out "
                            f"after {self.init_timeout:g} s{tail}") from None
        self.handshake_ms = (time.monotonic() - self.process.started) * 1000

    def _await_handshake(self, process: PluginProcess, slice_s: float = 0.2) -> None:
        """Wait for the handshake up to ``init_timeout``; give up at once if the process exits."""
        assert self.control is not None
        deadline = time.monotonic() + self.init_timeout
        while True:
            try:
                self.control.handshake(max(0.01, min(slice_s, deadline - time.monotonic())))
                return
            except Timeout:
                if process.poll() is not None or time.monotonic() >= deadline:
                    raise

    def _cmd(self, cmd: str, control: Control) -> None:
        assert self.control is not None, "start() first"
        self.control.send_cmd(cmd, control)

    def start_source(self, symbol: str, config: Mapping[str, Any], rule: str = "rule1", op: str = "stream1",
                     instance: int = 0) -> SourceHandle:
        meta = Meta(rule, op, instance)
        channel = SourceChannel(meta, self.socket_dir)
        control = Control(symbol, Kind.SOURCE.wire, meta, config=dict(config))
        try:
            self._cmd("start", control)
        except Exception:
            channel.close()
            raise
        handle = SourceHandle(control, channel)
        self._open.append(handle)
        return handle

    def stop_source(self, handle: SourceHandle) -> None:
        """Close the PULL socket first, then send stop (eKuiper's order)."""
        self._stop(handle)

    def start_sink(self, symbol: str, config: Mapping[str, Any], rule: str = "rule1", op: str = "sink_0",
                   instance: int = 0, data_impl: str = "pynng") -> SinkHandle:
        check_require_ack(config)
        meta = Meta(rule, op, instance)
        channel = SinkChannel(meta, self.socket_dir)
        control = Control(symbol, Kind.SINK.wire, meta, config=dict(config))
        try:
            self._cmd("start", control)
            channel.connect(impl=data_impl)
        except Exception as exc:
            channel.close()
            if not isinstance(exc, CommandError):
                self._cmd("stop", control)
                raise HostError(f"can't dial on push socket: {exc}") from exc
            raise
        handle = SinkHandle(control, channel, require_ack(config), templates=sink_templates(config)[0],
                            send_single=send_single(config))
        self._open.append(handle)
        return handle

    def stop_sink(self, handle: SinkHandle) -> None:
        """Close the data PUSH and the ack PULL first, then send stop (eKuiper's order)."""
        self._stop(handle)

    def _stop(self, handle: Any) -> None:
        handle.channel.close()
        self._cmd("stop", handle.control)
        self._discard(handle)

    def restart(self, handle: Handle, *, late_stop: bool = False,
                config: Optional[Mapping[str, Any]] = None) -> Handle:
        """Restart a rule's source or sink as eKuiper does; return the new run's handle.

        The old run's sockets are closed first, then the new run's are opened and its ``start`` (with
        ``config``, or the same config) is sent. Its ``stop`` goes before that start, or, with ``late_stop``,
        after it: on a quick restart eKuiper's old source notices the cancellation only when its receive
        returns, so the new start can reach the plugin first (PROTOCOL §15).
        """
        old = handle.control
        handle.channel.close()
        if not late_stop:
            self._cmd("stop", old)
        self._discard(handle)
        conf = dict(old.config if config is None else config)
        new: Handle
        if isinstance(handle, SinkHandle):
            new = self.start_sink(old.symbol_name, conf, rule=old.meta.rule_id, op=old.meta.op_id,
                                  instance=old.meta.instance_id)
        else:
            new = self.start_source(old.symbol_name, conf, rule=old.meta.rule_id, op=old.meta.op_id,
                                    instance=old.meta.instance_id)
        if late_stop:
            self._cmd("stop", old)
        return new

    def restart_process(self) -> None:
        """What a plugin update does to running rules: SIGKILL the plugin, launch it again on the same control
        socket, and replay the start of every open source and sink and one function start, as eKuiper does; the
        handles go on with their sockets (a sink's data socket is dialled again)."""
        if self.process is not None:
            self.process.kill()
        self.start()
        function = next((h for h in self._open if isinstance(h, FunctionHandle)), None)
        for handle in self._open:
            if isinstance(handle, (SourceHandle, SinkHandle)):
                self._cmd("start", handle.control)
            if isinstance(handle, SinkHandle) and handle.channel.data is not None:
                handle.channel.data.close()
                handle.channel.connect()
        if function is not None:
            self._cmd("start", Control(function.name, Kind.FUNCTION.wire, Meta()))

    def function(self, symbol: str) -> FunctionHandle:
        """Listen on the function socket and send the function start (no rule context).

        Asking again for a function already started returns the same handle: eKuiper has one socket
        per function name."""
        for handle in self._open:
            if isinstance(handle, FunctionHandle) and handle.name == symbol:
                return handle
        channel = FunctionChannel(symbol, self.socket_dir)
        try:
            self._cmd("start", Control(symbol, Kind.FUNCTION.wire, Meta()))
        except Exception:
            channel.close()
            raise
        handle = FunctionHandle(symbol, channel)
        self._open.append(handle)
        return handle

    def _discard(self, handle: Any) -> None:
        if handle in self._open:
            self._open.remove(handle)

    def close(self) -> None:
        """Kill the process (SIGKILL, as eKuiper does) and close every socket."""
        if self.process is not None:
            self.process.kill()
        for handle in self._open:
            handle.channel.close()
        self._open.clear()
        if self.control is not None:
            self.control.close()
            self.control = None
