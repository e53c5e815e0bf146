"""Protocol-neutral service calls: method name + positional arguments → an :class:`Outcome`.

:class:`Calls` runs them in the serving process; :class:`WorkerCalls` in ``N`` worker processes (for CPU-bound
functions), each loading the plugin once.
"""

from __future__ import annotations

import base64
import logging
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

from ..context import Context
from ..errors import EkdslError
from ..invoke import Invoker
from ..model import PluginModel
from ..runtime.failure import describe
from .schema import Shape, shapes

__all__ = ["Calls", "Outcome", "WorkerCalls", "open_calls"]

log = logging.getLogger("ekdsl.service")


class Outcome(NamedTuple):
    """A call's reply value as the schema says (``ok``), or an error text; ``bad_request`` when the arguments,
    not the function, were at fault."""

    ok: bool
    value: Any
    bad_request: bool = False


class Calls:
    """Every servable function of one plugin, called in this process (thread-safe)."""

    def __init__(self, model: PluginModel) -> None:
        served, self.skipped = shapes(model)
        self.shapes: Dict[str, Shape] = {s.method: s for s in served}
        self._invokers = {s.method: Invoker(s.symbol) for s in served}
        self._contexts = {s.method: Context(plugin=model.name, symbol=s.method, rule_id="service")
                          for s in served}

    def shape(self, method: str) -> Optional[Shape]:
        return self.shapes.get(method)

    def call(self, method: str, args: Sequence[Any]) -> Outcome:
        """Bind, call and shape the reply; never raises, whatever the user code does."""
        invoker = self._invokers.get(method)
        if invoker is None:
            return Outcome(False, f"no function {method!r}: this service has "
                                  f"{', '.join(sorted(self.shapes)) or 'none'}", True)
        try:
            bound = invoker.bind(args)
        except EkdslError as exc:
            return Outcome(False, str(exc), True)
        try:
            value = invoker.jsonable(invoker.call(bound, self._contexts[method]))
            return Outcome(True, _reply(self.shapes[method], value))
        except EkdslError as exc:
            log.error("function %s: %s", method, exc)
            return Outcome(False, str(exc))
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the call fails, the service serves on
            error = describe(exc)
            log.exception("function %s failed: %s", method, error)
            return Outcome(False, error)

    def close(self) -> None:
        for invoker in self._invokers.values():
            invoker.close()


class NullResult(EkdslError):
    """A function with a scalar result returned ``None``, which a protobuf wrapper cannot carry."""


def _reply(shape: Shape, value: Any) -> Any:
    if shape.reply == "wrapper":
        if value is None:
            raise NullResult(f"{shape.method}() returned None: its reply, a {shape.reply_type}, cannot be null")
        if shape.reply_scalar == "bytes" and isinstance(value, str):
            return base64.b64decode(value)  # made base64 text by json_safe: the wrapper carries the bytes
        return value
    if shape.reply == "result":
        return {"result": value}
    return value


_WORKER: Optional[Calls] = None


def _worker_init(target: str) -> None:
    global _WORKER
    from ..plugin import load_target

    _WORKER = Calls(load_target(target).model())


def _worker_call(method: str, args: List[Any]) -> Outcome:
    assert _WORKER is not None
    return _WORKER.call(method, args)


class WorkerCalls:
    """The same calls, each run in one of ``workers`` processes that loaded ``target``."""

    def __init__(self, target: str, model: PluginModel, workers: int) -> None:
        import multiprocessing

        self._local = Calls(model)  # shapes only: the calls run in the workers
        self.shapes, self.skipped = self._local.shapes, self._local.skipped
        self._target, self._workers = target, workers
        self._context = multiprocessing.get_context("spawn")
        self._pool = self._new_pool()
        self._pool_lock = threading.Lock()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self._workers, mp_context=self._context, initializer=_worker_init,
                                   initargs=(self._target,))

    def shape(self, method: str) -> Optional[Shape]:
        return self.shapes.get(method)

    def call(self, method: str, args: Sequence[Any]) -> Outcome:
        if method not in self.shapes:
            return self._local.call(method, args)
        pool = self._pool
        try:
            result: Outcome = pool.submit(_worker_call, method, list(args)).result()
            return result
        except BrokenProcessPool as exc:  # a worker died: the calls it had fail, a new pool takes the next
            with self._pool_lock:
                if self._pool is pool:
                    self._pool = self._new_pool()
                    pool.shutdown(wait=False)
            return Outcome(False, f"worker process failed: {describe(exc)}")

    def close(self) -> None:
        with self._pool_lock:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._local.close()


def open_calls(target: str, model: PluginModel, workers: int) -> Any:
    """:class:`Calls` for one process (``workers`` ≤ 1), else :class:`WorkerCalls`."""
    return WorkerCalls(target, model, workers) if workers > 1 else Calls(model)
