"""The plugin process eKuiper launches: ``main(target, argv, name)``."""

from __future__ import annotations

import gc
import json
import logging
import sys
from typing import Optional, Sequence

from ..codec import SETTING_ERROR, json_backend
from ..errors import EkdslError
from ..model import PluginModel
from .logs import setup_logging
from .server import PluginServer, install_signal_handlers

__all__ = ["PluginServer", "main"]


def _load(target: str, log: logging.Logger) -> PluginModel:
    from ..plugin import load_target

    model = load_target(target).model(docs=False)
    setup_logging(model.name)
    gc.freeze()  # what start-up built lives as long as the process: keep it out of every collection
    log.info("plugin %s %s serving %d symbols (JSON: %s)", model.name, model.version, len(model.symbols),
             json_backend())
    return model


def main(target: str, argv: Optional[Sequence[str]] = None, name: Optional[str] = None) -> int:
    """Serve the plugin ``target`` to eKuiper until stopped; return the exit code.

    ``argv`` is what eKuiper passes after the script: ``['{"sendTimeout":1000}']``. With the plugin's
    ``name`` (the generated main script passes it), the plugin connects and sends its handshake first and
    imports ``target`` afterwards: a slow import does not count against eKuiper's ``initTimeout``, and an
    import error is the answer to every start command instead of a failed install after 60 s.
    """
    log = setup_logging(name or target.partition(":")[0].rsplit(".", 1)[-1])
    args = list(argv or [])
    if args:
        try:
            log.debug("launched with %s", json.loads(args[0]))
        except ValueError:
            log.warning("ignoring an argument that is not JSON: %r", args[0][:200])
    if SETTING_ERROR is not None:  # a wrong environment variable must not keep the plugin from serving
        log.warning("%s; using %s", SETTING_ERROR, json_backend())
    try:
        if name:
            server = PluginServer(None, log, name=name)
            install_signal_handlers(server)
            return server.serve(load=lambda: _load(target, log))
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


def _close_state() -> None:
    """Close the state stores the symbols opened (ekdsl.state is loaded only by a symbol that used it)."""
    store = sys.modules.get("ekdsl.state.store")
    if store is not None:
        store.close_default_stores()
