"""Shared connections, declared: a ``@connection`` factory → :class:`~ekdsl.model.ConnectionModel`.

A source or sink parameter annotated ``Annotated[Client, factory]`` receives the factory's client; the
factory's parameters become properties of that symbol, checked as the symbol's own are. The plugin process
shares the clients (:mod:`ekdsl.runtime.connections`).
"""

from __future__ import annotations

import inspect
import typing
from typing import Any, Callable, List, Optional

from .callables import NO_DOC, Collector, docstring, is_context, readable
from .decorators import SymbolSpec, get_connection_spec
from .errors import Problem
from .kinds import Kind
from .model import ConnectionModel, ConnectionUse, FieldModel, Text
from .properties import PropertyReader

__all__ = ["ConnectionUses", "build_connection", "connection_marker"]


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
    spec = get_connection_spec(factory)
    assert spec is not None
    name = str(spec.name or getattr(factory, "__name__", "connection"))
    col = Collector("connection", name, factory, problems)
    before = len(problems)
    if inspect.isclass(factory):
        col.add(f"is a class ({factory.__name__})", "decorate a function that yields the client")
        return None
    target = inspect.unwrap(factory)
    if inspect.isasyncgenfunction(target) or inspect.iscoroutinefunction(target):
        col.add("is async, but its client is shared by instances that each run their own thread and event loop",
                "write a plain 'def' that yields a client those threads can share")
        return None
    found = readable(factory, col)
    if found is None:
        return None
    sig, hints = found
    doc = docstring(target) if docs else NO_DOC
    props = PropertyReader(SymbolSpec(kind=kind, name=name), col, hints, doc, False)
    params: List[FieldModel] = []
    for param in sig.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            col.add(f"has '{param}', but its settings are properties, passed by name",
                    "declare each setting as a parameter of its own")
            continue
        if is_context(param, hints):
            col.add(f"takes a Context ('{param.name}'), but one client serves many instances",
                    "remove it; log with logging.getLogger(...)")
            continue
        fm = props.field(param)
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


class ConnectionUses:
    """The connections one symbol's parameters ask for; their settings become its properties."""

    def __init__(self, kind: Kind, col: Collector, docs: bool = True) -> None:
        self.kind, self.col, self.docs = kind, col, docs
        self.uses: List[ConnectionUse] = []

    def add(self, param: inspect.Parameter, factory: Callable[..., Any]) -> None:
        """``param`` receives the client of ``factory``."""
        name = getattr(factory, "__name__", "?")
        if self.kind.spec.arguments:
            self.col.add(f"parameter '{param.name}' asks for connection {name!r}, but a function's parameters are "
                         "SQL arguments, with no properties to take its settings from",
                         "open the client at module level, or do the work in a source or sink")
        elif param.default is not param.empty or param.kind in (param.VAR_POSITIONAL, param.POSITIONAL_ONLY):
            self.col.add(f"parameter '{param.name}' receives connection {name!r}, so it can have no default and "
                         "must be passable by name", f"declare it as '{param.name}: Annotated[Client, {name}]'")
        elif any(u.connection.func is factory for u in self.uses):
            self.col.add(f"asks for connection {name!r} twice", "keep one parameter: both would get the same client")
        else:
            model = build_connection(factory, self.kind, self.col.problems, self.docs)
            if model is not None:
                self.uses.append(ConnectionUse(param.name, model))

    def add_settings(self, params: List[FieldModel], sig: inspect.Signature) -> None:
        """Append the settings of the connections used to ``params``, after the symbol's own; each name once."""
        taken = {p.name.lower(): f"property '{p.name}'" for p in params}
        python_names = set(sig.parameters)
        for use in self.uses:
            for fm in use.connection.params:
                other = taken.get(fm.name.lower()) or (f"parameter '{fm.pyname}'" if fm.pyname in python_names
                                                       else None)
                if other is not None:
                    self.col.add(f"connection {use.connection.name!r} has setting '{fm.name}', the name of {other}",
                                 "rename the parameter (Param(name=...) renames only the key eKuiper sees)")
                    continue
                taken[fm.name.lower()] = f"connection {use.connection.name!r}'s setting '{fm.name}'"
                python_names.add(fm.pyname)
                params.append(fm)
