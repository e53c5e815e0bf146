"""A running sink instance: payloads from eKuiper delivered to the user's callable, acked in order."""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ..codec import loads as _json
from ..context import Context, Stopped
from ..errors import ConfigError
from ..framing import message_items, sink_rows
from ..model import SymbolModel, TypeInfo
from ..protocol import (
    ACK_OK,
    DIAL_ATTEMPTS,
    DIAL_INTERVAL,
    Meta,
    ack_error,
    ack_url,
    data_url,
    require_ack,
    send_single,
)
from ..transport import Closed, Socket, Timeout, open_socket
from ..types import coerce
from .batches import BatchCheck, batch_check
from .failure import describe
from .peritem import PerItem
from .resend import ResendRecord

__all__ = ["SinkRunner", "shape_item", "shape_items", "split_items"]

RECV_SLICE = 0.05  # seconds per receive when the socket cannot be interrupted; a stop is seen within this
IDLE_SLICE = 5.0  # with an interruptible socket, stop closes it and the receive ends at once


def _same(payload: bytes) -> bytes:
    return payload


def _text(payload: bytes) -> str:
    return payload.decode("utf-8", "replace")


def _json_or_text(payload: bytes) -> Any:
    try:
        return _json(payload)
    except (ValueError, RecursionError):
        return payload.decode("utf-8", "replace")


# data annotations that take one message as one item, and that item
_WHOLE: Dict[str, Callable[[bytes], Any]] = {"bytes": _same, "str": _text, "any": _json_or_text}


def split_items(payload: bytes, t: Optional[TypeInfo], symbol: str, send_single: bool = False) -> List[Any]:
    """The items a sink's data parameter receives for one payload, per its annotation, not yet converted.

    ``bytes``: the payload; ``str``: its text; ``Any``: the decoded JSON (or the text,
    if it is not JSON); a dict or object type: one item per row; a ``list``: one item,
    the message's rows whatever the framing (:func:`~ekdsl.framing.message_items`). Raises
    :class:`ConfigError` when a row or list type gets a payload that is not JSON.
    """
    kind = t.kind if t is not None else "any"
    whole = _WHOLE.get(kind)
    if whole is not None:
        return [whole(payload)]
    try:
        value = _json(payload)
    except (ValueError, RecursionError):
        raise ConfigError(symbol, "data", t.describe() if t else "JSON", payload[:80],
                          "the payload is not JSON; annotate the data parameter as bytes or str") from None
    if kind == "list":
        return [message_items(value, t, send_single)]
    return list(sink_rows(value))


def shape_item(item: Any, t: Optional[TypeInfo], symbol: str) -> Any:
    """One item converted to the data annotation (:class:`ConfigError` if it does not fit); raw payloads as is."""
    if t is None or t.kind in _WHOLE:
        return item
    return coerce(item, t, symbol=symbol, name="data")


def shape_items(payload: bytes, t: Optional[TypeInfo], symbol: str) -> List[Any]:
    """:func:`split_items`, each converted by :func:`shape_item`."""
    return [shape_item(item, t, symbol) for item in split_items(payload, t, symbol)]


def _summary(errors: List[Tuple[int, str]], items: int, unit: str, shown: int = 3) -> str:
    """One ack error for a message: its error, or how many of its items failed and the first few errors."""
    if len(errors) == 1:
        n, error = errors[0]
        return error if items <= 1 or n == 0 else f"{unit} {n} of {items}: {error}"
    listed = "; ".join(f"{unit} {n}: {error}" for n, error in errors[:shown])
    more = f"; and {len(errors) - shown} more" if len(errors) > shown else ""
    return f"{len(errors)} of {items} {unit}s failed: {listed}{more}"


class SinkRunner:
    """Listens for payloads; calls the sink per item; sends one ack per payload when ``requireAck``."""

    def __init__(self, sym: SymbolModel, kwargs: Dict[str, Any], ctx: Context, data: Socket, ack: Socket,
                 require_ack: bool, log: logging.Logger) -> None:
        self.sym, self.kwargs, self.ctx, self.log = sym, kwargs, ctx, log
        self.data, self.ack, self.require_ack = data, ack, require_ack
        self.data.recv_timeout = IDLE_SLICE if data.interruptible else RECV_SLICE
        self.ack.send_timeout = 1.0
        self.received = 0
        self.failed = 0
        self._send_single = send_single(ctx.config)  # for list[Row]'s event numbers
        self._batches = batch_check(ctx.config, log)  # warns when the rule batches: eKuiper corrupts batches
        self._resend = ResendRecord.for_sink(ctx, log) if require_ack else None  # with enableCache only
        self._per_item = PerItem.of(sym, kwargs, ctx)  # dynamic properties, shared clients; None without either
        self.done = threading.Event()
        self._gen: Any = None
        self._loop: Any = None  # an asyncio loop, for async sinks only (asyncio loads lazily)
        self._thread = threading.Thread(target=self._run, name=f"sink:{sym.name}:{ctx.key}", daemon=True)

    @classmethod
    def open(cls, sym: SymbolModel, kwargs: Dict[str, Any], ctx: Context, meta: Meta, config: Mapping[str, Any],
             socket_dir: Optional[str], log: logging.Logger) -> SinkRunner:
        """Listen for eKuiper's payloads and dial its ack socket (it listens before the start); the runner, not
        yet started. A failed dial leaves no listener behind."""
        data = open_socket("pull", data_url(meta, socket_dir), listen=True, attempts=11, interval=0.05)
        try:
            ack = open_socket("push", ack_url(meta, socket_dir), attempts=DIAL_ATTEMPTS, interval=DIAL_INTERVAL)
        except BaseException:  # out of descriptors, too: the listener must not outlive the failed start
            data.close()
            raise
        return cls(sym, kwargs, ctx, data, ack, require_ack(config), log)

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 1.0) -> bool:
        self.ctx.stop_event.set()
        if self.data.interruptible:
            self.data.close()
        finished = self.done.wait(wait)
        if not finished:
            self.log.warning("sink is still busy %.1fs after stop; it will be closed when its call returns", wait)
        return finished

    # ---- worker thread

    def _run(self) -> None:
        try:
            if self.sym.is_async:
                import asyncio

                self._loop = asyncio.new_event_loop()
            if self.sym.is_generator:
                self._open_generator()
            deliver = self._fast_delivery() or self._deliver
            if self._batches is not None:
                deliver = self._checked(deliver, self._batches)
            stopped, recv = self.ctx.stop_event.is_set, self.data.recv
            while not stopped():
                try:
                    payload = recv()
                except Timeout:
                    continue
                except Closed:
                    break
                deliver(payload)
        except Stopped:
            pass
        except BaseException:  # not user code (that is caught per item): a fault of the runtime itself
            self.log.exception("sink stopped by an unexpected error")
        finally:
            self._close_generator()
            if self._loop is not None:
                self._loop.close()
            self.data.close()
            self.ack.close()
            self.done.set()

    def _deliver(self, payload: bytes) -> None:
        """Call the sink on every item of one message, whatever each call raises; then ack the message."""
        self.received += 1
        errors: List[Tuple[int, str]] = []
        try:
            items = split_items(payload, self.sym.data_type, self.sym.name, self._send_single)
        except ConfigError as exc:
            items = []
            errors.append((0, str(exc)))
            self.log.error("message %d does not fit the sink: %s", self.received, exc)
        skip = self._resend.skipped(payload) if self._resend is not None else frozenset()
        if self._per_item is None:
            for n, item in enumerate(items, 1):
                error = "" if n in skip else self._attempt(item)
                if error:
                    errors.append((n, error))
        else:
            self._attempt_each(payload, items, skip, errors)
        if self._resend is not None:
            self._resend.settle(payload, len(items), {n for n, _ in errors}, skip)
        if errors:
            self.failed += 1
        if self.require_ack:
            self._ack(_summary(errors, len(items), self._unit) if errors else "")

    def _checked(self, deliver: Callable[[bytes], None], batches: BatchCheck) -> Callable[[bytes], None]:
        """``deliver``, but a batch eKuiper cut short is refused whole: logged, and acked with why."""

        def checked(payload: bytes) -> None:
            error = batches.problem(payload)
            if not error:
                deliver(payload)
                return
            self.received += 1
            self.failed += 1
            self.log.error("message %d: %s", self.received, error)
            if self.require_ack:
                self._ack(error)

        return checked

    def _attempt_each(self, payload: bytes, items: List[Any], skip: Any, errors: List[Tuple[int, str]]) -> None:
        """The items of a message, each with its per-call arguments (dynamic properties, shared clients)."""
        assert self._per_item is not None
        for n, (item, extra) in enumerate(zip(items, self._per_item.values(payload, len(items))), 1):
            if n in skip:
                continue
            if isinstance(extra, str):  # its dynamic properties could not be evaluated
                self.log.error("message %d: %s", self.received, extra)
            error = extra if isinstance(extra, str) else self._attempt(item, extra)
            if error:
                errors.append((n, error))

    def _fast_delivery(self) -> Optional[Callable[[bytes], None]]:
        """The fast path of :meth:`_deliver` for a plain function whose data parameter takes a whole message
        (``bytes``, ``str``, ``Any``): one call per message, the arguments bound once; ``None`` for the others."""
        sym = self.sym
        kind = sym.data_type.kind if sym.data_type is not None else "any"
        if sym.is_generator or sym.is_async or kind not in _WHOLE or self._per_item is not None:
            return None
        kwargs = dict(self.kwargs)
        if sym.context_param:
            kwargs[sym.context_param] = self.ctx
        call = functools.partial(sym.func, **kwargs)
        name = sym.data_param or "data"
        code = getattr(sym.func, "__code__", None)  # the data parameter first and not positional-only: pass it so
        positional = bool(code and code.co_argcount and not code.co_posonlyargcount and code.co_varnames[0] == name)
        item = _WHOLE[kind]

        def deliver(payload: bytes) -> None:
            self.received += 1
            try:
                if positional:
                    call(item(payload))
                else:
                    call(**{name: item(payload)})
                error = ""
            except BaseException as exc:
                error = self._failure(exc)
                self.failed += 1
            if self.require_ack:
                self._ack(error)

        return deliver

    @property
    def _unit(self) -> str:
        kind = self.sym.data_type.kind if self.sym.data_type is not None else "any"
        return "row" if kind not in _WHOLE and kind != "list" else "message"

    def _attempt(self, item: Any, extra: Optional[Dict[str, Any]] = None) -> str:
        """Convert and deliver one item (``extra``: its per-call arguments); return the error text ('' when it
        succeeded). Raises only Stopped."""
        try:
            item = shape_item(item, self.sym.data_type, self.sym.name)
        except ConfigError as exc:
            self.log.error("message %d: a %s does not fit the sink: %s", self.received, self._unit, exc)
            return str(exc)
        try:
            self._call(item, extra)
            return ""
        except BaseException as exc:  # user code may raise anything, SystemExit included: the sink goes on
            return self._failure(exc)

    def _failure(self, exc: BaseException) -> str:
        """The error text of a call that raised, logged; a stop's :class:`Stopped` goes on up."""
        if isinstance(exc, Stopped) and self.ctx.stopped:
            raise exc
        error = describe(exc)
        self.log.exception("sink failed on message %d: %s", self.received, error, exc_info=exc)
        return error

    def _ack(self, error: str) -> None:
        try:
            self.ack.send(ack_error(error) if error else ACK_OK)
        except BaseException:
            self.log.exception("could not send the ack for message %d", self.received)

    def _await(self, value: Any) -> Any:
        if self._loop is not None and hasattr(value, "__await__"):
            return self._loop.run_until_complete(value)
        return value

    def _call(self, item: Any, extra: Optional[Dict[str, Any]] = None) -> None:
        if self.sym.is_generator:
            if self._gen is None:
                self._open_generator(raise_errors=True)
            try:
                if self.sym.is_async:
                    self._await(self._gen.asend(item))
                else:
                    self._gen.send(item)
            except (StopIteration, StopAsyncIteration):
                self._gen = None
                self.log.warning("sink generator returned; it will be started again for the next message")
            except BaseException:
                self._gen = None  # a generator that raised is finished: set it up again next time
                raise
            return
        kwargs = dict(self.kwargs)
        kwargs[self.sym.data_param or "data"] = item
        if self.sym.context_param:
            kwargs[self.sym.context_param] = self.ctx
        if extra:
            kwargs.update(extra)
        self._await(self.sym.func(**kwargs))

    def _open_generator(self, raise_errors: bool = False) -> None:
        kwargs = dict(self.kwargs)
        if self.sym.context_param:
            kwargs[self.sym.context_param] = self.ctx
        if self._per_item is not None:
            kwargs.update(self._per_item.clients())
        try:
            gen = self.sym.func(**kwargs)
            self._await(gen.asend(None) if self.sym.is_async else gen.send(None))
            self._gen = gen
        except BaseException as exc:
            self._gen = None
            if raise_errors or (isinstance(exc, Stopped) and self.ctx.stopped):
                raise
            self.log.exception("sink setup failed; it will be tried again on the next message")

    def _close_generator(self) -> None:
        gen, self._gen = self._gen, None
        if gen is None:
            return
        try:
            self._await(gen.aclose()) if self.sym.is_async else gen.close()
        except BaseException:  # whatever teardown raises, the sockets are still closed
            self.log.exception("sink teardown failed")
