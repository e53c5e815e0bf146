"""Calling one ``@function`` from arguments as a host sends them: bind, coerce, call, check the result.

Pure (no sockets, no wire format): eKuiper's function channel (:mod:`ekdsl.runtime.function`) and every
external-service protocol (:mod:`ekdsl.service`) are adapters over :class:`Invoker`.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from .codec import find_unencodable, json_safe
from .context import Context
from .errors import EkdslError
from .model import MISSING, FieldModel, SymbolModel, TypeInfo
from .types import coerce

__all__ = ["ArityError", "Invoker", "ResultError", "literal_text"]


class ResultError(EkdslError):
    """A function returned a value that cannot be sent to eKuiper: ``what`` was found at ``path``."""

    def __init__(self, symbol: str, path: str, what: str) -> None:
        self.symbol, self.path, self.what = symbol, path, what
        super().__init__(f"{symbol}() returned {what} at {path}, which JSON cannot hold: return str, numbers, "
                         "bools, None, and lists and dicts of them")


class ArityError(EkdslError):
    """A call gave ``got`` arguments to a function taking ``want`` (e.g. ``"2"``, ``"1 to 3"``)."""

    def __init__(self, symbol: str, want: str, got: int, plural: str) -> None:
        self.symbol, self.want, self.got = symbol, want, got
        super().__init__(f"{symbol}() takes {want} argument{plural}, got {got}")


def _column(t: TypeInfo) -> bool:
    """Whether an aggregate's parameter takes the whole column (a list, or ``Any``) rather than one value."""
    return t.kind in ("list", "any")


# the kinds whose coercion returns a value of exactly this class unchanged
_UNCHANGED = {"str": str, "int": int, "float": float, "bool": bool, "list": list}

Plan = Tuple[Tuple[Tuple[int, type], ...], int]


def _first(column: Any) -> Any:
    """The value an aggregate's scalar parameter takes from its column: the first that is not null."""
    if not isinstance(column, list):
        return column  # evaluated outside a group, eKuiper sends the value itself
    return next((v for v in column if v is not None), None)


def literal_text(value: Any, t: TypeInfo, literals: Set[str]) -> Any:
    """A ``bytes`` argument (or a ``list[bytes]`` item) equal to a string literal of the SQL is that text."""
    if t.kind == "bytes" and isinstance(value, str) and value in literals:
        return value.encode("utf-8")
    if t.kind == "list" and t.item is not None and t.item.kind == "bytes" and isinstance(value, list):
        return [v.encode("utf-8") if isinstance(v, str) and v in literals else v for v in value]
    return value


class Invoker:
    """Bind a function's arguments to its signature and call it; thread-safe (async functions get one event
    loop per calling thread)."""

    def __init__(self, sym: SymbolModel) -> None:
        self.sym = sym
        self.arity = self._arity = sym.arity
        self._plain = all(p.type.kind == "any" and p.default is MISSING and p.type.constraints is None
                          for p in sym.params)
        fixed = [p for p in sym.params if not p.variadic]
        # per count of arguments given: how many left-out trailing Optional arguments are passed as None
        self._pads = tuple(max((i + 1 for i, p in enumerate(fixed[n:]) if p.default is MISSING), default=0)
                           for n in range(len(fixed) + 1))
        self._direct = not sym.context_param and not sym.is_async
        self.direct: Optional[Callable[..., Any]] = sym.func if self._direct else None
        """The function itself when :meth:`call` only calls it (no context, not async)."""
        self.plans: Dict[int, Plan] = {n: plan for n in range(len(fixed) + 1) if (plan := self._plan(n)) is not None}
        """Per count of arguments, how :meth:`bind` binds them when it only passes them on: the ``(position,
        class)`` pairs to look at (a value of exactly that class is passed unchanged) and how many ``None`` follow.
        A count not here, or a value of another class, takes :meth:`bind`."""
        self._local = threading.local()
        self._loops: List[Any] = []
        self._lock = threading.Lock()

    def arity_error(self, n: int) -> Optional[ArityError]:
        """The error for a call with ``n`` arguments, or ``None`` when the count fits."""
        low, high = self._arity
        if n < low or (high is not None and n > high):
            if high is None:
                want = f"at least {low}"
            elif low == high:
                want = str(low)
            else:
                want = f"{low} to {high}"
            plural = "" if (high if high is not None else low) == 1 else "s"
            return ArityError(self.sym.name, want, n, plural)
        return None

    def param(self, i: int) -> FieldModel:
        """The parameter that takes argument ``i`` (the variadic one past the end)."""
        params = self.sym.params
        return params[i] if i < len(params) else params[-1]

    def _plan(self, n: int) -> Optional[Plan]:
        if self.arity_error(n) is not None:
            return None
        checks = []
        for i, p in enumerate(self.sym.params[:n]):
            t = p.type
            if t.kind == "any" and p.default is MISSING and t.constraints is None:
                continue  # anything, None included, is passed as is
            cls = _UNCHANGED.get(t.kind)
            if (cls is None or t.constraints is not None or (t.item is not None and t.item.kind != "any")
                    or (self.sym.aggregate and cls is not list)):
                return None  # converted, checked against constraints, or a column's first value
            checks.append((i, cls))
        return tuple(checks), self._missing_optional(n)

    def bind(self, raw: Sequence[Any], literals: Optional[Dict[int, Set[str]]] = None) -> List[Any]:
        """Coerce the positional arguments to the annotations: an aggregate's scalar parameter takes its column's
        first non-null value, null takes the default. Raises :class:`ArityError` or ``ConfigError``."""
        err = self.arity_error(len(raw))
        if err:
            raise err
        args = list(raw) if self._plain else [self._arg(i, v, literals.get(i) if literals else None)
                                              for i, v in enumerate(raw)]
        pad = self._missing_optional(len(args))
        return args + [None] * pad if pad else args

    def _missing_optional(self, n: int) -> int:
        """How many left-out trailing ``Optional`` arguments without a default must be passed as ``None``."""
        return self._pads[n] if n < len(self._pads) else 0

    def _arg(self, i: int, value: Any, literals: Optional[Set[str]]) -> Any:
        p = self.param(i)
        if self.sym.aggregate:
            if not _column(p.type):
                value = _first(value)
            elif p.type.kind == "list" and value is not None and not isinstance(value, list):
                value = [value]  # evaluated outside a group: a group of one row
        if value is None and p.default is not MISSING:
            return p.default
        if literals:
            value = literal_text(value, p.type, literals)
        return coerce(value, p.type, symbol=self.sym.name, name=p.name, b64=True, role="argument")

    def call(self, args: Sequence[Any], context: Optional[Context] = None) -> Any:
        """Call the function with bound ``args`` (awaiting it when async); user exceptions propagate."""
        if self._direct:
            return self.sym.func(*args)
        kwargs: Dict[str, Any] = {}
        if self.sym.context_param:
            at = self.sym.context_at
            if at is not None and len(args) >= at:  # declared before arguments: its place is taken by position
                args = [*args[:at], context, *args[at:]]
            else:
                kwargs[self.sym.context_param] = context
        result = self.sym.func(*args, **kwargs)
        if self.sym.is_async:
            result = self._loop().run_until_complete(result)
        return result

    def invoke(self, raw: Sequence[Any], context: Optional[Context] = None) -> Any:
        """:meth:`bind` then :meth:`call`, and return the result made JSON-safe (see :meth:`jsonable`)."""
        return self.jsonable(self.call(self.bind(raw), context))

    def jsonable(self, result: Any) -> Any:
        """``result`` as plain JSON values (bytes → base64, datetimes → text, ...), or :class:`ResultError`
        naming the path of the first value JSON cannot hold."""
        try:
            safe = json_safe(result)
        except BaseException:
            raise self.result_error(result) from None
        if find_unencodable(safe, "result") is not None:
            raise self.result_error(safe) from None
        return safe

    def result_error(self, result: Any) -> ResultError:
        """The :class:`ResultError` for a result that could not be encoded."""
        found = find_unencodable(result, "result")
        where, what = found if found else ("result", "a value that could not be encoded")
        return ResultError(self.sym.name, where, what)

    def _loop(self) -> Any:
        loop = getattr(self._local, "loop", None)
        if loop is None:
            import asyncio  # loaded lazily: most plugins have no async function

            loop = asyncio.new_event_loop()
            self._local.loop = loop
            with self._lock:
                self._loops.append(loop)
        return loop

    def close(self) -> None:
        """Close the event loops made for async functions."""
        with self._lock:
            loops, self._loops = self._loops, []
        for loop in loops:
            if not loop.is_running():
                loop.close()
