"""SQL functions: one REQ socket per function, answering Validate, IsAggregate and Exec."""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Optional

from ..context import Context
from ..errors import ConfigError, EkdslError, ProtocolError, TransportError
from ..model import MISSING, SymbolModel
from ..protocol import decode_func_request, encode_func_reply, parse_func_meta
from ..transport import Closed, Socket
from ..types import coerce
from .answer import answer_loop

__all__ = ["FunctionHandler", "FunctionService"]

RECV_SLICE = 1.0


class FunctionHandler:
    """Pure request → reply logic for one function (no sockets)."""

    def __init__(self, plugin: str, sym: SymbolModel, logger: logging.Logger) -> None:
        self.plugin, self.sym, self.log = plugin, sym, logger
        self.calls = 0
        self._arity = sym.arity
        self._plain = all(p.type.kind == "any" and p.default is MISSING for p in sym.params)
        self._contexts: Dict[str, Context] = {}
        self._loop: Any = None  # an asyncio loop, for async functions only (asyncio loads lazily)

    def handle(self, payload: bytes) -> bytes:
        """Answer one request; never raises."""
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
            return encode_func_reply(False, str(exc))
        except Exception as exc:
            self.log.exception("function %s failed", self.sym.name)
            return encode_func_reply(False, f"{type(exc).__name__}: {exc}")

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
        nodes = arg if isinstance(arg, list) else []
        err = self._arity_error(len(nodes))
        if err:
            return encode_func_reply(False, err)
        if not self.sym.aggregate:
            for i, node in enumerate(nodes):
                if isinstance(node, dict) and set(node) == {"Val"}:  # a literal in the SQL
                    p = self._param(i)
                    try:
                        coerce(node["Val"], p.type, symbol=self.sym.name, name=p.name, b64=True)
                    except ConfigError as exc:
                        return encode_func_reply(False, str(exc).replace("property", "argument", 1))
        return encode_func_reply(True, "")

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
        return encode_func_reply(True, result)

    def _arg(self, i: int, value: Any) -> Any:
        p = self._param(i)
        if value is None and p.default is not MISSING:
            return p.default
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
