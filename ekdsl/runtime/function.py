"""SQL functions: one REQ socket per function, answering Validate, IsAggregate and Exec."""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Optional, Set

from ..codec import find_unencodable
from ..context import Context
from ..errors import ConfigError, EkdslError, ProtocolError, TransportError
from ..model import MISSING, SymbolModel, TypeInfo
from ..protocol import decode_func_request, encode_func_reply, parse_func_meta
from ..transport import Closed, Socket
from ..types import coerce
from .answer import answer_loop
from .failure import describe

__all__ = ["FunctionHandler", "FunctionService"]

RECV_SLICE = 1.0
TEXT_LITERALS = 256  # string literals remembered per argument position (see _literal_text)


class ResultError(EkdslError):
    """A function returned a value that cannot be sent to eKuiper: ``what`` was found at ``path``."""

    def __init__(self, symbol: str, path: str, what: str) -> None:
        self.symbol, self.path, self.what = symbol, path, what
        super().__init__(f"{symbol}() returned {what} at {path}, which JSON cannot hold: return str, numbers, "
                         "bools, None, and lists and dicts of them")


def _column(t: TypeInfo) -> bool:
    """Whether an aggregate's parameter takes the whole column (a list, or ``Any``) rather than one value."""
    return t.kind in ("list", "any")


def _first(column: Any) -> Any:
    """The value an aggregate's scalar parameter takes from its column: the first that is not null."""
    if not isinstance(column, list):
        return column  # evaluated outside a group, eKuiper sends the value itself
    return next((v for v in column if v is not None), None)


class FunctionHandler:
    """Pure request → reply logic for one function (no sockets)."""

    def __init__(self, plugin: str, sym: SymbolModel, logger: logging.Logger) -> None:
        self.plugin, self.sym, self.log = plugin, sym, logger
        self.calls = 0
        self._arity = sym.arity
        self._plain = all(p.type.kind == "any" and p.default is MISSING for p in sym.params)
        self._contexts: Dict[str, Context] = {}
        self._literals: Dict[int, Set[str]] = {}  # string literals seen by Validate, per bytes argument
        self._loop: Any = None  # an asyncio loop, for async functions only (asyncio loads lazily)

    def handle(self, payload: bytes) -> bytes:
        """Answer one request; never raises, whatever the user code raises or returns."""
        try:
            req = decode_func_request(payload)
            if req.func == "Exec":
                return self._exec(req.arg)
            if req.func == "Validate":
                return self._validate(req.arg)
            if req.func == "IsAggregate":
                return encode_func_reply(True, self.sym.aggregate)
            return encode_func_reply(False, f"invalid func {req.func!r}: expected Validate, IsAggregate or Exec")
        except EkdslError as exc:
            self.log.error("function %s: %s", self.sym.name, exc)
            return encode_func_reply(False, str(exc))
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the call fails, the function serves on
            error = describe(exc)
            self.log.exception("function %s failed: %s", self.sym.name, error)
            return encode_func_reply(False, error)

    def _arity_error(self, n: int) -> Optional[str]:
        low, high = self._arity
        if n < low or (high is not None and n > high):
            if high is None:
                want = f"at least {low}"
            elif low == high:
                want = str(low)
            else:
                want = f"{low} to {high}"
            plural = "" if (high if high is not None else low) == 1 else "s"
            return f"{self.sym.name}() takes {want} argument{plural}, got {n}"
        return None

    def _validate(self, arg: Any) -> bytes:
        """Validate gets the SQL's argument nodes (aggregates too): check the count and each literal."""
        nodes = arg if isinstance(arg, list) else []
        err = self._arity_error(len(nodes))
        if err:
            return encode_func_reply(False, err)
        for i, node in enumerate(nodes):
            if isinstance(node, dict) and set(node) == {"Val"}:  # a literal in the SQL
                p = self._param(i)
                t = p.type
                if self.sym.aggregate and t.kind == "list" and not isinstance(node["Val"], list):
                    # eKuiper repeats a literal once per row: check it against the item type
                    t = t.item if t.item is not None else t
                if t.kind == "bytes" and isinstance(node["Val"], str):
                    self._remember_literal(i, node["Val"])
                try:
                    coerce(node["Val"], t, symbol=self.sym.name, name=p.name, b64=True)
                except ConfigError as exc:
                    return encode_func_reply(False, str(exc).replace("property", "argument", 1))
        return encode_func_reply(True, "")

    def _remember_literal(self, i: int, text: str) -> None:
        """A string literal reaches Exec as plain text, never as base64: remember it for this position."""
        seen = self._literals.setdefault(i, set())
        if len(seen) >= TEXT_LITERALS:
            seen.clear()
        seen.add(text)

    def _param(self, i: int) -> Any:
        params = self.sym.params
        return params[i] if i < len(params) else params[-1]

    def _exec(self, arg: Any) -> bytes:
        if not isinstance(arg, list) or not arg:
            raise ProtocolError("Exec 'arg' must be a non-empty array ending with the context")
        *raw, ctx_text = arg
        err = self._arity_error(len(raw))
        if err:
            return encode_func_reply(False, err)
        args = raw if self._plain else [self._arg(i, v) for i, v in enumerate(raw)]
        args += [None] * self._missing_optional(len(args))
        kwargs: Dict[str, Any] = {}
        if self.sym.context_param:
            kwargs[self.sym.context_param] = self._context(ctx_text)
        result = self.sym.func(*args, **kwargs)
        if self.sym.is_async:
            if self._loop is None:
                import asyncio

                self._loop = asyncio.new_event_loop()
            result = self._loop.run_until_complete(result)
        self.calls += 1
        try:
            return encode_func_reply(True, result)
        except BaseException:
            found = find_unencodable(result, "result")
            where, what = found if found else ("result", "a value that could not be encoded")
            raise ResultError(self.sym.name, where, what) from None

    def _arg(self, i: int, value: Any) -> Any:
        p = self._param(i)
        if self.sym.aggregate:
            if not _column(p.type):
                value = _first(value)
            elif p.type.kind == "list" and value is not None and not isinstance(value, list):
                value = [value]  # evaluated outside a group: a group of one row
        if value is None and p.default is not MISSING:
            return p.default
        literals = self._literals.get(i)
        if literals:
            value = _literal_text(value, p.type, literals)
        return coerce(value, p.type, symbol=self.sym.name, name=p.name, b64=True, role="argument")

    def _missing_optional(self, n: int) -> int:
        """How many left-out trailing ``Optional`` arguments without a default must be passed as ``None``."""
        fixed = [p for p in self.sym.params if not p.variadic][n:]
        return max((i + 1 for i, p in enumerate(fixed) if p.default is MISSING), default=0)

    def _context(self, text: Any) -> Context:
        key = text if isinstance(text, str) else repr(text)
        ctx = self._contexts.get(key)
        if ctx is None:
            meta = parse_func_meta(text)
            if len(self._contexts) >= 1024:
                self._contexts.clear()
            ctx = Context(plugin=self.plugin, symbol=self.sym.name, rule_id=meta.rule_id, op_id=meta.op_id,
                          instance_id=meta.instance_id, func_id=meta.func_id, logger=self.log)
            self._contexts[key] = ctx
        return ctx

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()


def _literal_text(value: Any, t: TypeInfo, literals: Set[str]) -> Any:
    """A ``bytes`` argument (or a ``list[bytes]`` item) equal to a string literal of the SQL is that text."""
    if t.kind == "bytes" and isinstance(value, str) and value in literals:
        return value.encode("utf-8")
    if t.kind == "list" and t.item is not None and t.item.kind == "bytes" and isinstance(value, list):
        return [v.encode("utf-8") if isinstance(v, str) and v in literals else v for v in value]
    return value


class FunctionService:
    """The socket loop of one function: dial, handshake, answer requests, keep alive."""

    def __init__(self, handler: FunctionHandler, sock: Socket, log: logging.Logger) -> None:
        self.handler, self.sock, self.log = handler, sock, log
        self.sock.recv_timeout = RECV_SLICE
        self.sock.send_timeout = 1.0
        self._stop = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"function:{handler.sym.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 2.0) -> None:
        self._stop.set()
        if self.sock.interruptible:
            self.sock.close()
        self.done.wait(wait)

    def _run(self) -> None:
        try:
            self._serve()
        except Closed:
            pass
        except TransportError:
            self.log.exception("function channel failed")
        finally:
            self.sock.close()
            self.handler.close()
            self.done.set()

    def _serve(self) -> None:
        answer_loop(self.sock, self.handler.handle, self._stop.is_set)
