"""Signatures, type hints and docstrings → the neutral model.

This module and the ones it uses (:mod:`ekdsl.callables`, :mod:`ekdsl.hints`, :mod:`ekdsl.properties`,
:mod:`ekdsl.connections`) are the only ones that call :mod:`inspect` and ``get_type_hints``.
They collect every problem they find instead of stopping at the first one.
"""

from __future__ import annotations

import inspect
import re
import typing
from typing import Any, Callable, List, Optional, Tuple

from . import reserved as _reserved
from .callables import NO_DOC, Collector, describe_location, docstring, is_context, readable
from .connections import ConnectionUses, connection_marker
from .decorators import SymbolSpec
from .errors import Problem
from .hints import ITERABLE_ORIGINS, Unsupported, data_type_info, strip, type_info
from .keys import key_clashes
from .kinds import Kind, Role, check_options
from .model import FieldModel, SymbolModel, Text, TypeInfo
from .properties import NAME_RE, PropertyReader, conf_keys

__all__ = ["NAME_RE", "Unsupported", "build_symbol", "data_type_info", "describe_location", "type_info"]

_ANY = TypeInfo("any", display="any")


def build_symbol(func: Callable[..., Any], spec: SymbolSpec, problems: List[Problem],
                 docs: bool = True) -> Optional[SymbolModel]:
    """Introspect one decorated callable; append problems and return ``None`` when invalid.

    ``docs=False`` skips docstrings (hints and descriptions), which only the metadata needs.
    """
    name = str(spec.name or getattr(func, "__name__", ""))
    col = Collector(spec.kind, name, func, problems)
    before = len(problems)
    _check_name(spec, name, col)
    if inspect.isclass(func):
        col.add(f"is a class ({func.__name__}); ekdsl symbols are functions, not SDK-style classes",
                "rewrite it as a decorated function: see docs/migration.md (official Python SDK to ekdsl)")
        return None
    found = readable(func, col)
    if found is None:
        return None
    sig, hints = found
    target = inspect.unwrap(func)
    is_gen, is_agen = inspect.isgeneratorfunction(target), inspect.isasyncgenfunction(target)
    doc = docstring(target) if docs else NO_DOC
    props = PropertyReader(spec, col, hints, doc, is_gen or is_agen, tuple(sig.parameters))
    shape, returns = _read_shape(sig, props, docs)
    if len(problems) > before:
        return None
    return SymbolModel(
        kind=spec.kind, name=name, func=func,
        description=spec.description or Text.of(doc.summary),
        label=spec.label or Text(name, name),
        params=tuple(shape.params), file=col.file, line=col.line,
        context_param=shape.context_param, context_at=shape.context_at, datasource_param=shape.datasource_param,
        datasource=shape.datasource, data_param=shape.data_param, data_type=shape.data_type,
        returns=returns, returns_hint=Text.of(doc.returns),
        is_async=is_agen or inspect.iscoroutinefunction(target), is_generator=is_gen or is_agen,
        aggregate=spec.aggregate,
        conf_keys=conf_keys(spec, shape.params, bool(shape.connections.uses), col),
        example=spec.example or _example(spec.kind, name, shape.params),
        require_ack=spec.require_ack, connections=tuple(shape.connections.uses),
    )


def _read_shape(sig: inspect.Signature, props: PropertyReader, docs: bool) -> Tuple[_SymbolShape, Optional[TypeInfo]]:
    """Each parameter in its role, the settings of the connections used, the kind's shape checked (and what a SQL
    function returns), then keys that clash."""
    spec, col = props.spec, props.col
    shape = _SymbolShape(spec, col, props, ConnectionUses(Kind(spec.kind), col, docs))
    for param in sig.parameters.values():
        shape.add_param(param)
    shape.connections.add_settings(shape.params, sig)
    returns = _check_kind(shape, props.hints.get("return", inspect.Parameter.empty), props.gen)
    if not Kind(spec.kind).spec.arguments:
        for message, fix in key_clashes(shape.params, shape.datasource):
            col.add(message, fix)
    return shape, returns


def _check_name(spec: SymbolSpec, name: str, col: Collector) -> None:
    """A name eKuiper refuses, or one of its built-ins (which it looks up first)."""
    if not NAME_RE.fullmatch(name):
        col.add("has a name eKuiper rejects (allowed: letters, digits, '_' and '-')",
                f"pass a valid name, e.g. @{spec.kind}(name={re.sub(r'[^a-zA-Z0-9_-]', '_', name)!r})")
    builtin = _reserved.builtin_symbol(spec.kind, name)
    if builtin is not None:
        shown = name.lower() if spec.kind == Kind.FUNCTION else name
        col.add(f"has the name of eKuiper's built-in {spec.kind} '{shown}' ({builtin}); eKuiper looks built-ins "
                f"up first, so this {spec.kind} is never reached",
                f"pass another name, e.g. @{spec.kind}(name='my_{shown}')")


def _example(kind: Kind, name: str, params: List[FieldModel]) -> str:
    if not kind.spec.arguments:
        return ""
    args = [f"{p.name}..." if p.variadic else p.name for p in params]
    return f"{name}({', '.join(args)})"


class _SymbolShape:
    """Gives each parameter its role: a connection's client, the Context, the stream's DATASOURCE, the data,
    or a property (an argument, for a SQL function)."""

    def __init__(self, spec: SymbolSpec, col: Collector, props: PropertyReader, connections: ConnectionUses):
        self.spec, self.col, self.props, self.connections = spec, col, props, connections
        self.params: List[FieldModel] = []
        self.context_param: Optional[str] = None
        self.context_at: Optional[int] = None  # its position, when it can be passed by position
        self._seen = 0
        self.datasource_param: Optional[str] = None
        self.datasource: Optional[FieldModel] = None
        self.data_param: Optional[str] = None
        self.data_type: Optional[TypeInfo] = None

    def add_param(self, param: inspect.Parameter) -> None:
        ks = Kind(self.spec.kind).spec
        index, self._seen = self._seen, self._seen + 1
        if param.kind is param.VAR_KEYWORD:
            self.col.add(f"has '**{param.name}', which eKuiper cannot fill",
                         "declare each property or argument as its own parameter")
            return
        factory = connection_marker(self.props.hints.get(param.name))
        if factory is not None:
            self.connections.add(param, factory)
        elif is_context(param, self.props.hints):
            self.context_param = param.name
            if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                self.context_at = index
        elif Role.DATASOURCE in ks.roles and param.name == "datasource":
            self.datasource_param = param.name
            self.datasource = self.props.field(param, datasource=True)
        elif Role.DATA in ks.roles and not self.props.gen and self.data_param is None:
            if param.kind is not param.KEYWORD_ONLY and param.kind is not param.VAR_POSITIONAL:
                self.data_param = param.name  # else reported by _check_kind as a missing data parameter
                self.data_type = self.props.type_of(param, default_any=True)
        else:
            self._add_property(param, ks.arguments)

    def _add_property(self, param: inspect.Parameter, arguments: bool) -> None:
        """A property, passed by name; or for a SQL function, an argument, passed by position."""
        if param.kind is param.VAR_POSITIONAL and not arguments:
            self.col.add(f"has '*{param.name}', which only SQL functions support",
                         "declare each property as its own parameter")
        elif arguments and param.kind is param.KEYWORD_ONLY:
            self.col.add(f"has keyword-only parameter '{param.name}', which SQL cannot pass",
                         "make it a positional parameter")
        elif not arguments and param.kind is param.POSITIONAL_ONLY:
            self.col.add(f"has positional-only parameter '{param.name}', but properties are passed by name",
                         "remove the '/' from the signature")
        else:
            fm = self.props.field(param)
            if fm is not None:
                self.params.append(fm)


def _check_kind(shape: _SymbolShape, ret: Any, gen: bool) -> Optional[TypeInfo]:
    """Whether the callable has its kind's shape (a generator or not, a data parameter) and only the kind's
    options; a generator sink's data type (set on ``shape``); what a SQL function returns."""
    kind, col = Kind(shape.spec.kind), shape.col
    returns: Optional[TypeInfo] = None
    if kind.spec.generator:
        if not (gen or typing.get_origin(strip(ret)) in ITERABLE_ORIGINS):
            col.add("must be a generator function",
                    "use 'yield' to emit rows (or annotate the return as Iterator[dict])")
    elif kind.spec.generator is None:
        if gen:
            shape.data_type = _send_type(ret, col)
        elif shape.data_param is None:
            col.add("has no data parameter",
                    "add a first parameter that receives the data, e.g. 'def "
                    f"{col.name}(data: dict, ...)', or make it a generator that reads 'data = yield'")
    else:
        if gen:
            col.add("is a generator, but a SQL function returns one value per call",
                    "use 'return' instead of 'yield'")
        returns = _return_type(ret)
    for problem in check_options(kind, dict(shape.spec.rejected)):
        col.add(problem.message, problem.fix)
    return returns


def _send_type(ret: Any, col: Collector) -> TypeInfo:
    """What a generator sink receives: the send type of its ``Generator[..., T, ...]`` annotation."""
    args = typing.get_args(strip(ret)) if ret is not inspect.Parameter.empty else ()
    if len(args) >= 2:
        try:
            return data_type_info(args[1])
        except Unsupported as exc:
            col.add(f"generator sink receives {exc}")
    return _ANY


def _return_type(ret: Any) -> TypeInfo:
    if ret is inspect.Parameter.empty or ret is None or ret is type(None):
        return _ANY
    try:
        return type_info(ret)
    except Unsupported:
        return _ANY
