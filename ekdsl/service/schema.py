"""The proto3 view of a plugin's functions, as eKuiper's external services read it.

One ``rpc`` per ``@function``: its request message has one field per parameter (in order, numbered from 1),
its reply is a well-known wrapper (``google.protobuf.DoubleValue`` ...) for a scalar result, so that SQL gets the
value itself, a message with one ``result`` field for a list, or the object's own message for a TypedDict or
dataclass. :func:`proto_text` writes the ``.proto``; :class:`Shape` tells the servers how to read arguments
and write replies the way that schema says.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from ..model import MISSING, FieldModel, PluginModel, SymbolModel, TypeInfo

__all__ = ["Field", "NotServable", "Shape", "ident", "proto_package", "proto_text", "service_name", "shape_of",
           "shapes"]

_SCALARS = {"str": "string", "int": "int64", "float": "double", "bool": "bool", "bytes": "bytes"}
_WRAPPERS = {"string": "StringValue", "int64": "Int64Value", "double": "DoubleValue", "bool": "BoolValue",
             "bytes": "BytesValue"}
_ZERO: Dict[str, Any] = {"string": "", "int64": 0, "double": 0.0, "bool": False, "bytes": b""}


class NotServable(Exception):
    """A function whose signature proto3 (as eKuiper converts it) cannot carry; ``reason`` says why."""

    def __init__(self, symbol: str, reason: str) -> None:
        self.symbol, self.reason = symbol, reason
        super().__init__(f"{symbol}(): {reason}")


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def ident(text: str) -> str:
    """``text`` made a proto identifier: characters other than ASCII letters, digits and ``_`` become ``_``, and
    a leading digit (or nothing) gets a ``_`` before it (``c-to-f`` → ``c_to_f``, ``1geo`` → ``_1geo``)."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return out if _IDENT.fullmatch(out) else f"_{out}"


def json_name(name: str) -> str:
    """protoc's JSON name of a field: ``max_value`` → ``maxValue``."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _scalar(t: TypeInfo, where: str, symbol: str) -> str:
    if t.kind in _SCALARS:
        return _SCALARS[t.kind]
    if t.kind in ("literal", "enum"):
        values = [getattr(c, "value", c) for c in t.choices]
        for kinds, proto in (({bool}, "bool"), ({int}, "int64"), ({int, float}, "double"), ({str}, "string")):
            if values and {type(v) for v in values} <= kinds:
                return proto
    raise NotServable(symbol, f"{where} is {t.describe()}, which has no proto3 type eKuiper converts to "
                              "(use str, int, float, bool, bytes, a list of them, or a TypedDict/dataclass)")


class Field(NamedTuple):
    """One field of a request or reply message."""

    name: str
    proto: str  # scalar proto type or a message name
    repeated: bool
    optional: bool
    message: Optional[str]  # set when ``proto`` names a message


class Shape(NamedTuple):
    """How one function travels as a service call."""

    symbol: SymbolModel
    method: str
    request: str  # message name
    fields: Tuple[Field, ...]
    reply: str  # "wrapper" | "result" | "object"
    reply_type: str  # a google.protobuf wrapper, or a message name
    reply_scalar: str  # the wrapped proto scalar, for "wrapper"
    messages: Tuple[Tuple[str, Tuple[Field, ...]], ...]  # every message this function needs, request first

    def args_from_json(self, body: Dict[str, Any]) -> List[Any]:
        """Positional arguments from a request message in proto JSON (``jsonpb``: lowerCamelCase or original
        names, 64-bit ints as strings, bytes as base64, zero values left out)."""
        known = {f.name for f in self.fields} | {json_name(f.name) for f in self.fields}
        unknown = sorted(k for k in body if k not in known)
        if unknown:
            raise ValueError(f"{self.method}() has no parameter {', '.join(map(repr, unknown))}: "
                             f"it takes {', '.join(f.name for f in self.fields) or 'no arguments'}")
        args = []
        for f in self.fields:
            value = body.get(f.name, body.get(json_name(f.name)))
            if value is None:
                value = None if f.optional or f.message else ([] if f.repeated else _ZERO[f.proto])
            elif f.proto == "bytes":
                value = [_b64(v) for v in value] if f.repeated and isinstance(value, list) else _b64(value)
            args.append(value)
        return args

    def args_from_msgpack(self, params: Any) -> List[Any]:
        """Positional arguments from msgpack-rpc ``params``: ``[nil]`` for none, ``[p]`` for one, ``[p1, ...]``
        for several (Go's msgpack writes ``[]byte`` as a raw string: bytes parameters take its bytes back)."""
        args = list(params) if isinstance(params, (list, tuple)) else [params]
        if not self.fields and args == [None]:
            args = []
        for i, f in enumerate(self.fields[:len(args)]):
            if f.proto == "bytes" and isinstance(args[i], str):
                args[i] = args[i].encode("utf-8", "surrogateescape")
        return args

    def reply_ints(self, value: Any) -> Iterator[Tuple[str, int]]:
        """Each integer at an ``int64`` place of a reply value (as :mod:`.functions` shapes it) with where it is:
        ``""`` for a wrapper's value, else a path such as ``result[1]`` or ``box.low``."""
        if self.reply == "wrapper":
            if self.reply_scalar == "int64" and isinstance(value, int) and not isinstance(value, bool):
                yield "", value
            return
        yield from _ints(dict(self.messages), self.reply_type, value, "")


def _ints(messages: Dict[str, Tuple[Field, ...]], name: str, value: Any, where: str) -> Iterator[Tuple[str, int]]:
    if not isinstance(value, dict):
        return
    for f in messages[name]:
        item = value.get(f.name)
        items = list(enumerate(item)) if f.repeated and isinstance(item, list) else [(-1, item)]
        for i, v in items:
            at = (f"{where}.{f.name}" if where else f.name) + (f"[{i}]" if i >= 0 else "")
            if f.message:
                yield from _ints(messages, f.message, v, at)
            elif f.proto == "int64" and isinstance(v, int) and not isinstance(v, bool):
                yield at, v


def _b64(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            return value.encode("utf-8")
    return value


def shape_of(sym: SymbolModel) -> Shape:
    """The service shape of one function, or :class:`NotServable`."""
    if sym.aggregate:
        raise NotServable(sym.name, "an aggregate function; eKuiper calls external services once per row")
    if any(p.variadic for p in sym.params):
        raise NotServable(sym.name, "variadic: eKuiper maps arguments to a message's fields one by one")
    messages: Dict[str, Tuple[Field, ...]] = {}
    stem = ident(_camel(sym.name) or sym.name)
    request = f"{stem}Request"
    fields = tuple(_field(p, f"parameter '{p.name}'", sym.name, messages) for p in sym.params)
    messages = {request: fields, **messages}
    t = sym.returns or TypeInfo("any")
    reply_type, reply, scalar = f"{stem}Reply", "result", ""
    if t.kind == "object":
        reply, reply_type = "object", _message(t, "the result", sym.name, messages)
    elif t.kind == "list":
        item = t.item or TypeInfo("any")
        proto, message = _proto_of(item, "the result's items", sym.name, messages)
        messages[reply_type] = (Field("result", proto, True, False, message),)
    else:
        scalar = _scalar(t, "the result", sym.name)
        reply, reply_type = "wrapper", f"google.protobuf.{_WRAPPERS[scalar]}"
    _check_json_names(sym.name, messages)
    return Shape(sym, ident(sym.name), request, fields, reply, reply_type, scalar, tuple(messages.items()))


def _check_json_names(symbol: str, messages: Dict[str, Tuple[Field, ...]]) -> None:
    """protoc refuses a proto3 message with two fields of one JSON name (``max_value`` and ``maxValue``)."""
    for name, fields in messages.items():
        seen: Dict[str, str] = {}
        for f in fields:
            other = seen.setdefault(json_name(f.name), f.name)
            if other != f.name:
                raise NotServable(symbol, f"message {name} would have fields '{other}' and '{f.name}', which "
                                          "proto3 gives one JSON name: rename one")


def _proto_of(t: TypeInfo, where: str, symbol: str, messages: Dict[str, Tuple[Field, ...]]) -> Tuple[str, Any]:
    if t.kind == "object":
        name = _message(t, where, symbol, messages)
        return name, name
    return _scalar(t, where, symbol), None


def _field(p: FieldModel, where: str, symbol: str, messages: Dict[str, Tuple[Field, ...]]) -> Field:
    t = p.type
    if not _IDENT.fullmatch(p.name):
        raise NotServable(symbol, f"{where} is not a proto3 field name")
    repeated = t.kind == "list"
    if repeated:
        item = t.item or TypeInfo("any")
        if item.kind == "list":
            raise NotServable(symbol, f"{where} is a list of lists, which proto3 has no type for")
        proto, message = _proto_of(item, where, symbol, messages)
    else:
        proto, message = _proto_of(t, where, symbol, messages)
    optional = not repeated and message is None and (t.optional or p.default is not MISSING)
    return Field(p.name, proto, repeated, optional, message)


def _message(t: TypeInfo, where: str, symbol: str, messages: Dict[str, Tuple[Field, ...]]) -> str:
    name = ident(_camel(getattr(t.pytype, "__name__", "") or "Object"))
    if name not in messages:
        messages[name] = ()
        messages[name] = tuple(_field(f, f"{where}'s field '{f.name}'", symbol, messages) for f in t.fields)
    return name


def shapes(model: PluginModel) -> Tuple[List[Shape], List[NotServable]]:
    """The shapes of every function of ``model`` that can be served, and why the others cannot: besides what
    proto3 cannot carry, a function whose rpc or message names are taken by an earlier one with another
    definition (``c_to_f`` and ``c-to-f`` share the rpc name ``c_to_f``)."""
    good: List[Shape] = []
    bad: List[NotServable] = []
    methods: Dict[str, str] = {}
    defined: Dict[str, Tuple[Tuple[Field, ...], str]] = {}
    service = service_name(model)
    for sym in model.functions:
        try:
            shape = shape_of(sym)
            taken = methods.get(shape.method.lower())
            if taken is not None:
                raise NotServable(sym.name, f"its rpc name '{shape.method}' is taken by function '{taken}': "
                                            "rename one with @function(name=...)")
            for name, fields in shape.messages:
                if name == service:
                    raise NotServable(sym.name, f"its message {name} has the name of the service: rename the "
                                                "type or the function")
                earlier = defined.get(name)
                if earlier is not None and earlier[0] != fields:
                    raise NotServable(sym.name, f"its message {name} differs from the one function '{earlier[1]}' "
                                                "defines: rename the type or the function")
        except NotServable as exc:
            bad.append(exc)
            continue
        methods[shape.method.lower()] = sym.name
        for name, fields in shape.messages:
            defined.setdefault(name, (fields, sym.name))
        good.append(shape)
    return good, bad


def service_name(model: PluginModel) -> str:
    """The proto service of a plugin's schema: its name in CamelCase, made an identifier."""
    return ident(_camel(model.name) or "Plugin")


def proto_package(model: PluginModel) -> str:
    """The proto package of a plugin's schema: ``ekdsl.<name>``, made a valid identifier."""
    return "ekdsl." + ident(model.name.lower())


def proto_text(model: PluginModel, served: Sequence[Shape]) -> str:
    """The ``.proto`` (proto3) for ``served``; deterministic, in declaration order."""
    lines = [
        "// Generated by ekdsl from the plugin's @function signatures. Do not edit.",
        'syntax = "proto3";',
        "",
        f"package {proto_package(model)};",
        "",
    ]
    if any(s.reply == "wrapper" for s in served):
        lines += ['import "google/protobuf/wrappers.proto";', ""]
    lines.append(f"service {service_name(model)} {{")
    for s in served:
        lines.append(f"  rpc {s.method}({s.request}) returns ({s.reply_type}) {{}}")
    lines += ["}", ""]
    written: set[str] = set()
    for s in served:
        for name, fields in s.messages:
            if name in written:
                continue
            written.add(name)
            lines.append(f"message {name} {{")
            for n, f in enumerate(fields, 1):
                label = "repeated " if f.repeated else "optional " if f.optional else ""
                lines.append(f"  {label}{f.proto} {f.name} = {n};")
            lines += ["}", ""]
    return "\n".join(lines)
