"""eKuiper's portable-plugin protocol, sans I/O: bytes in, values out, and back.

Both the plugin runtime and the host emulator use these functions; neither
encodes or decodes a message anywhere else. Host side: ``internal/plugin/
portable/runtime/{shared,connection,source,sink,function}.go``.
"""

from __future__ import annotations

import base64
import json
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .codec import dumps as _dumps
from .codec import loads as _decode
from .errors import ProtocolError
from .kinds import WIRE_NAMES
from .wire import HANDSHAKE, SOCKET_DIR_ENV, control_url, func_url, instance_url, socket_dir

__all__ = [
    "ACK_OK",
    "HANDSHAKE",
    "REPLY_OK",
    "SOCKET_DIR_ENV",
    "Command",
    "Control",
    "FuncMeta",
    "FuncRequest",
    "Meta",
    "ack_error",
    "ack_url",
    "aggregate_args",
    "control_url",
    "data_url",
    "decode_ack",
    "decode_command",
    "decode_func_reply",
    "decode_func_request",
    "decode_source_message",
    "encodable",
    "encode_command",
    "encode_func_reply",
    "encode_func_request",
    "encode_row",
    "error_reply",
    "func_context",
    "func_url",
    "go_json",
    "parse_func_meta",
    "require_ack",
    "send_single",
    "setting",
    "sink_payload",
    "socket_dir",
]

REPLY_OK = b"ok"
ACK_OK = b"{}"
CMD_START, CMD_STOP = "start", "stop"
PLUGIN_TYPES = WIRE_NAMES


# ---------------------------------------------------------------- text


def encodable(text: str) -> str:
    """``text`` with what UTF-8 cannot hold (lone surrogates) written as ``\\udxxx`` escapes."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


# ---------------------------------------------------------------- Go-compatible JSON

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


# eKuiper listens on a source's data socket and a sink's ack socket before it sends the start, so the plugin's
# dial connects at once; nobody listening means a start replayed for a rule that no longer runs: fail it fast
# (a few tries over ~0.2 s) instead of holding every other command of the plugin.
DIAL_ATTEMPTS = 3
DIAL_INTERVAL = 0.1


def go_json(value: Any) -> bytes:
    """JSON as Go's ``encoding/json`` writes it: no spaces, map keys sorted, ``<>&`` escaped.

    Dicts whose key order matters (Go structs) must be passed as a list of
    pairs wrapped in :class:`_Struct`; plain dicts are maps and get sorted.
    """
    text = json.dumps(_go_prepare(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for raw, esc in _GO_ESCAPES.items():
        if raw in text:
            text = text.replace(raw, esc)
    return text.encode("utf-8")


class _Struct(dict):  # type: ignore[type-arg]
    """A Go struct: its field order is kept."""


def _go_prepare(value: Any) -> Any:
    if isinstance(value, _Struct):
        return {k: _go_prepare(v) for k, v in value.items()}
    if isinstance(value, Mapping):
        return {str(k): _go_prepare(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [_go_prepare(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)  # Go writes float64 1000 as 1000
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")  # Go writes []byte as base64
    return value


# ---------------------------------------------------------------- control channel


# Messages are NamedTuples: immutable and comparable like frozen dataclasses, but far cheaper to define,
# which matters because the plugin process imports this module before its handshake.


class Meta(NamedTuple):
    rule_id: str = ""
    op_id: str = ""
    instance_id: int = 0

    @property
    def key(self) -> str:
        return f"{self.rule_id}_{self.op_id}_{self.instance_id}"


_NO_CONFIG: Mapping[str, Any] = MappingProxyType({})


class Control(NamedTuple):
    """``runtime.Control``: which symbol, for which rule, with which config."""

    symbol_name: str
    plugin_type: str
    meta: Meta = Meta()
    data_source: str = ""
    config: Mapping[str, Any] = _NO_CONFIG

    @property
    def key(self) -> str:
        """The instance key: ``<ruleId>_<opId>_<instanceId>_<symbol>``."""
        return f"{self.meta.key}_{self.symbol_name}"


class Command(NamedTuple):
    cmd: str
    control: Control


def encode_command(cmd: str, control: Control) -> bytes:
    """A command exactly as the Go host marshals it (``runtime.Command`` with ``arg`` = Control JSON)."""
    ctrl = _Struct(
        symbolName=control.symbol_name,
        meta=_Struct(ruleId=control.meta.rule_id, opId=control.meta.op_id, instanceId=control.meta.instance_id),
        pluginType=control.plugin_type,
    )
    if control.data_source:
        ctrl["dataSource"] = control.data_source
    if control.config:
        ctrl["config"] = dict(control.config)
    arg = go_json(ctrl).decode("utf-8")
    return go_json(_Struct(cmd=cmd, arg=arg))


def _loads(data: bytes, what: str) -> Any:
    try:
        return _decode(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{what} is not valid JSON ({exc}): {_preview(data)}", data) from None
    except RecursionError:
        raise ProtocolError(f"{what} is nested too deeply to decode: {_preview(data)}", data) from None


def _preview(data: bytes, limit: int = 120) -> str:
    text = repr(bytes(data[:limit]))
    return text + ("..." if len(data) > limit else "")


def decode_command(data: bytes) -> Command:
    """Parse a control command; raise :class:`ProtocolError` saying what is wrong."""
    if not data:
        raise ProtocolError("empty control message: expected a JSON command", data)
    raw = _loads(data, "control command")
    if not isinstance(raw, dict):
        raise ProtocolError(f"control command must be a JSON object, got {type(raw).__name__}", data)
    cmd, arg = raw.get("cmd"), raw.get("arg")
    if cmd not in (CMD_START, CMD_STOP):
        raise ProtocolError(f"invalid command received: {cmd!r} (expected 'start' or 'stop')", data)
    if not isinstance(arg, str):
        raise ProtocolError("control command 'arg' must be a JSON string holding the Control", data)
    ctrl = _loads(arg.encode("utf-8"), "control 'arg'")
    if not isinstance(ctrl, dict):
        raise ProtocolError("control 'arg' must hold a JSON object", data)
    return Command(cmd, _control(ctrl, data))


def _control(ctrl: Dict[str, Any], data: bytes) -> Control:
    name, ptype = ctrl.get("symbolName"), ctrl.get("pluginType")
    if not isinstance(name, str) or not name:
        raise ProtocolError("control has no 'symbolName'", data)
    if ptype not in PLUGIN_TYPES:
        raise ProtocolError(f"invalid plugin type {ptype!r} (expected source, sink or func)", data)
    meta = ctrl.get("meta") or {}
    if not isinstance(meta, dict):
        raise ProtocolError("control 'meta' must be an object", data)
    inst = meta.get("instanceId", 0)
    if not isinstance(inst, int) or isinstance(inst, bool):
        if isinstance(inst, float) and inst.is_integer():
            inst = int(inst)
        else:
            raise ProtocolError(f"control 'meta.instanceId' must be an integer, got {inst!r}", data)
    rule, op = meta.get("ruleId", ""), meta.get("opId", "")
    if not isinstance(rule, str) or not isinstance(op, str):
        raise ProtocolError("control 'meta.ruleId' and 'meta.opId' must be strings", data)
    config = ctrl.get("config") or {}
    if not isinstance(config, dict):
        raise ProtocolError("control 'config' must be an object", data)
    ds = ctrl.get("dataSource", ctrl.get("datasource", ""))
    return Control(name, ptype, Meta(rule, op, inst), ds if isinstance(ds, str) else "", config)


def error_reply(text: str, kind: str = "") -> bytes:
    """An error reply: never empty and never starting with ``h``, which the host takes for a keepalive. Such a
    text (``httppoll: property ...``) gets the symbol's ``kind`` before it (``source httppoll: ...``), else
    ``error:``; eKuiper shows it as ``receive error: <reply>``."""
    text = text.strip() or "error"
    if text[0] == "h":
        text = f"{kind or 'error:'} {text}"
    return text.encode("utf-8", "replace")


# ---------------------------------------------------------------- source channel


def encode_row(data: Mapping[str, Any], meta: Optional[Mapping[str, Any]] = None) -> bytes:
    """One source message: ``{"message": {...}, "meta": {...}|null}`` (the host rejects non-objects)."""
    if not isinstance(data, Mapping):
        raise TypeError(f"a source row must be a dict, got {type(data).__name__}")
    return _dumps({"message": data, "meta": meta})


def decode_source_message(payload: bytes) -> Tuple[Optional[Dict[str, Any]], Dict[str, Any]]:
    """What the host makes of a source message: ``(message or None, meta)``.

    Mirrors ``messageWrapper`` decoding: a non-object payload is a decode
    error (:class:`ProtocolError`); a missing or null message is an empty row.
    """
    raw = _loads(payload, "source message")
    if not isinstance(raw, dict):
        raise ProtocolError(f"Invalid data format, cannot decode {payload[:200]!r} to json format", payload)
    msg, meta = raw.get("message"), raw.get("meta")
    if msg is not None and not isinstance(msg, dict):
        raise ProtocolError(f"Invalid data format, cannot decode {payload[:200]!r} to json format", payload)
    if meta is not None and not isinstance(meta, dict):
        raise ProtocolError(f"Invalid data format, cannot decode {payload[:200]!r} to json format", payload)
    return msg, meta or {}


# ---------------------------------------------------------------- sink channel


def ack_error(message: str) -> bytes:
    """A failed ack: ``{"error": "..."}`` (the host turns it into an I/O error); any text encodes."""
    return _dumps({"error": encodable(message) or "error"})


def setting(config: Mapping[str, Any], name: str) -> Tuple[Optional[str], Any]:
    """``(key, value)`` of the setting ``name`` in a props map, the key matched as eKuiper's ``MapToStruct``
    (mapstructure) matches it: exactly, else the first key equal ignoring case; ``(None, None)`` if absent."""
    if name in config:
        return name, config[name]
    lower = name.lower()
    for key, value in config.items():
        if isinstance(key, str) and key.lower() == lower:
            return key, value
    return None, None


def require_ack(config: Mapping[str, Any]) -> bool:
    """Whether the host waits for acks: ``requireAck`` is true, the key matched as eKuiper's ``MapToStruct``
    matches it (:func:`setting`; ``runtime/sink.go Provision``). Only a JSON ``true`` counts: eKuiper refuses a
    rule whose ``requireAck`` is not a bool."""
    return setting(config, "requireAck")[1] is True


def send_single(config: Mapping[str, Any]) -> bool:
    """Whether the host sends one row per message: ``sendSingle`` is true (``internal/topo/node/props.go``),
    matched as :func:`require_ack` matches its key."""
    return setting(config, "sendSingle")[1] is True


def sink_payload(value: Any) -> bytes:
    """A sink message as eKuiper sends it: bytes unchanged, any other value as Go's JSON."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return go_json(value)


def decode_ack(payload: bytes) -> Optional[str]:
    """The host's reading of an ack: ``None`` for success, else the error text."""
    raw = _loads(payload, "sink ack")
    if not isinstance(raw, dict):
        raise ProtocolError("sink ack must be a JSON object", payload)
    err = raw.get("error") or ""
    if not isinstance(err, str):
        raise ProtocolError("sink ack 'error' must be a string", payload)
    return err or None


# ---------------------------------------------------------------- function channel


class FuncRequest(NamedTuple):
    func: str  # "Validate" | "IsAggregate" | "Exec"
    arg: Any


class FuncMeta(NamedTuple):
    rule_id: str
    op_id: str
    instance_id: int
    func_id: int


def func_context(rule_id: str, op_id: str, instance_id: int = 0, func_id: int = 0) -> str:
    """The context string the host appends to Exec arguments (``FuncMeta`` as Go marshals it)."""
    return go_json(_Struct(ruleId=rule_id, opId=op_id, instanceId=instance_id, funcId=func_id)).decode("utf-8")


def encode_func_request(func: str, arg: Any) -> bytes:
    """``runtime.FuncData`` as the Go host marshals it."""
    return go_json(_Struct(func=func, arg=arg))


def decode_func_request(payload: bytes) -> FuncRequest:
    if not payload:
        raise ProtocolError("empty function request", payload)
    raw = _loads(payload, "function request")
    if not isinstance(raw, dict) or not isinstance(raw.get("func"), str):
        raise ProtocolError("function request must be an object with a 'func' string", payload)
    return FuncRequest(raw["func"], raw.get("arg"))


def parse_func_meta(text: Any) -> FuncMeta:
    """The context the host appends to Exec arguments (a JSON string)."""
    if not isinstance(text, str):
        raise ProtocolError(f"Exec's last argument must be the context JSON string, got {type(text).__name__}")
    raw = _loads(text.encode("utf-8"), "function context")
    if not isinstance(raw, dict):
        raise ProtocolError("function context must be a JSON object")
    try:
        return FuncMeta(str(raw.get("ruleId", "")), str(raw.get("opId", "")), int(raw.get("instanceId", 0)),
                        int(raw.get("funcId", 0)))
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"function context has a non-integer id: {exc}") from None


def encode_func_reply(state: bool, result: Any) -> bytes:
    """``runtime.FuncReply``: ``{"state": bool, "result": ...}``; an error text (``state`` false) always encodes."""
    if not state and isinstance(result, str):
        result = encodable(result)
    return _dumps({"state": state, "result": result})


def aggregate_args(args: Sequence[Any]) -> List[Any]:
    """The arguments of an aggregate call as eKuiper sends them: every argument is one list of per-row values
    (``AggregateEval``). A list (or tuple) is taken as that column; any other value is a constant, such as a
    literal in the SQL, repeated once per row. Without any list the group has one row."""
    lengths = {len(a) for a in args if isinstance(a, (list, tuple))}
    if len(lengths) > 1:
        raise ValueError(f"aggregate arguments are columns of one group and must have the same length, "
                         f"got lengths {sorted(lengths)}")
    rows = lengths.pop() if lengths else 1
    return [list(a) if isinstance(a, (list, tuple)) else [a] * rows for a in args]


def decode_func_reply(payload: bytes) -> Tuple[bool, Any]:
    """The host's reading of a ``FuncReply`` (its error text when it cannot)."""
    try:
        raw = _decode(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raw = None
    if not isinstance(raw, dict) or not isinstance(raw.get("state"), bool):
        raise ProtocolError(f"Failed to unmarshal function result {payload[:200]!r}", payload)
    return raw["state"], raw.get("result")


def data_url(meta: Meta, directory: Optional[str] = None) -> str:
    """The data socket of a source or sink instance."""
    return instance_url(meta.rule_id, meta.op_id, meta.instance_id, "", directory)


def ack_url(meta: Meta, directory: Optional[str] = None) -> str:
    """The ack socket of a sink instance."""
    return instance_url(meta.rule_id, meta.op_id, meta.instance_id, "_ack", directory)
