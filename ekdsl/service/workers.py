"""``--workers N``: the functions run in N processes of a `pebble <https://pypi.org/project/Pebble/>`_ pool.

Pebble, unlike the standard library's pool, ends one worker on its own: a call past its deadline is cancelled, its
process is killed and a new one (loading the plugin again) takes its place, while the other workers go on. A worker
that dies (``os._exit``, a signal, the OOM killer) fails the call it had; a pool that breaks is replaced.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import CancelledError, TimeoutError
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


def _run(method: str, args: List[Any]) -> Outcome:
    assert _FUNCTIONS is not None, "the worker did not load its plugin"
    return _FUNCTIONS.run(method, args)


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

    async def call(self, method: str, args: List[Any], budget: float) -> Outcome:
        """Run one call in a worker; past ``budget`` seconds its worker is killed and replaced."""
        future = self._current().schedule(_run, args=(method, args), timeout=budget)
        try:
            outcome: Outcome = await asyncio.wait_for(asyncio.wrap_future(future), budget)
            return outcome
        except (asyncio.TimeoutError, TimeoutError):
            future.cancel()  # queued: never runs; running: its worker is killed and replaced
            log.error("function %s: no answer within %.3g s: its worker process is replaced", method, budget)
            return Outcome.error(DEADLINE, f"{method}() did not answer within its {budget:.3g} s deadline "
                                           "(the service's --call-timeout); its worker process was replaced")
        except asyncio.CancelledError:
            future.cancel()
            raise
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
