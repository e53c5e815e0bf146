"""``--workers N``: the functions run in N processes of a `pebble <https://pypi.org/project/Pebble/>`_ pool.

Pebble, unlike the standard library's pool, ends one worker on its own: a call past its deadline is cancelled, its
process is killed and a new one (loading the plugin again) takes its place, while the other workers go on. A worker
that dies (``os._exit``, a signal, the OOM killer) fails the call it had; a pool that breaks is replaced.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, List, Optional

from ..runtime.failure import describe
from .functions import DEADLINE, FAILED, Functions, Outcome

__all__ = ["Workers"]

log = logging.getLogger("ekdsl.service")

_FUNCTIONS: Optional[Functions] = None  # in a worker process: the plugin it loaded


def _load(target: str) -> None:
    global _FUNCTIONS
    from ..plugin import load_target

    _FUNCTIONS = Functions(load_target(target).model())


def _run(method: str, args: List[Any], deadline: float) -> Outcome:
    assert _FUNCTIONS is not None, "the worker did not load its plugin"
    if time.time() > deadline:  # its caller was answered already: no worker was free in time
        return Outcome.error(DEADLINE, f"{method}() waited past its deadline for a free worker")
    return _FUNCTIONS.run(method, args)


def _ready() -> int:
    return os.getpid()


class Workers:
    """``count`` processes that each loaded ``target``; :meth:`call` runs one call in one of them."""

    def __init__(self, target: str, count: int) -> None:
        import multiprocessing

        self._target, self._count = target, count
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> Any:
        from pebble import ProcessPool

        return ProcessPool(max_workers=self._count, initializer=_load, initargs=(self._target,),
                           context=self._context)

    def _current(self) -> Any:
        with self._lock:
            if not self._pool.active:  # broken (every worker died at once): start again
                log.error("the worker pool broke: starting %d new workers", self._count)
                self._pool.stop()
                self._pool = self._new_pool()
            return self._pool

    def ready(self, timeout: float = 60.0) -> None:
        """Start the workers and wait (at most ``timeout`` seconds) until one has loaded the plugin, so that the
        first calls do not spend their deadline on a process starting."""
        self._current().schedule(_ready).result(timeout=timeout)

    async def call(self, method: str, args: List[Any], budget: float) -> Outcome:
        """Run one call in a worker. Its caller is answered within ``budget`` seconds; a worker that ran the call
        longer is killed and replaced (pebble's task timeout counts from the moment a worker takes the call). A call
        that waited past its deadline for a free worker is skipped by the worker that takes it."""
        future = self._current().schedule(_run, args=(method, args, time.time() + budget), timeout=budget)
        answer = asyncio.wrap_future(future)
        try:
            await asyncio.wait({answer}, timeout=budget)
        except asyncio.CancelledError:
            future.cancel()  # a stop: a worker running it is killed
            raise
        if not answer.done():
            started = future.running()
            log.error("function %s: no answer within %.3g s%s", method, budget,
                      ": its worker process is replaced" if started else ": no worker was free")
            return Outcome.error(DEADLINE, f"{method}() did not answer within its {budget:.3g} s deadline (the "
                                           "service's --call-timeout); " + (
                                               "its worker process was replaced" if started else
                                               "every worker was busy"))
        try:
            outcome: Outcome = answer.result()
            return outcome
        except (TimeoutError, FutureTimeout):  # pebble's own timeout, a hair before ours (builtin, or 3.9's)
            return Outcome.error(DEADLINE, f"{method}() did not answer within its {budget:.3g} s deadline (the "
                                           "service's --call-timeout); its worker process was replaced")
        except CancelledError:
            return Outcome.error(FAILED, f"{method}() was cancelled: its worker process was stopped")
        except BaseException as exc:  # ProcessExpired, BrokenProcessPool, an argument that does not pickle
            log.error("function %s: worker process failed: %s", method, describe(exc))
            return Outcome.error(FAILED, f"worker process failed: {describe(exc)}")

    def close(self) -> None:
        """Stop every worker now (calls still running are killed)."""
        with self._lock:
            self._pool.stop()
            self._pool.join(timeout=5)
