"""A decorated callable as introspection reads it: where it is, its signature and resolved hints, its
docstring, and the problems found in it, each located at it."""

from __future__ import annotations

import inspect
import os
import typing
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Optional, Tuple

from .context import Context
from .errors import Problem
from .hints import strip

__all__ = ["NO_DOC", "Collector", "describe_location", "docstring", "is_context", "readable"]

_CONTEXT_NAMES = ("ctx", "context")


def describe_location(func: Callable[..., Any]) -> Tuple[str, int]:
    """``(file name, first line)`` of a callable, for messages."""
    target = inspect.unwrap(func)
    code = getattr(target, "__code__", None)
    if code is None:
        return "", 0
    return os.path.basename(code.co_filename), code.co_firstlineno


class Collector:
    """Accumulates problems for one symbol."""

    def __init__(self, kind: str, name: str, func: Callable[..., Any], problems: List[Problem]):
        self.kind, self.name, self.problems = kind, name, problems
        self.file, self.line = describe_location(func)

    def add(self, message: str, fix: str = "") -> None:
        self.problems.append(Problem(self.kind, self.name, self.file, self.line, message, fix))


def _hints(func: Callable[..., Any], col: Collector) -> Optional[Dict[str, Any]]:
    try:
        return typing.get_type_hints(inspect.unwrap(func), include_extras=True)
    except Exception as exc:  # NameError for unresolvable forward references, TypeError for bad ones
        col.add(f"has an annotation that cannot be resolved ({exc})",
                "define or import every name used in annotations at module level")
        return None


def readable(func: Callable[..., Any], col: Collector) -> Optional[Tuple[inspect.Signature, Dict[str, Any]]]:
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


NO_DOC = _NoDoc()


def docstring(target: Any) -> Any:
    from .docstrings import parse_docstring  # only metadata needs texts; the plugin process skips this

    return parse_docstring(getattr(target, "__doc__", None))


def is_context(param: inspect.Parameter, hints: Dict[str, Any]) -> bool:
    """Whether ``param`` receives the :class:`ekdsl.Context`: by its annotation, or unannotated by its name."""
    ann = hints.get(param.name, inspect.Parameter.empty)
    if ann is inspect.Parameter.empty:
        return param.name in _CONTEXT_NAMES
    return strip(ann) is Context
