"""Service calls with deadlines: every protocol adapter awaits :meth:`Calls.call`.

Each call has a deadline (``--call-timeout``, under the 5 s eKuiper's executors wait). An ``async def`` runs on the
server's event loop and is cancelled at its deadline. A plain function runs on one of ``concurrency`` threads; at its
deadline the call is answered with an error and the thread is left to finish (Python cannot stop it), so the calls
still running past their deadline are counted (:attr:`Calls.stuck`). With ``workers`` the functions run in that many
processes instead (:mod:`.workers`), and a process whose call passes its deadline is killed and replaced.

:meth:`Calls.drain` waits for the calls in flight for a grace period, then cuts the rest off; it returns how many
were cut off, which the server turns into its exit status.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Dict, NamedTuple, Optional, Sequence, Set

from .functions import DEADLINE, UNAVAILABLE, Functions, Outcome
from .options import DEFAULT_TIMEOUT

__all__ = ["Calls", "Limits", "uncancel"]

log = logging.getLogger("ekdsl.service")


class Limits(NamedTuple):
    """How calls run: their deadline in seconds, how many run at once, and in how many processes (0: threads of
    this one)."""

    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = 64
    workers: int = 0


class Calls:
    """The functions of :class:`Functions`, called with a deadline from an event loop."""

    def __init__(self, functions: Functions, limits: Optional[Limits] = None, target: str = "") -> None:
        self.functions = functions
        self.limits = limits = limits or Limits()
        self.stuck = 0  # plain calls still running past their deadline
        self.cut_off = 0  # async and worker calls ended by a drain
        self._closing = self._cut = self._closed = False
        self._cut_waiter: Optional[asyncio.Future[None]] = None
        self._tasks: Set[asyncio.Task[Any]] = set()  # the tasks awaiting a call
        self._jobs: Set[Future[Any]] = set()  # plain calls submitted to the threads and not yet returned
        self._threads = ThreadPoolExecutor(limits.concurrency, thread_name_prefix="ekdsl-call")
        self._workers: Any = None
        if limits.workers > 0:
            from .workers import Workers

            self._workers = Workers(target, limits.workers)
            self._workers.ready()

    @property
    def shapes(self) -> Dict[str, Any]:
        return self.functions.shapes

    @property
    def closing(self) -> bool:
        """Whether a drain has begun: new calls are refused."""
        return self._closing

    def refuse_new(self) -> None:
        """Answer every later call "stopping" (the first step of a stop, before the server drains)."""
        self._closing = True

    async def call(self, method: str, args: Sequence[Any], timeout: Optional[float] = None) -> Outcome:
        """Call ``method`` with positional ``args`` in the calling task; answered within ``timeout`` (default: the
        limit). Never raises, bar the caller's own cancellation outside a stop."""
        if self._closing:
            return Outcome.error(UNAVAILABLE, "the service is stopping: call another instance or retry")
        if method not in self.functions.shapes:
            return self.functions.unknown(method)
        budget = self.limits.timeout if timeout is None else min(timeout, self.limits.timeout)
        task = asyncio.current_task()
        assert task is not None, "Calls.call runs in a task"
        self._tasks.add(task)
        threaded = self._workers is None and not self.functions.is_async(method)
        try:
            if self._workers is not None:
                outcome: Outcome = await self._workers.call(method, list(args), budget)
                return outcome
            if threaded:
                return await self._run_thread(method, args, budget)
            return await self._run_async(method, args, budget)
        except asyncio.CancelledError:
            if not self._closing:
                raise  # the caller went away (a client's own deadline): there is nobody to answer
            uncancel(task)
            if not threaded:  # a thread cannot be stopped: it is counted while it runs (busy_threads)
                self.cut_off += 1
            log.warning("function %s: cut off while the service stopped", method)
            return Outcome.error(UNAVAILABLE, f"{method}() was cut off: the service stopped")
        finally:
            self._tasks.discard(task)

    async def _run_async(self, method: str, args: Sequence[Any], budget: float) -> Outcome:
        bound = self.functions.bind(method, args)
        if isinstance(bound, Outcome):
            return bound
        try:
            result = await asyncio.wait_for(self.functions.start(method, bound), budget)
        except asyncio.TimeoutError:
            return _late(method, budget)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            return self.functions.failure(method, exc)
        return self.functions.reply(method, result)

    async def _run_thread(self, method: str, args: Sequence[Any], budget: float) -> Outcome:
        loop = asyncio.get_running_loop()
        job = self._threads.submit(self.functions.run, method, args)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        answer = asyncio.wrap_future(job, loop=loop)
        try:
            await asyncio.wait({answer}, timeout=budget)  # no task per call, unlike wait_for
        except asyncio.CancelledError:
            answer.cancel()  # a queued job never runs; a running one finishes unseen
            raise
        if answer.done():
            outcome: Outcome = answer.result()
            return outcome
        if job.cancel():  # still queued behind busy threads: it never runs
            return _late(method, budget)
        answer.cancel()
        self.stuck += 1
        job.add_done_callback(lambda _job: _soon(loop, self._unstuck, method))
        log.error("function %s: still running %.3g s after its call started; its thread stays busy until it "
                  "returns (%d such); run with --workers to have such calls' processes replaced",
                  method, budget, self.stuck)
        return _late(method, budget)

    def _unstuck(self, method: str) -> None:
        self.stuck -= 1
        log.warning("function %s: a call past its deadline returned at last (%d still running)", method, self.stuck)

    @property
    def busy_threads(self) -> int:
        """Threads still running a plain call (past its deadline, or cut off by a drain)."""
        return sum(1 for job in list(self._jobs) if job.running())

    async def drain(self, grace: float) -> int:
        """Refuse new calls, wait up to ``grace`` seconds (or until :meth:`cut`) for those in flight, cut off the
        rest; returns how many calls were cut off, counting the plain calls whose thread still runs (they end with
        the process)."""
        self._closing = True
        pending = set(self._tasks)
        if pending and not self._cut:
            everything = asyncio.ensure_future(asyncio.wait(pending))
            self._cut_waiter = asyncio.get_running_loop().create_future()
            waiters: Set[asyncio.Future[Any]] = {everything, self._cut_waiter}
            await asyncio.wait(waiters, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
            everything.cancel()
        late = {task for task in pending if task in self._tasks}  # still in a call (not writing its answer)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=1.0)
        return self.cut_off + self.busy_threads

    def cut(self) -> None:
        """End a drain's grace now (a second SIGTERM); call from the event loop's thread."""
        self._closing = self._cut = True
        if self._cut_waiter is not None and not self._cut_waiter.done():
            self._cut_waiter.set_result(None)

    def close(self) -> None:
        """Release threads and worker processes (threads still running user code are left behind); idempotent."""
        if self._closed:
            return
        self._closed = self._closing = True
        self._threads.shutdown(wait=False, cancel_futures=True)
        if self._workers is not None:
            self._workers.close()
        self.functions.close()


def _soon(loop: asyncio.AbstractEventLoop, callback: Any, *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the loop closed meanwhile (the service stopped): nothing left to tell
        pass


def uncancel(task: asyncio.Task[Any]) -> None:
    """Take back a cancellation that was answered (Python 3.11+ counts them)."""
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()


def _late(method: str, budget: float) -> Outcome:
    return Outcome.error(DEADLINE, f"{method}() did not answer within its {budget:.3g} s deadline "
                                   "(the service's --call-timeout)")
