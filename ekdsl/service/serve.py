"""``python -m ekdsl service``: serve a plugin's functions until SIGTERM or SIGINT, then drain within a grace period.

One asyncio loop runs the chosen protocol's server (uvicorn for rest, grpcio for grpc, asyncio for msgpack-rpc) over
one :class:`.calls.Calls`. The first SIGTERM or SIGINT stops accepting and lets the calls in flight answer for at
most ``grace`` seconds; a second one cuts them off at once. The exit status is 0 when nothing was cut off, else 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from typing import Any, Optional, TextIO, Tuple

from ..errors import UsageError
from ..plugin import load_target
from .calls import Calls, Limits
from .functions import Functions
from .options import Options, check, parse_listen

__all__ = ["serve"]

log = logging.getLogger("ekdsl.service")

def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _Stop:
    """SIGTERM/SIGINT handling: the first sets :attr:`event`, the second :attr:`now` as well."""

    def __init__(self, grace: float, calls: Calls) -> None:
        self.grace, self.calls = grace, calls
        self.event = asyncio.Event()
        self.now = asyncio.Event()

    def signalled(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.event.is_set():
            log.warning("second %s: cutting the calls in flight off now", name)
            self.now.set()
        else:
            log.info("%s: stopping; calls in flight have %.3g s to finish (send it again to cut them off)", name,
                     self.grace)
            self.calls.refuse_new()
        self.event.set()


async def _serve(options: Options, calls: Calls, out: TextIO) -> int:
    loop = asyncio.get_running_loop()
    stop = _Stop(options.grace, calls)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.signalled, signum)
    host, port = parse_listen(options.listen)
    runner, bound = _runner(options, calls, host, port)
    names = ", ".join(calls.shapes)
    workers = f"{options.workers} workers" if options.workers else f"{options.concurrency} threads"
    for skipped in calls.functions.skipped:
        print(f"not served: {skipped}", file=out)
    print(f"serving {len(calls.shapes)} functions of '{calls.functions.name}' ({names}) over {options.protocol} "
          f"on {host}:{bound} with {workers}", file=out, flush=True)
    task = asyncio.ensure_future(runner.run(stop.event))
    now = asyncio.ensure_future(stop.now.wait())
    await asyncio.wait({task, now}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():  # a second signal: no more grace
        calls.cut()
        runner.force()
        await asyncio.wait({task}, timeout=2.0)
    now.cancel()
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    return await calls.drain(0)


def _runner(options: Options, calls: Calls, host: str, port: int) -> Tuple[Any, int]:
    """The server for ``options.protocol`` (an object with ``run(stop)`` and ``force()``) and its port."""
    if options.protocol == "grpc":
        from .grpc_server import GrpcService
        from .proto import Messages

        service = GrpcService(calls, Messages(calls.functions.model, list(calls.shapes.values())), options)
        return service, service.bind(host, port)
    sock = _listen(host, port, options.backlog)
    bound = sock.getsockname()[1]
    if options.protocol == "msgpack-rpc":
        from .msgpack_rpc import MsgpackRpcServer

        return MsgpackRpcServer(calls, sock, options.max_connections, options.backlog, options.grace,
                                options.max_body), bound
    from .http import RestServer
    from .rest import RestApp

    return RestServer(RestApp(calls, options.max_body, options.body_timeout, options.grace), sock, options), bound


def _run(main: Any, uvloop: bool) -> int:
    """Run ``main`` on uvloop (libuv accepts and refuses connections sanely when out of descriptors; asyncio's own
    loop logs a traceback per pending connection there, ``backlog`` times a turn) or, for grpcio, on asyncio's."""
    if uvloop:
        import uvloop as _uvloop

        result: int = _uvloop.run(main)
        return result
    return asyncio.run(main)  # type: ignore[no-any-return]


def serve(target: str, options: Optional[Options] = None, out: Optional[TextIO] = None) -> int:
    """Serve every servable ``@function`` of ``target``; returns the exit status (0: stopped with nothing cut
    off). Threads still running user code past a drain end with the process."""
    out = out or sys.stdout
    options = options or Options()
    check(options)
    parse_listen(options.listen)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model = load_target(target).model()
    calls = Calls(Functions(model), Limits(options.call_timeout, options.concurrency, options.workers), target)
    try:
        status = _run(_serve(options, calls, out), uvloop=options.protocol != "grpc")
    except OSError as exc:
        raise UsageError(f"cannot listen on {options.listen}: {exc}") from None
    finally:
        calls.close()
    cut = "" if status == 0 else f" ({status} calls cut off)"
    print(f"stopped serving '{model.name}'{cut}", file=out, flush=True)
    if calls.busy_threads:  # a thread still runs user code: it must not keep the process alive
        out.flush()
        sys.stderr.flush()
        os._exit(1)
    return 0 if status == 0 else 1
