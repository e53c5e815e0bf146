"""Signatures, type hints and docstrings → the neutral model.

This is the only module that calls :mod:`inspect` and ``get_type_hints``.
It collects every problem it finds instead of stopping at the first one.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime as _dt
import enum
import inspect
import os
import re
import sys
import types as pytypes
import typing
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Optional, Tuple

from . import reserved as _reserved
from . import types as _types
from .connections import build_connection, connection_marker
from .context import Context, Row
from .decorators import Param, SymbolSpec
from .errors import ConfigError, Problem, TemplateError
from .keys import key_clashes
from .kinds import Kind, Role, check_options
from .model import MISSING, ConnectionUse, FieldModel, SymbolModel, Text, TypeInfo

__all__ = ["NAME_RE", "build_symbol", "data_type_info", "describe_location", "type_info"]

NAME_RE = re.compile(r"[a-zA-Z0-9_-]+")  # matched whole: NAME_RE.fullmatch
_ITERABLE_ORIGINS = {
    cabc.Iterator, cabc.Iterable, cabc.Generator,
    cabc.AsyncIterator, cabc.AsyncIterable, cabc.AsyncGenerator,
}
_SCALARS: Dict[Any, str] = {
    str: "str", int: "int", float: "float", bool: "bool", bytes: "bytes",
    _dt.datetime: "datetime", Any: "any", object: "any",
}
_LIST_ORIGINS = {list, tuple, cabc.Sequence, cabc.MutableSequence, cabc.Collection, cabc.Iterable}
_DICT_ORIGINS = {dict, cabc.Mapping, cabc.MutableMapping}
_SUPPORTED = ("str, int, float, bool, bytes, datetime, Any, Template, list[...], dict, Literal[...], "
              "an Enum, a TypedDict or a dataclass")
_DYNAMIC_KINDS = frozenset({"str", "int", "float", "bool", "bytes", "datetime", "any", "literal", "enum"})
_CONTEXT_NAMES = ("ctx", "context")
_RENAME = {"interval": "period", "format": "encoding", "key": "keyName", "timestamp": "timestampField",
           "delimiter": "separator", "fields": "columns", "concurrency": "workers", "compression": "codec"}


class Unsupported(Exception):
    """An annotation that has no eKuiper equivalent."""


def describe_location(func: Callable[..., Any]) -> Tuple[str, int]:
    """``(file name, first line)`` of a callable, for messages."""
    target = inspect.unwrap(func)
    code = getattr(target, "__code__", None)
    if code is None:
        return "", 0
    return os.path.basename(code.co_filename), code.co_firstlineno


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
        raise Unsupported(f"the union {_name(tp)} is not supported: use one type, Optional[T] or Any")
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
    raise Unsupported(f"the annotation {_name(tp)} is not supported: use {_SUPPORTED}")


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
    bare = _strip(tp)
    if typing.get_origin(bare) in _LIST_ORIGINS and [_strip(a) for a in typing.get_args(bare)] == [Row]:
        return _ROWS
    if _constrained(type_info(tp)):
        raise Unsupported("constraints on a sink's data are not checked (the data is what the rule sends): check "
                          "the rows in the function, or put the constraints on properties")
    return type_info(bare)


def _constrained(t: Optional[TypeInfo]) -> bool:
    return t is not None and (t.constraints is not None or _constrained(t.item)
                              or any(_constrained(f.type) for f in t.fields))


def _literal(tp: Any) -> TypeInfo:
    choices = tuple(typing.get_args(tp))
    if not choices or not all(isinstance(c, (str, int, float, bool)) for c in choices):
        raise Unsupported(f"{_name(tp)}: Literal choices must be str, int, float or bool values")
    return TypeInfo("literal", choices=choices, display=f"one of {_fmt(choices)}")


def _list(tp: Any, origin: Any) -> TypeInfo:
    args = tuple(a for a in typing.get_args(tp) if a is not Ellipsis)
    if (origin is tuple or tp is tuple) and len(set(args)) > 1:
        raise Unsupported(f"{_name(tp)}: a fixed-shape tuple is not supported: use list[T]")
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
            fields.append(_field(f.name, hints[f.name], default))
    else:
        required = getattr(cls, "__required_keys__", frozenset(hints))
        for key, hint in hints.items():
            fields.append(_field(key, hint, MISSING if key in required else None, optional=key not in required))
    names = ", ".join(f.name for f in fields)
    return TypeInfo("object", fields=tuple(fields), pytype=cls, display=f"object {cls.__name__} ({names})")


def _field(name: str, hint: Any, default: Any, optional: bool = False) -> FieldModel:
    t = type_info(hint)
    if optional:
        t = t._replace(optional=True)
    marker = _param_marker(hint)
    return FieldModel(
        name=(marker.name if marker and marker.name else name),
        key=name if marker and marker.name else "",
        type=t,
        default=default,
        hint=Text.of(marker.hint) if marker else Text(),
        label=Text.of(marker.label) if marker and marker.label else Text(name, name),
    )


def _param_marker(hint: Any) -> Optional[Param]:
    if _is_annotated(hint):
        for meta in typing.get_args(hint)[1:]:
            if isinstance(meta, Param):
                return meta
    return None


def _name(tp: Any) -> str:
    if typing.get_origin(tp) is None and isinstance(getattr(tp, "__name__", None), str):
        return str(tp.__name__)
    return repr(tp).replace("typing.", "")


def _fmt(choices: Tuple[Any, ...]) -> str:
    return ", ".join(repr(c) for c in choices)


def _strip(tp: Any) -> Any:
    """Remove ``Annotated`` and ``Optional`` wrappers."""
    if _is_annotated(tp):
        tp = typing.get_args(tp)[0]
    if _is_union(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _strip(args[0])
    return tp


_NOT_TEXT = frozenset({"int", "float", "bool", "datetime"})


def _typed_example(kind: str, text: str) -> str:
    """The default ``text`` written as a ``kind`` literal, for a fix hint."""
    try:
        if kind == "int":
            return repr(int(text))
        if kind == "float":
            return repr(float(text))
    except ValueError:
        pass
    return {"bool": "False", "datetime": "datetime(2024, 1, 1)"}.get(kind, "0")


class _Collector:
    """Accumulates problems for one symbol."""

    def __init__(self, kind: str, name: str, func: Callable[..., Any], problems: List[Problem]):
        self.kind, self.name, self.problems = kind, name, problems
        self.file, self.line = describe_location(func)

    def add(self, message: str, fix: str = "") -> None:
        self.problems.append(Problem(self.kind, self.name, self.file, self.line, message, fix))


def _hints(func: Callable[..., Any], col: _Collector) -> Optional[Dict[str, Any]]:
    try:
        return typing.get_type_hints(inspect.unwrap(func), include_extras=True)
    except Exception as exc:  # NameError for unresolvable forward references, TypeError for bad ones
        col.add(f"has an annotation that cannot be resolved ({exc})",
                "define or import every name used in annotations at module level")
        return None


def _readable(func: Callable[..., Any], col: _Collector) -> Optional[Tuple[inspect.Signature, Dict[str, Any]]]:
    """The signature and resolved hints of ``func``, or ``None`` with the problem collected."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        col.add(f"has no readable signature ({exc})", "decorate a plain 'def' function")
        return None
    hints = _hints(func, col)
    return None if hints is None else (sig, hints)


class _NoDoc:
    summary = ""
    returns = ""
    params: ClassVar[Mapping[str, str]] = MappingProxyType({})


_NO_DOC = _NoDoc()


def _docstring(target: Any) -> Any:
    from .docstrings import parse_docstring  # only metadata needs texts; the plugin process skips this

    return parse_docstring(getattr(target, "__doc__", None))


def build_symbol(func: Callable[..., Any], spec: SymbolSpec, problems: List[Problem],
                 docs: bool = True) -> Optional[SymbolModel]:
    """Introspect one decorated callable; append problems and return ``None`` when invalid.

    ``docs=False`` skips docstrings (hints and descriptions), which only the metadata needs.
    """
    name = str(spec.name or getattr(func, "__name__", ""))
    col = _Collector(spec.kind, name, func, problems)
    before = len(problems)
    if not NAME_RE.fullmatch(name):
        col.add("has a name eKuiper rejects (allowed: letters, digits, '_' and '-')",
                f"pass a valid name, e.g. @{spec.kind}(name={re.sub(r'[^a-zA-Z0-9_-]', '_', name)!r})")
    builtin = _reserved.builtin_symbol(spec.kind, name)
    if builtin is not None:
        shown = name.lower() if spec.kind == Kind.FUNCTION else name
        col.add(f"has the name of eKuiper's built-in {spec.kind} '{shown}' ({builtin}); eKuiper looks built-ins "
                f"up first, so this {spec.kind} is never reached",
                f"pass another name, e.g. @{spec.kind}(name='my_{shown}')")
    if inspect.isclass(func):
        col.add(f"is a class ({func.__name__}); ekdsl symbols are functions, not SDK-style classes",
                "rewrite it as a decorated function: see docs/migration.md (official Python SDK to ekdsl)")
        return None
    readable = _readable(func, col)
    if readable is None:
        return None
    sig, hints = readable
    target = inspect.unwrap(func)
    is_gen = inspect.isgeneratorfunction(target)
    is_agen = inspect.isasyncgenfunction(target)
    is_async = is_agen or inspect.iscoroutinefunction(target)
    doc = _docstring(target) if docs else _NO_DOC
    shape = _SymbolShape(spec, col, hints, doc, is_gen or is_agen, tuple(sig.parameters), docs)
    for param in sig.parameters.values():
        shape.add_param(param)
    shape.add_connection_settings(sig)
    shape.check_kind(sig, is_gen, is_agen)
    if not Kind(spec.kind).spec.arguments:
        for message, fix in key_clashes(shape.params, shape.datasource):
            col.add(message, fix)
    if len(problems) > before:
        return None
    return SymbolModel(
        kind=spec.kind, name=name, func=func,
        description=spec.description or Text.of(doc.summary),
        label=spec.label or Text(name, name),
        params=tuple(shape.params), file=col.file, line=col.line,
        context_param=shape.context_param, context_at=shape.context_at, datasource_param=shape.datasource_param,
        datasource=shape.datasource, data_param=shape.data_param, data_type=shape.data_type,
        returns=shape.returns, returns_hint=Text.of(doc.returns),
        is_async=is_async, is_generator=is_gen or is_agen, aggregate=spec.aggregate,
        conf_keys=shape.conf_keys(), example=spec.example or _example(spec.kind, name, shape.params),
        require_ack=spec.require_ack, connections=tuple(shape.connections),
    )


def _example(kind: Kind, name: str, params: List[FieldModel]) -> str:
    if not kind.spec.arguments:
        return ""
    args = [f"{p.name}..." if p.variadic else p.name for p in params]
    return f"{name}({', '.join(args)})"


class _SymbolShape:
    """Sorts a callable's parameters into properties and special roles."""

    def __init__(self, spec: SymbolSpec, col: _Collector, hints: Dict[str, Any], doc: Any, gen: bool,
                 names: Tuple[str, ...] = (), docs: bool = True):
        self.spec, self.col, self.hints, self.doc, self.gen, self.docs = spec, col, hints, doc, gen, docs
        self.connections: List[ConnectionUse] = []
        self.names = names  # every parameter's name
        markers = (_param_marker(hints.get(n)) for n in names)
        # every key a parameter may take, lower-cased: the names, and each Param(name=...)
        self.taken = frozenset(n.lower() for n in names) | {m.name.lower() for m in markers if m and m.name}
        self.params: List[FieldModel] = []
        self.context_param: Optional[str] = None
        self.context_at: Optional[int] = None  # its position, when it can be passed by position
        self._seen = 0
        self.datasource_param: Optional[str] = None
        self.datasource: Optional[FieldModel] = None
        self.data_param: Optional[str] = None
        self.data_type: Optional[TypeInfo] = None
        self.returns: Optional[TypeInfo] = None
        self.spec_hints = dict(spec.hints)

    def _is_context(self, param: inspect.Parameter) -> bool:
        ann = self.hints.get(param.name, inspect.Parameter.empty)
        if ann is inspect.Parameter.empty:
            return param.name in _CONTEXT_NAMES
        return _strip(ann) is Context

    def add_param(self, param: inspect.Parameter) -> None:
        ks = Kind(self.spec.kind).spec
        index, self._seen = self._seen, self._seen + 1
        if param.kind is param.VAR_KEYWORD:
            self.col.add(f"has '**{param.name}', which eKuiper cannot fill",
                         "declare each property or argument as its own parameter")
            return
        factory = connection_marker(self.hints.get(param.name))
        if factory is not None:
            self._use_connection(param, factory)
            return
        if self._is_context(param):
            self.context_param = param.name
            if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                self.context_at = index
            return
        if Role.DATASOURCE in ks.roles and param.name == "datasource":
            self.datasource_param = param.name
            self.datasource = self._field(param)
            return
        if Role.DATA in ks.roles and not self.gen and self.data_param is None:
            if param.kind is param.KEYWORD_ONLY or param.kind is param.VAR_POSITIONAL:
                return  # reported by check_kind as a missing data parameter
            self.data_param = param.name
            self.data_type = self._type(param, default_any=True)
            return
        if param.kind is param.VAR_POSITIONAL and not ks.arguments:
            self.col.add(f"has '*{param.name}', which only SQL functions support",
                         "declare each property as its own parameter")
            return
        if ks.arguments and param.kind is param.KEYWORD_ONLY:
            self.col.add(f"has keyword-only parameter '{param.name}', which SQL cannot pass",
                         "make it a positional parameter")
            return
        if not ks.arguments and param.kind is param.POSITIONAL_ONLY:
            self.col.add(f"has positional-only parameter '{param.name}', but properties are passed by name",
                         "remove the '/' from the signature")
            return
        fm = self._field(param)
        if fm is not None:
            self.params.append(fm)

    def _type(self, param: inspect.Parameter, default_any: bool = False) -> Optional[TypeInfo]:
        ann = self.hints.get(param.name, inspect.Parameter.empty)
        if ann is inspect.Parameter.empty:
            default = param.default
            if default is inspect.Parameter.empty or default is None or default_any:
                return TypeInfo("any", display="any")
            ann = type(default)
        try:
            return data_type_info(ann) if default_any else type_info(ann)
        except Unsupported as exc:
            self.col.add(f"parameter '{param.name}': {exc}")
        except Exception as exc:
            self.col.add(f"parameter '{param.name}' has an annotation that cannot be used ({exc})",
                         f"use {_SUPPORTED}")
        return None

    def _field(self, param: inspect.Parameter) -> Optional[FieldModel]:
        t = self._type(param)
        if t is None:
            return None
        marker = _param_marker(self.hints.get(param.name))
        default = MISSING if param.default is inspect.Parameter.empty else param.default
        variadic = param.kind is param.VAR_POSITIONAL
        if t.secret and default not in (MISSING, None, ""):
            self.col.add(f"parameter '{param.name}' is secret but has a default, which export would write into the "
                         "metadata and yaml that eKuiper serves to anyone who asks",
                         "remove the default (or make it '' or None) and set the value where eKuiper keeps "
                         "settings: see docs/howto.md#secrets")
            return None
        dynamic = bool(marker and marker.dynamic)
        if dynamic and not self._dynamic_ok(param.name, t):
            return None
        if default is not MISSING:
            if default is None and not t.optional and t.kind != "any":
                t = t._replace(optional=True)
            if not self._default_ok(param.name, default, t, dynamic):
                return None
        pname = marker.name if marker and marker.name else param.name
        if not NAME_RE.fullmatch(pname):
            self.col.add(f"parameter name '{pname}' is not a valid eKuiper property name",
                         "use letters, digits, '_' and '-' only")
        if param.name != self.datasource_param and not self._datasource_clash(pname):
            self._check_reserved(pname, param.name)  # the DATASOURCE parameter is meant to get the stream's value
        hint = self.spec_hints.get(param.name) or (Text.of(marker.hint) if marker and marker.hint else None)
        return FieldModel(
            name=pname, key=param.name if pname != param.name else "", type=t, default=default,
            hint=hint or Text.of(self.doc.params.get(param.name, "")),
            label=Text.of(marker.label) if marker and marker.label else Text(pname, pname),
            variadic=variadic, dynamic=dynamic,
        )

    def _datasource_clash(self, pname: str) -> bool:
        """Whether ``pname`` is the key of a source's DATASOURCE parameter (reported as a clash, naming both)."""
        return (pname.lower() == "datasource" and "datasource" in self.names
                and Role.DATASOURCE in Kind(self.spec.kind).spec.roles)

    def _default_ok(self, name: str, default: Any, t: TypeInfo, dynamic: bool) -> bool:
        if dynamic and isinstance(default, str) and "{{" in default:  # a template evaluated per row
            from .template import Template  # only a dynamic property loads the parser

            try:
                Template(default)
            except TemplateError as exc:
                self.col.add(f"parameter '{name}' has a default template that ekdsl refuses: {exc}",
                             "fix the default")
                return False
            return True
        try:
            _types.coerce(default, t, symbol=self.col.name, name=name)
        except ConfigError:
            self.col.add(f"parameter '{name}' has default {default!r}, which is not {t.describe()}",
                         "change the default or the annotation so they agree")
            return False
        if isinstance(default, str) and t.kind in _NOT_TEXT:
            self.col.add(f"parameter '{name}' has default {default!r}, a str where {t.kind} is declared "
                         "(it would reach your code as a str)",
                         f"write it as a {t.kind}: '{name}: {t.kind} = {_typed_example(t.kind, default)}'")
            return False
        return True

    def _dynamic_ok(self, name: str, t: TypeInfo) -> bool:
        """A dynamic property: a sink's, evaluated per row and passed per call, of a type text converts to."""
        problem: Optional[Tuple[str, str]] = None
        if self.spec.kind != Kind.SINK:
            problem = ("is declared dynamic, but only a sink's properties are evaluated per row (eKuiper renders "
                       "templates in rule actions)", "annotate it Template and call .render(data) with what your "
                       "code has")
        elif self.gen:
            problem = ("is declared dynamic, but a generator sink receives its properties once, at setup",
                       "write the sink as a plain function (a @connection keeps what setup opened)")
        elif t.kind not in _DYNAMIC_KINDS:
            problem = (f"is declared dynamic, but a template gives text, which cannot become {t.describe()}",
                       "declare a str, number, bool, datetime, Literal or Enum")
        if problem is not None:
            self.col.add(f"parameter '{name}' {problem[0]}", problem[1])
        return problem is None

    def _use_connection(self, param: inspect.Parameter, factory: Callable[..., Any]) -> None:
        kind = Kind(self.spec.kind)
        name = getattr(factory, "__name__", "?")
        if kind.spec.arguments:
            self.col.add(f"parameter '{param.name}' asks for connection {name!r}, but a function's parameters are "
                         "SQL arguments, with no properties to take its settings from",
                         "open the client at module level, or do the work in a source or sink")
        elif param.default is not param.empty or param.kind in (param.VAR_POSITIONAL, param.POSITIONAL_ONLY):
            self.col.add(f"parameter '{param.name}' receives connection {name!r}, so it can have no default and "
                         "must be passable by name", f"declare it as '{param.name}: Annotated[Client, {name}]'")
        elif any(u.connection.func is factory for u in self.connections):
            self.col.add(f"asks for connection {name!r} twice", "keep one parameter: both would get the same client")
        else:
            model = build_connection(factory, kind, self.col.problems, self.docs)
            if model is not None:
                self.connections.append(ConnectionUse(param.name, model))

    def add_connection_settings(self, sig: inspect.Signature) -> None:
        """The settings of the connections used become properties, after the symbol's own; each name once."""
        taken = {p.name.lower(): f"property '{p.name}'" for p in self.params}
        python_names = set(sig.parameters)
        for use in self.connections:
            for fm in use.connection.params:
                other = taken.get(fm.name.lower()) or (f"parameter '{fm.pyname}'" if fm.pyname in python_names
                                                       else None)
                if other is not None:
                    self.col.add(f"connection {use.connection.name!r} has setting '{fm.name}', the name of {other}",
                                 "rename the parameter (Param(name=...) renames only the key eKuiper sees)")
                    continue
                taken[fm.name.lower()] = f"connection {use.connection.name!r}'s setting '{fm.name}'"
                python_names.add(fm.pyname)
                self.params.append(fm)

    def _check_reserved(self, pname: str, pyname: str) -> None:
        hit = _reserved.reserved_property(self.spec.kind, pname)
        if hit is None:
            return
        other = next((n for n in (_RENAME.get(hit.name, ""), f"{pyname}_value") if n and n.lower() not in self.taken),
                     f"{pyname}_{len(self.names)}")
        ann = self.hints.get(pyname)
        shown = _name(_strip(ann)) if ann is not None else "T"
        fix = (f"rename the key eKuiper sees with Annotated[{shown}, Param(name={other!r})], "
               "or give the parameter another name")
        if hit.name == "requireAck":
            fix = "remove it: the runtime acks every message whenever the rule action sets requireAck"
        elif hit.name == "datasource":
            fix = "name the parameter 'datasource' (without Param(name=...)) to receive the stream's DATASOURCE"
        self.col.add(f"property '{pname}' has a name eKuiper reserves ({hit.go}): {hit.effect}", fix)

    def check_kind(self, sig: inspect.Signature, is_gen: bool, is_agen: bool) -> None:
        kind = Kind(self.spec.kind)
        ret = self.hints.get("return", inspect.Parameter.empty)
        if kind.spec.generator:
            if not (is_gen or is_agen or typing.get_origin(_strip(ret)) in _ITERABLE_ORIGINS):
                self.col.add("must be a generator function",
                             "use 'yield' to emit rows (or annotate the return as Iterator[dict])")
        elif kind.spec.generator is None:
            if is_gen or is_agen:
                self.data_type = self._send_type(ret)
            elif self.data_param is None:
                self.col.add("has no data parameter",
                             "add a first parameter that receives the data, e.g. 'def "
                             f"{self.col.name}(data: dict, ...)', or make it a generator that reads 'data = yield'")
        else:
            if is_gen or is_agen:
                self.col.add("is a generator, but a SQL function returns one value per call",
                             "use 'return' instead of 'yield'")
            self.returns = self._return_type(ret)
        for problem in check_options(kind, dict(self.spec.rejected)):
            self.col.add(problem.message, problem.fix)

    def _send_type(self, ret: Any) -> TypeInfo:
        args = typing.get_args(_strip(ret)) if ret is not inspect.Parameter.empty else ()
        if len(args) >= 2:
            try:
                return data_type_info(args[1])
            except Unsupported as exc:
                self.col.add(f"generator sink receives {exc}")
        return TypeInfo("any", display="any")

    def _return_type(self, ret: Any) -> TypeInfo:
        if ret is inspect.Parameter.empty or ret is None or ret is type(None):
            return TypeInfo("any", display="any")
        try:
            return type_info(ret)
        except Unsupported:
            return TypeInfo("any", display="any")

    def conf_keys(self) -> Tuple[Tuple[str, Dict[str, Any]], ...]:
        out = []
        by_lower = {p.name.lower(): p for p in self.params}
        for key, values in self.spec.conf_keys:
            if not NAME_RE.fullmatch(key) or key == "default":
                self.col.add(f"confKey '{key}' is not a valid confKey name",
                             "use letters, digits, '_' and '-', and not 'default'")
                continue
            section: Dict[str, Any] = {}
            for prop, value in values.items():
                if prop == "connectionSelector" and self.connections and isinstance(value, str):
                    section[prop] = value  # eKuiper takes a named connection's props as the settings
                    continue
                fm = by_lower.get(str(prop).lower())
                if fm is None:
                    self.col.add(f"confKey '{key}' sets unknown property '{prop}'",
                                 f"use one of: {', '.join(p.name for p in self.params) or '(none)'}")
                    continue
                if fm.type.secret:
                    self.col.add(f"confKey '{key}' sets the secret property '{fm.name}', which export would write into "
                                 "the yaml", "remove it from conf_keys: see docs/howto.md#secrets")
                    continue
                try:
                    _types.coerce(value, fm.type, symbol=self.col.name, name=fm.name)
                except ConfigError:
                    self.col.add(f"confKey '{key}' sets '{fm.name}' to {value!r}, which is not "
                                 f"{fm.type.describe()}", "fix the value in conf_keys")
                    continue
                section[fm.name] = value
            out.append((key, section))
        return tuple(out)

