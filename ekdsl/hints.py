"""Type hints → :class:`ekdsl.model.TypeInfo`: what an annotation means to eKuiper, or :class:`Unsupported`."""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime as _dt
import enum
import sys
import types as pytypes
import typing
from typing import Any, Dict, List, Optional, Tuple

from .context import Row
from .decorators import Param
from .model import MISSING, FieldModel, Text, TypeInfo

__all__ = [
    "ITERABLE_ORIGINS", "SUPPORTED", "Unsupported", "data_type_info", "param_marker", "strip", "type_info", "type_name",
]

ITERABLE_ORIGINS = {
    cabc.Iterator, cabc.Iterable, cabc.Generator,
    cabc.AsyncIterator, cabc.AsyncIterable, cabc.AsyncGenerator,
}
_SCALARS: Dict[Any, str] = {
    str: "str", int: "int", float: "float", bool: "bool", bytes: "bytes",
    _dt.datetime: "datetime", Any: "any", object: "any",
}
_LIST_ORIGINS = {list, tuple, cabc.Sequence, cabc.MutableSequence, cabc.Collection, cabc.Iterable}
_DICT_ORIGINS = {dict, cabc.Mapping, cabc.MutableMapping}
SUPPORTED = ("str, int, float, bool, bytes, datetime, Any, Template, list[...], dict, Literal[...], "
             "an Enum, a TypedDict or a dataclass")


class Unsupported(Exception):
    """An annotation that has no eKuiper equivalent."""



def _is_annotated(tp: Any) -> bool:
    return typing.get_origin(tp) is typing.Annotated  # typing_extensions.Annotated is the same object


def _is_literal(origin: Any) -> bool:
    if origin is typing.Literal:
        return True
    te = sys.modules.get("typing_extensions")  # its Literal differs on old Pythons; only if the user loaded it
    return te is not None and origin is getattr(te, "Literal", None)


def _is_typeddict(tp: Any) -> bool:
    """A TypedDict class from typing or typing_extensions."""
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__total__")


def _is_union(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        return True
    union_type = getattr(pytypes, "UnionType", None)  # X | Y, Python 3.10+
    return union_type is not None and origin is union_type


def type_info(tp: Any) -> TypeInfo:
    """Reduce a resolved annotation to a :class:`TypeInfo`; raise :class:`Unsupported`."""
    if _is_annotated(tp):
        base, *metadata = typing.get_args(tp)
        return _annotated(type_info(base), tuple(metadata))
    if _is_union(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != len(typing.get_args(tp)) and len(args) == 1:
            return type_info(args[0])._replace(optional=True)
        raise Unsupported(f"the union {type_name(tp)} is not supported: use one type, Optional[T] or Any")
    if tp in _SCALARS:
        return TypeInfo(_SCALARS[tp], display=_SCALARS[tp])
    if isinstance(tp, type) and tp.__module__ == "ekdsl.template" and tp.__qualname__ == "Template":
        return TypeInfo("template", display="a data template")  # known without importing the parser
    origin = typing.get_origin(tp)
    if _is_literal(origin):
        return _literal(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        choices = tuple(m.value for m in tp)
        return TypeInfo("enum", choices=choices, pytype=tp, display=f"{tp.__name__} (one of {_fmt(choices)})")
    if _is_typeddict(tp) or (isinstance(tp, type) and dataclasses.is_dataclass(tp)):
        return _object(tp)
    if tp in (list, tuple) or origin in _LIST_ORIGINS:
        return _list(tp, origin)
    if tp is dict or origin in _DICT_ORIGINS:
        kv = typing.get_args(tp)
        item = type_info(kv[1]) if len(kv) == 2 else None
        return TypeInfo("dict", item=item, display="object" if item is None else f"object of {item.describe()}")
    raise Unsupported(f"the annotation {type_name(tp)} is not supported: use {SUPPORTED}")


def _annotated(t: TypeInfo, metadata: Tuple[Any, ...]) -> TypeInfo:
    """``t`` with what ``Annotated``'s metadata adds: constraints (:mod:`ekdsl.constraints`) and ``secret``."""
    if any(isinstance(m, Param) and m.secret for m in metadata):
        t = t._replace(secret=True)
    if all(isinstance(m, Param) and not m.constrains for m in metadata):
        return t  # the usual case, decided without loading the constraints module
    from .constraints import Unfit, constraints_of

    try:
        cons = constraints_of(metadata, t.kind)
    except Unfit as exc:
        raise Unsupported(str(exc)) from None
    return t._replace(constraints=cons) if cons else t


_ROWS = TypeInfo("list", item=TypeInfo("row", pytype=Row, display="Row"), display="list of Row")


def data_type_info(tp: Any) -> TypeInfo:
    """:func:`type_info` for a sink's data parameter, which may also be ``list[Row]``: the message's rows with
    their meta."""
    bare = strip(tp)
    if typing.get_origin(bare) in _LIST_ORIGINS and [strip(a) for a in typing.get_args(bare)] == [Row]:
        return _ROWS
    if type_info(tp).nested(lambda t: t.constraints is not None):
        raise Unsupported("constraints on a sink's data are not checked (the data is what the rule sends): check "
                          "the rows in the function, or put the constraints on properties")
    return type_info(bare)


def _literal(tp: Any) -> TypeInfo:
    choices = tuple(typing.get_args(tp))
    if not choices or not all(isinstance(c, (str, int, float, bool)) for c in choices):
        raise Unsupported(f"{type_name(tp)}: Literal choices must be str, int, float or bool values")
    return TypeInfo("literal", choices=choices, display=f"one of {_fmt(choices)}")


def _list(tp: Any, origin: Any) -> TypeInfo:
    args = tuple(a for a in typing.get_args(tp) if a is not Ellipsis)
    if (origin is tuple or tp is tuple) and len(set(args)) > 1:
        raise Unsupported(f"{type_name(tp)}: a fixed-shape tuple is not supported: use list[T]")
    item = type_info(args[0]) if args else None
    return TypeInfo("list", item=item, display="list" if item is None else f"list of {item.describe()}")


def _object(cls: type) -> TypeInfo:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields: List[FieldModel] = []
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            default: Any = MISSING
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            fields.append(_object_field(f.name, hints[f.name], default))
    else:
        required = getattr(cls, "__required_keys__", frozenset(hints))
        for key, hint in hints.items():
            fields.append(_object_field(key, hint, MISSING if key in required else None, optional=key not in required))
    names = ", ".join(f.name for f in fields)
    return TypeInfo("object", fields=tuple(fields), pytype=cls, display=f"object {cls.__name__} ({names})")


def _object_field(name: str, hint: Any, default: Any, optional: bool = False) -> FieldModel:
    t = type_info(hint)
    if optional:
        t = t._replace(optional=True)
    marker = param_marker(hint)
    return FieldModel(
        name=(marker.name if marker and marker.name else name),
        key=name if marker and marker.name else "",
        type=t,
        default=default,
        hint=Text.of(marker.hint) if marker else Text(),
        label=Text.of(marker.label) if marker and marker.label else Text(name, name),
    )


def param_marker(hint: Any) -> Optional[Param]:
    if _is_annotated(hint):
        for meta in typing.get_args(hint)[1:]:
            if isinstance(meta, Param):
                return meta
    return None


def type_name(tp: Any) -> str:
    if typing.get_origin(tp) is None and isinstance(getattr(tp, "__name__", None), str):
        return str(tp.__name__)
    return repr(tp).replace("typing.", "")


def _fmt(choices: Tuple[Any, ...]) -> str:
    return ", ".join(repr(c) for c in choices)


def strip(tp: Any) -> Any:
    """Remove ``Annotated`` and ``Optional`` wrappers."""
    if _is_annotated(tp):
        tp = typing.get_args(tp)[0]
    if _is_union(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return strip(args[0])
    return tp
