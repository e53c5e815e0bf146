"""The plugin process eKuiper launches: ``main(target, argv, name)``.

Its start is the handshake: with the plugin's name, :func:`main` dials eKuiper's control socket and greets it
having imported only :mod:`ekdsl.hello`; the transport, the codec, the server and the user's module come
afterwards.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the plugin's handshake needs this module
if TYPE_CHECKING:
    import _socket
    import logging
    from typing import Any, List, Optional, Sequence, Union

    from ..model import PluginModel
    from ..transport import Socket
    from .server import PluginServer

__all__ = ["PluginServer", "main"]

GREET_TIMEOUT = 1.0  # seconds the handshake may take to go out before the control loop tries again


def __getattr__(name: str) -> Any:
    if name == "PluginServer":  # imported when asked for: main() greets eKuiper before it imports the server
        from .server import PluginServer

        return PluginServer
    raise AttributeError(f"module 'ekdsl.runtime' has no attribute {name!r}")


def _load(target: str, log: logging.Logger) -> PluginModel:
    import gc

    from ..codec import json_backend
    from ..plugin import load_target
    from .logs import setup_logging

    model = load_target(target).model(docs=False)
    setup_logging(model.name)
    gc.freeze()  # what start-up built lives as long as the process: keep it out of every collection
    log.info("plugin %s %s serving %d symbols (JSON: %s)", model.name, model.version, len(model.symbols),
             json_backend())
    return model


class Greeting:
    """A control connection :func:`ekdsl.hello.greet` made, its handshake pending, for the transport to adopt."""

    __slots__ = ("frame", "rid", "sock", "url")

    def __init__(self, url: str, sock: _socket.socket, rid: int, frame: bytes) -> None:
        self.url, self.sock, self.rid, self.frame = url, sock, rid, frame

    def adopt(self) -> Socket:
        """The native REQ socket that carries on with this connection."""
        from ..transport.dialer import ReqSocket

        sock = ReqSocket.adopted(self.url, self.sock, self.rid, self.frame)
        sock.send_timeout = GREET_TIMEOUT
        return sock


def greet(name: str) -> Optional[Union[Socket, Greeting]]:
    """Dial eKuiper's control socket for plugin ``name`` and send the handshake, having imported only
    :mod:`ekdsl.hello` (or, with the pynng transport, that transport). Raises
    :class:`~ekdsl.errors.TransportError` when there is no one to dial; ``None`` when the handshake did not go
    out (the control loop then starts again from the dial)."""
    import os

    from ..wire import HANDSHAKE, TRANSPORT_ENV, control_url

    url = control_url(name)
    if os.environ.get(TRANSPORT_ENV, "").strip().lower() in ("", "native"):
        from ..hello import greet as hello

        try:
            made = hello(url[len("ipc://"):], HANDSHAKE, attempts=51, interval=0.1, timeout=GREET_TIMEOUT)
        except OSError as exc:
            from ..errors import TransportError

            raise TransportError(f"cannot dial {url}: {exc.strerror or exc}", url) from None
        return None if made is None else Greeting(url, *made)
    from ..errors import TransportError
    from ..transport import Timeout, open_socket

    sock = open_socket("req", url, attempts=51, interval=0.1, redial=False, send_timeout=GREET_TIMEOUT)
    try:
        sock.send(HANDSHAKE)
    except (Timeout, TransportError):
        sock.close()
        return None
    return sock


def hold_signals() -> List[int]:
    """Until the server can take them, SIGTERM and SIGINT are noted in the list returned: a stop that comes
    during start-up (after the handshake, while the runtime is imported) ends the plugin as one later does."""
    import _signal  # type: ignore[import-not-found]  # the C module: importing signal (its enums) takes 10 ms

    held: List[int] = []
    try:
        for sig in (_signal.SIGTERM, _signal.SIGINT):
            _signal.signal(sig, lambda signum, _frame: held.append(signum))
    except ValueError:  # not the main thread: signals are not ours to take
        pass
    return held


def main(target: str, argv: Optional[Sequence[str]] = None, name: Optional[str] = None) -> int:
    """Serve the plugin ``target`` to eKuiper until stopped; return the exit code.

    ``argv`` is what eKuiper passes after the script: ``['{"sendTimeout":1000}']``. With the plugin's
    ``name`` (the generated main script passes it), the plugin connects and sends its handshake first and
    imports ``target`` afterwards: a slow import does not count against eKuiper's ``initTimeout``, and an
    import error is the answer to every start command instead of a failed install after 60 s.
    """
    held = hold_signals() if name else []
    greeted: Optional[Union[Socket, Greeting]] = None
    failed: Optional[Exception] = None
    if name:
        try:
            greeted = greet(name)
        except Exception as exc:  # nobody to greet; errors.py is not imported before the handshake
            failed = exc
    from ..errors import EkdslError, TransportError

    unreachable: Optional[TransportError] = None
    if failed is not None:
        if not isinstance(failed, TransportError):
            raise failed
        unreachable = failed
    from .server import PluginServer, install_signal_handlers

    if isinstance(greeted, Greeting):
        greeted = greeted.adopt()

    log = _start_log(name or target.partition(":")[0].rsplit(".", 1)[-1], argv)
    try:
        if name:
            server = PluginServer(None, log, name=name)
            if unreachable is not None:
                return server.unreachable(unreachable)
            install_signal_handlers(server)
            if held:
                server.request_shutdown()
            return server.serve(load=lambda: _load(target, log), sock=greeted)
        try:
            model = _load(target, log)
        except EkdslError as exc:
            log.error("%s", exc)
            return 1
        server = PluginServer(model, log)
        install_signal_handlers(server)
        return server.serve()
    finally:
        _close_state()


def _start_log(plugin: str, argv: Optional[Sequence[str]]) -> logging.Logger:
    """Logging set up; eKuiper's argument and a wrong JSON setting logged."""
    import json

    from ..codec import SETTING_ERROR, json_backend
    from .logs import setup_logging

    log = setup_logging(plugin)
    args = list(argv or [])
    if args:
        try:
            log.debug("launched with %s", json.loads(args[0]))
        except ValueError:
            log.warning("ignoring an argument that is not JSON: %r", args[0][:200])
    if SETTING_ERROR is not None:  # a wrong environment variable must not keep the plugin from serving
        log.warning("%s; using %s", SETTING_ERROR, json_backend())
    return log


def _close_state() -> None:
    """Close the state stores the symbols opened (ekdsl.state is loaded only by a symbol that used it)."""
    store = sys.modules.get("ekdsl.state.store")
    if store is not None:
        store.close_default_stores()
