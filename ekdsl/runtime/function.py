"""SQL functions: one REQ socket per function, answering Validate, IsAggregate and Exec."""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Optional, Set

from .. import codec
from ..context import Context
from ..errors import ConfigError, EkdslError, ProtocolError
from ..invoke import Invoker, ResultError
from ..model import SymbolModel
from ..protocol import decode_func_request, encode_func_reply, parse_func_meta
from ..session import KEEPALIVE
from ..transport import Closed, Socket
from ..types import coerce
from .answer import answer_loop
from .failure import describe

__all__ = ["FunctionHandler", "FunctionService", "ResultError"]

RECV_SLICE = 1.0  # seconds per receive when close() cannot interrupt the socket (pynng)
TEXT_LITERALS = 256  # string literals remembered per argument position (see ekdsl.invoke.literal_text)
_STATE_TRUE = b'{"state":true,"result":'  # encode_func_reply(True, x) is this, x's JSON and "}"


class FunctionHandler:
    """Pure request → reply logic for one function (no sockets)."""

    def __init__(self, plugin: str, sym: SymbolModel, logger: logging.Logger, stores: Any = None) -> None:
        self.plugin, self.sym, self.log, self.stores = plugin, sym, logger, stores
        self.calls = 0
        self.invoker = Invoker(sym)
        self._contexts: Dict[str, Context] = {}
        self._literals: Dict[int, Set[str]] = {}  # string literals seen by Validate, per bytes argument
        self._loads, self._dumps = codec.backend()

    def handle(self, payload: bytes) -> bytes:
        """Answer one request; never raises, whatever the user code raises or returns.

        The fast path: an ``Exec`` whose argument count fits is decoded once, bound (by the invoker's plan for
        that count when the values allow) and called, and its reply written around the result's JSON. Anything
        else goes to :meth:`general` before any user code runs, and the bytes are the same either way."""
        try:
            req = self._loads(payload)
        except Exception:
            return self.general(payload)
        arg = req.get("arg") if req.__class__ is dict and req.get("func") == "Exec" else None
        if arg.__class__ is not list or not arg:
            return self.general(payload)
        invoker = self.invoker
        plan = invoker.plans.get(len(arg) - 1)
        if plan is None and not self._fits(len(arg) - 1):
            return self.general(payload)
        try:
            args = arg[:-1]
            if plan is None:
                args = invoker.bind(args, self._literals)
            else:
                checks, pad = plan
                for i, cls in checks:
                    if args[i].__class__ is not cls:
                        args = invoker.bind(args, self._literals)
                        break
                else:
                    if pad:
                        args += [None] * pad
            call = invoker.direct
            result = call(*args) if call is not None else \
                invoker.call(args, self._context(arg[-1]) if self.sym.context_param else None)
            self.calls += 1
            try:
                return _STATE_TRUE + self._dumps(result) + b"}"
            except BaseException:
                raise invoker.result_error(result) from None
        except BaseException as exc:
            return self._failed(exc)

    def general(self, payload: bytes) -> bytes:
        """Answer any request, step by step: the protocol's decoder, a dispatch on ``func``, the reply encoder."""
        try:
            req = decode_func_request(payload)
            if req.func == "Exec":
                return self._exec(req.arg)
            if req.func == "Validate":
                return self._validate(req.arg)
            if req.func == "IsAggregate":
                return encode_func_reply(True, self.sym.aggregate)
            return encode_func_reply(False, f"invalid func {req.func!r}: expected Validate, IsAggregate or Exec")
        except BaseException as exc:
            return self._failed(exc)

    def _failed(self, exc: BaseException) -> bytes:
        """The reply for a call that raised (SystemExit and KeyboardInterrupt too: the function serves on)."""
        if isinstance(exc, EkdslError):
            self.log.error("function %s: %s", self.sym.name, exc)
            return encode_func_reply(False, str(exc))
        error = describe(exc)
        self.log.exception("function %s failed: %s", self.sym.name, error, exc_info=exc)
        return encode_func_reply(False, error)

    def _fits(self, n: int) -> bool:
        low, high = self.invoker.arity
        return low <= n and (high is None or n <= high)

    def _arity_error(self, n: int) -> Optional[str]:
        err = self.invoker.arity_error(n)
        return str(err) if err else None

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
        return self.invoker.param(i)

    def _exec(self, arg: Any) -> bytes:
        if not isinstance(arg, list) or not arg:
            raise ProtocolError("Exec 'arg' must be a non-empty array ending with the context")
        *raw, ctx_text = arg
        err = self._arity_error(len(raw))
        if err:
            return encode_func_reply(False, err)
        args = self.invoker.bind(raw, self._literals)
        result = self.invoker.call(args, self._context(ctx_text) if self.sym.context_param else None)
        self.calls += 1
        try:
            return encode_func_reply(True, result)
        except BaseException:
            raise self.invoker.result_error(result) from None

    def _context(self, text: Any) -> Context:
        key = text if isinstance(text, str) else repr(text)
        ctx = self._contexts.get(key)
        if ctx is None:
            meta = parse_func_meta(text)
            if len(self._contexts) >= 1024:
                self._contexts.clear()
            ctx = Context(plugin=self.plugin, symbol=self.sym.name, rule_id=meta.rule_id, op_id=meta.op_id,
                          instance_id=meta.instance_id, func_id=meta.func_id, logger=self.log, kind="function",
                          stores=self.stores)
            self._contexts[key] = ctx
        return ctx

    def close(self) -> None:
        self.invoker.close()


class FunctionService:
    """The socket loop of one function: dial, handshake, answer requests, keep alive."""

    def __init__(self, handler: FunctionHandler, sock: Socket, log: logging.Logger) -> None:
        self.handler, self.sock, self.log = handler, sock, log
        self.sock.recv_timeout = KEEPALIVE if sock.interruptible else RECV_SLICE  # stop() closes a native one
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
        except BaseException:  # the channel's own failure (user code is caught per call): the next start revives it
            self.log.exception("function channel failed; the next start of any function serves it again")
        finally:
            self.sock.close()
            self.handler.close()
            self.done.set()

    def _serve(self) -> None:
        answer_loop(self.sock, self.handler.handle, self._stop.is_set, unread_wait=None)  # a stop closes the socket
