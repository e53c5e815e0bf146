"""Shared connections, declared: a ``@connection`` factory → :class:`~ekdsl.model.ConnectionModel`.

A source or sink parameter annotated ``Annotated[Client, factory]`` receives the factory's client; the
factory's parameters become properties of that symbol, checked as the symbol's own are. The plugin process
shares the clients (:mod:`ekdsl.runtime.connections`).
"""

from __future__ import annotations

import inspect
import typing
from typing import Any, Callable, List, Optional

from .decorators import SymbolSpec, get_connection_spec
from .errors import Problem
from .kinds import Kind
from .model import ConnectionModel, FieldModel, Text

__all__ = ["build_connection", "connection_marker"]


def connection_marker(hint: Any) -> Optional[Callable[..., Any]]:
    """The ``@connection`` factory named in an ``Annotated`` hint, or ``None``."""
    if typing.get_origin(hint) is not typing.Annotated:
        return None
    for meta in typing.get_args(hint)[1:]:
        if callable(meta) and get_connection_spec(meta) is not None:
            return meta  # type: ignore[no-any-return]
    return None


def build_connection(factory: Callable[..., Any], kind: Kind, problems: List[Problem],
                     docs: bool = True) -> Optional[ConnectionModel]:
    """Introspect a factory for a symbol of ``kind`` (the kind decides which property names eKuiper keeps);
    append problems, located at the factory, and return ``None`` when it cannot be used."""
    from . import introspect as _in  # introspect imports this module: take its helpers when first needed

    spec = get_connection_spec(factory)
    assert spec is not None
    name = str(spec.name or getattr(factory, "__name__", "connection"))
    col = _in._Collector("connection", name, factory, problems)
    before = len(problems)
    if inspect.isclass(factory):
        col.add(f"is a class ({factory.__name__})", "decorate a function that yields the client")
        return None
    target = inspect.unwrap(factory)
    if inspect.isasyncgenfunction(target) or inspect.iscoroutinefunction(target):
        col.add("is async, but its client is shared by instances that each run their own thread and event loop",
                "write a plain 'def' that yields a client those threads can share")
        return None
    readable = _in._readable(factory, col)
    if readable is None:
        return None
    sig, hints = readable
    doc = _in._docstring(target) if docs else _in._NO_DOC
    shape = _in._SymbolShape(SymbolSpec(kind=kind, name=name), col, hints, doc, False)
    params: List[FieldModel] = []
    for param in sig.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            col.add(f"has '{param}', but its settings are properties, passed by name",
                    "declare each setting as a parameter of its own")
            continue
        if shape._is_context(param):
            col.add(f"takes a Context ('{param.name}'), but one client serves many instances",
                    "remove it; log with logging.getLogger(...)")
            continue
        fm = shape._field(param)
        if fm is None:
            continue
        if fm.dynamic:
            col.add(f"setting '{fm.name}' is declared dynamic, but a connection's settings are fixed while it is open",
                    "remove dynamic=True")
            continue
        params.append(fm)
    if len(problems) > before:
        return None
    return ConnectionModel(
        name=name, func=factory, params=tuple(params), is_generator=inspect.isgeneratorfunction(target),
        open_timeout=spec.open_timeout, file=col.file, line=col.line,
        description=spec.description or Text.of(doc.summary),
    )
