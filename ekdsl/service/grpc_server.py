"""The ``grpc`` protocol on grpcio's asyncio server, from the schema ``export --service`` writes.

eKuiper's gRPC executor (``internal/service/executors.go``) dials the service once, finds each function's rpc by
name in the ``.proto`` and calls it with a 5 s deadline, converting SQL arguments to the request message's fields in
order and the reply back (a wrapper's value, a message as a map). Each rpc here awaits :meth:`.calls.Calls.call`
with the shorter of the client's deadline and the service's; errors are gRPC statuses with the call's error text.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import grpc

from .calls import Calls
from .functions import BAD_REQUEST, DEADLINE, FAILED, NOT_FOUND, UNAVAILABLE
from .options import Options
from .proto import Messages

__all__ = ["CODES", "GrpcService"]

log = logging.getLogger("ekdsl.service")

CODES = {BAD_REQUEST: grpc.StatusCode.INVALID_ARGUMENT, NOT_FOUND: grpc.StatusCode.UNIMPLEMENTED,
         FAILED: grpc.StatusCode.UNKNOWN, DEADLINE: grpc.StatusCode.DEADLINE_EXCEEDED,
         UNAVAILABLE: grpc.StatusCode.UNAVAILABLE}
MAX_STREAMS = 128  # rpcs at once on one connection


class GrpcService:
    """A grpcio asyncio server answering every function of ``calls`` as the rpcs of its schema."""

    def __init__(self, calls: Calls, messages: Messages, settings: Optional[Options] = None) -> None:
        settings = settings or Options()
        self.calls, self.messages, self.grace = calls, messages, settings.grace
        options: List[Tuple[str, Any]] = [
            ("grpc.max_receive_message_length", settings.max_body),
            ("grpc.max_concurrent_streams", MAX_STREAMS),
            ("grpc.max_connection_idle_ms", int(settings.idle_timeout * 1000)),
            ("grpc.server_handshake_timeout_ms", int(settings.header_timeout * 1000)),
            ("grpc.so_reuseport", 0),  # a second server on the same port is an error, not a silent split
        ]
        self._stopping: Set[asyncio.Future[Any]] = set()
        self.server = grpc.aio.server(options=options, maximum_concurrent_rpcs=settings.max_connections)
        handlers: Dict[str, grpc.RpcMethodHandler] = {
            method: grpc.unary_unary_rpc_method_handler(
                self._handler(method), request_deserializer=messages.request_class(method).FromString,
                response_serializer=messages.reply_class(method).SerializeToString)
            for method in messages.shapes
        }
        full_name = f"{messages.package}.{messages.service}"
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(full_name, handlers),))

    def bind(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (port 0 picks one); returns the port."""
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound: int = self.server.add_insecure_port(where)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {where}: {exc}") from None
        if not bound:
            raise OSError(f"cannot listen on {where}")
        return bound

    def _handler(self, method: str) -> Callable[[Any, grpc.aio.ServicerContext], Any]:
        messages, calls = self.messages, self.calls

        async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
            outcome = await calls.call(method, messages.args(method, request), timeout=context.time_remaining())
            if outcome.ok:
                try:
                    return messages.reply(method, outcome.value)
                except (TypeError, ValueError) as exc:
                    await context.abort(CODES[FAILED], f"{method}() result cannot be sent: {exc}")
            await context.abort(CODES[outcome.status], str(outcome.value))

        return handle

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; then refuse new rpcs and let those in flight answer for at most the grace
        period."""
        await self.server.start()
        try:
            await stop.wait()
        finally:
            drained = asyncio.ensure_future(self.calls.drain(self.grace))
            await self.server.stop(self.grace)
            await drained

    def force(self) -> None:
        """End the rpcs in flight now."""
        self._stopping.add(asyncio.ensure_future(self.server.stop(0)))
