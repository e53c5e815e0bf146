"""``python -m ekdsl service``: serve a plugin's functions until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any, Optional, TextIO, Tuple

from ..errors import UsageError
from ..plugin import load_target
from .calls import open_calls

__all__ = ["parse_listen", "serve"]


def parse_listen(text: str) -> Tuple[str, int]:
    """``HOST:PORT`` → ``(host, port)``; port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen expects HOST:PORT such as 127.0.0.1:8000, got {text!r}")
    return host.strip("[]"), int(port)


def make_server(protocol: str, address: Tuple[str, int], calls: Any) -> Any:
    """A REST or msgpack-rpc server (not yet serving) for ``calls``."""
    if protocol == "rest":
        from .rest import RestServer

        return RestServer(address, calls)
    if protocol == "msgpack-rpc":
        from .msgpack_rpc import MsgpackRpcServer

        return MsgpackRpcServer(address, calls)
    raise UsageError(f"unknown protocol {protocol!r}: use rest or msgpack-rpc")


def serve(target: str, listen: str, protocol: str, workers: int = 1, out: Optional[TextIO] = None) -> int:
    """Serve every servable ``@function`` of ``target``; returns 0 after a graceful stop."""
    out = out or sys.stdout
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model = load_target(target).model()
    address = parse_listen(listen)
    calls = open_calls(target, model, workers)
    try:
        server = make_server(protocol, address, calls)
    except OSError as exc:
        calls.close()
        raise UsageError(f"cannot listen on {listen}: {exc}") from None
    host, port = server.server_address[:2]

    def stop(signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, name="service-stop", daemon=True).start()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}  # before "serving" is said
    for skipped in calls.skipped:
        print(f"not served: {skipped}", file=out)
    print(f"serving {len(calls.shapes)} functions of '{model.name}' ({', '.join(calls.shapes)}) over {protocol} "
          f"on {host}:{port} with {workers} worker{'s' if workers > 1 else ''}", file=out, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
        server.drain()
        server.server_close()  # joins the connections: calls in flight answer first
    finally:
        calls.close()
        for s, handler in previous.items():  # restored last: a second signal while draining changes nothing
            signal.signal(s, handler)
    print(f"stopped serving '{model.name}'", file=out, flush=True)
    return 0
