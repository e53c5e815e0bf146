"""The servable ``@function``\\ s of one plugin, called in the current thread: bind, call, shape the reply.

Protocol-neutral and free of I/O: :mod:`.calls` adds deadlines and executors, each protocol adapter turns an
:class:`Outcome` into its own reply.
"""

from __future__ import annotations

import base64
import logging
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

from ..context import Context
from ..errors import EkdslError
from ..invoke import Invoker
from ..model import PluginModel
from ..runtime.failure import describe
from .schema import NotServable, Shape, shapes

__all__ = ["BAD_REQUEST", "DEADLINE", "FAILED", "INT64_MAX", "INT64_MIN", "NOT_FOUND", "OK", "UNAVAILABLE", "Functions",
           "Outcome", "PastInt64"]

log = logging.getLogger("ekdsl.service")

OK = "ok"
BAD_REQUEST = "bad_request"  # the arguments were at fault: HTTP 400, gRPC INVALID_ARGUMENT
NOT_FOUND = "not_found"  # no such function: HTTP 404, gRPC UNIMPLEMENTED
FAILED = "failed"  # the function raised or returned what its reply cannot carry: HTTP 500, gRPC UNKNOWN
DEADLINE = "deadline"  # not answered within the call's deadline: HTTP 504, gRPC DEADLINE_EXCEEDED
UNAVAILABLE = "unavailable"  # the service is stopping or overloaded: HTTP 503, gRPC UNAVAILABLE


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Outcome(NamedTuple):
    """A call's reply value as the schema says (``status`` ``ok``), or an error text with its status."""

    ok: bool
    value: Any
    status: str = OK

    @classmethod
    def error(cls, status: str, text: str) -> Outcome:
        return cls(False, text, status)


class NullResult(EkdslError):
    """A function with a scalar result returned ``None``, which a protobuf wrapper cannot carry."""


class PastInt64(EkdslError):
    """A function returned an integer past int64 where its reply says ``int64``: eKuiper would wrap it."""


class Functions:
    """Every servable function of one plugin, called in the calling thread (thread-safe)."""

    def __init__(self, model: PluginModel) -> None:
        served, skipped = shapes(model)
        self.model, self.name = model, model.name
        self.skipped: List[NotServable] = skipped
        self.shapes: Dict[str, Shape] = {s.method: s for s in served}
        self._invokers = {s.method: Invoker(s.symbol) for s in served}
        self._contexts = {s.method: Context(plugin=model.name, symbol=s.symbol.name, rule_id="service")
                          for s in served}

    def shape(self, method: str) -> Optional[Shape]:
        return self.shapes.get(method)

    def is_async(self, method: str) -> bool:
        return method in self.shapes and self.shapes[method].symbol.is_async

    def unknown(self, method: str) -> Outcome:
        return Outcome.error(NOT_FOUND, f"no function {method!r}: this service has "
                                        f"{', '.join(sorted(self.shapes)) or 'none'}")

    def bind(self, method: str, args: Sequence[Any]) -> Any:
        """The coerced arguments, or an :class:`Outcome` saying why they do not fit."""
        invoker = self._invokers.get(method)
        if invoker is None:
            return self.unknown(method)
        try:
            return invoker.bind(args)
        except EkdslError as exc:
            return Outcome.error(BAD_REQUEST, str(exc))

    def run(self, method: str, args: Sequence[Any]) -> Outcome:
        """Bind, call and shape the reply in this thread (awaiting an async function on this thread's loop);
        never raises, whatever the user code does."""
        bound = self.bind(method, args)
        if isinstance(bound, Outcome):
            return bound
        invoker = self._invokers[method]
        try:
            return self.reply(method, invoker.call(bound, self._contexts[method]))
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the call fails, the service serves on
            return self.failure(method, exc)

    def start(self, method: str, bound: Sequence[Any]) -> Any:
        """Call a function with bound arguments and return what it returns (a coroutine for an async one)."""
        kwargs: Dict[str, Any] = {}
        sym = self.shapes[method].symbol
        if sym.context_param:
            kwargs[sym.context_param] = self._contexts[method]
        return sym.func(*bound, **kwargs)

    def reply(self, method: str, result: Any) -> Outcome:
        """A function's return value as its reply says, or the error why it cannot be sent."""
        try:
            value = self._invokers[method].jsonable(result)
            return Outcome(True, _shaped(self.shapes[method], value))
        except EkdslError as exc:
            log.error("function %s: %s", method, exc)
            return Outcome.error(FAILED, str(exc))

    def failure(self, method: str, exc: BaseException) -> Outcome:
        error = describe(exc)
        log.error("function %s failed: %s", method, error, exc_info=exc)
        return Outcome.error(FAILED, error)

    def close(self) -> None:
        for invoker in self._invokers.values():
            invoker.close()


def _shaped(shape: Shape, value: Any) -> Any:
    if shape.reply == "wrapper":
        if value is None:
            raise NullResult(f"{shape.method}() returned None: its reply, a {shape.reply_type}, cannot be null")
        if shape.reply_scalar == "bytes" and isinstance(value, str):
            value = base64.b64decode(value)  # made base64 text by json_safe: the wrapper carries the bytes
    elif shape.reply == "result":
        value = {"result": value}
    # eKuiper casts a reply's integers to int64 unchecked (pkg/cast/cast.go ToInt64): past it, they wrap
    for where, number in shape.reply_ints(value):
        if not INT64_MIN <= number <= INT64_MAX:
            raise PastInt64(f"{shape.method}() returned {number}{f' in {where}' if where else ''}, past int64 "
                            "(eKuiper's bigint): return a float or a str for numbers this large")
    return value
