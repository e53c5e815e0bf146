"""The schema of :mod:`.schema` as protobuf message classes, built at run time (no generated code, no protoc).

:func:`file_descriptor` builds the same ``FileDescriptorProto`` protoc makes of :func:`.schema.proto_text` (a test
compares them); :class:`Messages` turns request messages into positional arguments and reply values into reply
messages, following eKuiper's converter (``internal/converter/protobuf``): absent ``optional`` fields and messages
are null, other fields their zero value; a wrapper carries a scalar result.
"""

from __future__ import annotations

import base64
from typing import Any, Dict, List, Sequence, Tuple

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

from ..model import PluginModel
from .schema import Field, Shape, json_name, proto_package, service_name

__all__ = ["Messages", "file_descriptor"]

_FDP = descriptor_pb2.FieldDescriptorProto
_TYPES = {"string": _FDP.TYPE_STRING, "int64": _FDP.TYPE_INT64, "double": _FDP.TYPE_DOUBLE,
          "bool": _FDP.TYPE_BOOL, "bytes": _FDP.TYPE_BYTES}


def file_descriptor(model: PluginModel, served: Sequence[Shape]) -> descriptor_pb2.FileDescriptorProto:
    """The descriptor of ``<name>.proto``: one service, its rpcs and every message, in declaration order."""
    package = proto_package(model)
    fdp = descriptor_pb2.FileDescriptorProto(name=f"{model.name}.proto", package=package, syntax="proto3")
    if any(s.reply == "wrapper" for s in served):
        fdp.dependency.append("google/protobuf/wrappers.proto")
    service = fdp.service.add(name=service_name(model))
    for s in served:
        reply = f".{s.reply_type}" if s.reply == "wrapper" else f".{package}.{s.reply_type}"
        rpc = service.method.add(name=s.method, input_type=f".{package}.{s.request}", output_type=reply)
        rpc.options.SetInParent()  # the '{}' after each rpc in the .proto text
    written = set()
    for s in served:
        for name, fields in s.messages:
            if name not in written:
                written.add(name)
                _message(fdp.message_type.add(name=name), fields, package)
    return fdp


def _message(msg: descriptor_pb2.DescriptorProto, fields: Tuple[Field, ...], package: str) -> None:
    for number, f in enumerate(fields, 1):
        field = msg.field.add(name=f.name, number=number, json_name=json_name(f.name),
                              label=_FDP.LABEL_REPEATED if f.repeated else _FDP.LABEL_OPTIONAL)
        if f.message:
            field.type, field.type_name = _FDP.TYPE_MESSAGE, f".{package}.{f.message}"
        else:
            field.type = _TYPES[f.proto]
        if f.optional:  # proto3 ``optional``: a synthetic oneof of its own, declared after the real ones
            field.proto3_optional = True
            field.oneof_index = len(msg.oneof_decl)
            msg.oneof_decl.add(name=f"_{f.name}")


class Messages:
    """The message classes of one plugin's schema, and the conversions the servers need."""

    def __init__(self, model: PluginModel, served: Sequence[Shape]) -> None:
        pool = descriptor_pool.DescriptorPool()
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(wrappers_pb2.DESCRIPTOR.serialized_pb))
        fdp = file_descriptor(model, served)
        pool.Add(fdp)
        self.package, self.service = fdp.package, service_name(model)
        self._classes: Dict[str, Any] = {}
        self._fields: Dict[str, Tuple[Field, ...]] = {}
        for s in served:
            for name, fields in s.messages:
                self._fields[name] = fields
                self._classes[name] = self._class(pool, f"{self.package}.{name}")
            if s.reply == "wrapper":
                self._classes[s.reply_type] = self._class(pool, s.reply_type)
        self.shapes = {s.method: s for s in served}

    @staticmethod
    def _class(pool: descriptor_pool.DescriptorPool, full_name: str) -> Any:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))

    def request_class(self, method: str) -> Any:
        return self._classes[self.shapes[method].request]

    def reply_class(self, method: str) -> Any:
        return self._classes[self.shapes[method].reply_type]

    def args(self, method: str, request: Any) -> List[Any]:
        """Positional arguments from a request message."""
        return list(self._values(request, self.shapes[method].fields).values())

    def _values(self, msg: Any, fields: Tuple[Field, ...]) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for f in fields:
            value = getattr(msg, f.name)
            if f.repeated:
                out[f.name] = [self._values(v, self._fields[f.message]) for v in value] if f.message else list(value)
            elif (f.optional or f.message) and not msg.HasField(f.name):
                out[f.name] = None
            else:
                out[f.name] = self._values(value, self._fields[f.message]) if f.message else value
        return out

    def reply(self, method: str, value: Any) -> Any:
        """The reply message for a successful call's value (as :class:`.functions.Functions` shapes it); raises
        ``TypeError`` or ``ValueError`` for a value the message cannot hold."""
        shape = self.shapes[method]
        cls = self._classes[shape.reply_type]
        if shape.reply == "wrapper":
            return cls(value=value)
        msg = cls()
        self._fill(msg, self._fields[shape.reply_type], value)
        return msg

    def _fill(self, msg: Any, fields: Tuple[Field, ...], value: Any) -> None:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object for message {type(msg).__name__}, got {type(value).__name__}")
        for f in fields:
            item = value.get(f.name)
            if item is None:
                continue
            if f.message:
                if f.repeated:
                    for element in item:
                        self._fill(getattr(msg, f.name).add(), self._fields[f.message], element)
                else:
                    sub = getattr(msg, f.name)
                    sub.SetInParent()  # present even when it has no field set
                    self._fill(sub, self._fields[f.message], item)
            elif f.repeated:
                getattr(msg, f.name).extend(_scalar(f, v) for v in item)
            else:
                setattr(msg, f.name, _scalar(f, item))


def _scalar(f: Field, value: Any) -> Any:
    if f.proto == "bytes" and isinstance(value, str):
        return base64.b64decode(value)  # results are made JSON-safe first: bytes travel as base64 text
    return value
