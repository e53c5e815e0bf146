"""A running source instance: the user's generator on its own thread, rows pushed to eKuiper."""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Mapping, Optional

from .. import codec
from ..codec import find_unencodable
from ..context import Context, Row, Stopped
from ..model import SymbolModel
from ..protocol import DIAL_ATTEMPTS, DIAL_INTERVAL, Meta, data_url, encode_row
from ..session import source_error, source_failed
from ..transport import Closed, Socket, Timeout, open_socket
from .failure import describe

__all__ = ["NotAnIterator", "SourceRunner"]

SEND_SLICE = 0.05  # seconds per send attempt; a stalled host gets retries, a stop is seen within this
# a native socket is closed by stop(), which ends a blocked send at once: it only says when eKuiper stalls
STALL_SLICE = 1.0
_MESSAGE, _NO_META = b'{"message":', b',"meta":null}'  # encode_row(row) is these around the row's JSON


class NotAnIterator(Exception):
    """A source function that is not a generator returned something other than an iterator (a dict would
    "yield" its keys): the source refuses it before sending anything."""

    def __init__(self, symbol: str, result: Any) -> None:
        super().__init__(f"source '{symbol}' returned a {type(result).__name__}, not an iterator of rows: make it a "
                         "generator ('yield' each row) or return an iterator ('return iter(rows)')")


class SourceRunner:
    """Drives one generator; ``stop()`` closes it (its ``finally`` runs) within a bounded time."""

    def __init__(self, sym: SymbolModel, kwargs: Dict[str, Any], ctx: Context, sock: Socket,
                 log: logging.Logger) -> None:
        self.sym, self.kwargs, self.ctx, self.sock, self.log = sym, kwargs, ctx, sock, log
        self.sock.send_timeout = STALL_SLICE if sock.interruptible else SEND_SLICE
        self.rows = 0
        self.skipped = 0
        self._dumps = codec.backend()[1]
        self.done = threading.Event()
        self._loop: Any = None  # the asyncio loop and task of an async generator (asyncio loads lazily)
        self._task: Any = None
        self._thread = threading.Thread(target=self._run, name=f"source:{sym.name}:{ctx.key}", daemon=True)

    @classmethod
    def open(cls, sym: SymbolModel, kwargs: Dict[str, Any], ctx: Context, meta: Meta, config: Mapping[str, Any],
             socket_dir: Optional[str], log: logging.Logger) -> SourceRunner:
        """Dial the PULL socket eKuiper listens on for this instance's rows; the runner, not yet started."""
        sock = open_socket("push", data_url(meta, socket_dir), attempts=DIAL_ATTEMPTS, interval=DIAL_INTERVAL)
        return cls(sym, kwargs, ctx, sock, log)

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 1.0) -> bool:
        """Ask the generator to finish; return True if it did within ``wait`` seconds."""
        self.ctx.stop_event.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop has already finished
                pass
        if self.sock.interruptible:
            self.sock.close()  # ends a send blocked on a host that stopped reading
        finished = self.done.wait(wait)
        if not finished:
            self.log.warning("source is still busy %.1fs after stop; it will be closed when it next yields", wait)
        return finished

    def _call(self) -> Any:
        kwargs = dict(self.kwargs)
        if self.sym.context_param:
            kwargs[self.sym.context_param] = self.ctx
        return self.sym.func(**kwargs)

    def _run(self) -> None:
        try:
            if self.sym.is_async:
                self._async()
            else:
                self._sync()
            if not self.ctx.stopped:
                self.log.info("source finished after %d rows", self.rows)
        except Stopped:
            pass
        except NotAnIterator as exc:
            self.log.error("%s", exc)
            self._surface(str(exc))
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: this source ends, the process not
            error = describe(exc)
            self.log.exception("source failed after %d rows: %s", self.rows, error)
            self._surface(source_failed(self.sym.name, error))
        finally:
            self.sock.close()
            self.done.set()

    def _sync(self) -> None:
        it = self._call()
        if not self.sym.is_generator and not hasattr(it, "__next__"):
            raise NotAnIterator(self.sym.name, it)
        stopped, emit = self.ctx.stop_event.is_set, self._emit
        try:
            # After a stop the generator still runs up to its next yield, so the code after the last sent row's
            # yield (saving a cursor) runs; what it yields then is not sent.
            for item in it:
                if stopped():
                    break
                emit(item)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def _async(self) -> None:
        import asyncio

        try:
            asyncio.run(self._arun())
        except asyncio.CancelledError:
            pass

    async def _arun(self) -> None:
        import asyncio

        self._loop = asyncio.get_running_loop()
        self._task = asyncio.ensure_future(self._consume())
        if self.ctx.stopped:
            self._task.cancel()
        await self._task

    async def _consume(self) -> None:
        agen = self._call()
        try:
            async for item in agen:
                if self.ctx.stopped:
                    break
                self._emit(item)
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()

    def _emit(self, item: Any) -> None:
        """Send what one yield gave. The fast path: a plain dict, written inside the message as encode_row
        writes it; anything else, or a row whose JSON needs a closer look, takes the general path."""
        if item.__class__ is dict:
            try:
                payload = _MESSAGE + self._dumps(item) + _NO_META
            except Stopped:
                raise
            except BaseException:
                self._emit_general(item)
                return
            try:
                self.sock.send(payload)
            except (Closed, Timeout):
                self._send(payload)
            self.rows += 1
            return
        self._emit_general(item)

    def _emit_general(self, item: Any) -> None:
        if isinstance(item, Row) and isinstance(item.data, Mapping):
            payload = self._encode(item.data, item.meta)
        elif isinstance(item, Mapping):
            payload = self._encode(item, None)
        elif isinstance(item, (list, tuple)) and not isinstance(item, Row):
            for sub in item:
                self._emit(sub)
            return
        elif item is None:
            return
        else:
            what = f"a Row whose data is a {type(item.data).__name__}" if isinstance(item, Row) \
                else f"a {type(item).__name__}"
            msg = f"source '{self.sym.name}' yielded {what}: yield a dict, a list of dicts, or Row(dict, meta=...)"
            self.log.error("%s", msg)
            self._surface(msg)
            return
        if payload is None:
            return
        self._send(payload)
        self.rows += 1

    def _encode(self, data: Mapping[str, Any], meta: Any) -> Optional[bytes]:
        """The row's message, or None when JSON cannot hold it: then the row is skipped, with one log line
        naming where and what, and eKuiper is told (the rule counts it as an error); the source goes on."""
        if meta is not None and not isinstance(meta, Mapping):
            self._skip("meta", f"a {type(meta).__name__}", "Row meta must be a dict")
            return None
        try:
            return encode_row(data, meta)
        except Stopped:
            raise
        except BaseException as exc:
            found = find_unencodable(data, "row") or (find_unencodable(meta, "meta") if meta is not None else None)
            where, what = found if found else ("row", f"a value whose encoding raised {describe(exc)}")
        self._skip(where, f"{what}, which JSON cannot hold", "convert it (for example with str()) first")
        return None

    def _skip(self, where: str, what: str, hint: str) -> None:
        msg = f"source '{self.sym.name}' skipped a row: {where} is {what}; {hint}"
        self.skipped += 1
        self.log.error("%s", msg)
        self._surface(msg)

    def _send(self, payload: bytes) -> None:
        stalled = False
        while True:
            try:
                self.sock.send(payload)
                if stalled:
                    self.log.info("eKuiper reads rows again")
                return
            except Closed:
                raise Stopped() from None
            except Timeout:
                if self.ctx.stopped:
                    raise Stopped() from None
                if not stalled:
                    self.log.warning("eKuiper is not reading rows; holding the source until it does")
                    stalled = True

    def _surface(self, message: str) -> None:
        """Tell eKuiper: a JSON string is what its source reader reports as a decode error on the rule."""
        try:
            self.sock.send(source_error(message))
        except Exception:  # the host is gone or not reading: the log line is all we can do
            pass
