"""The plugin process eKuiper launches: ``main(target, argv)``."""

from __future__ import annotations

import gc
import json
from typing import Optional, Sequence

from ..codec import SETTING_ERROR, json_backend
from ..errors import EkdslError
from .logs import setup_logging
from .server import PluginServer, install_signal_handlers

__all__ = ["PluginServer", "main"]


def main(target: str, argv: Optional[Sequence[str]] = None) -> int:
    """Load ``target``, connect to eKuiper and serve until stopped; return the exit code.

    ``argv`` is what eKuiper passes after the script: ``['{"sendTimeout":1000}']``.
    """
    name = target.partition(":")[0].rsplit(".", 1)[-1]
    log = setup_logging(name)
    args = list(argv or [])
    if args:
        try:
            log.debug("launched with %s", json.loads(args[0]))
        except ValueError:
            log.warning("ignoring an argument that is not JSON: %r", args[0][:200])
    if SETTING_ERROR is not None:  # a wrong environment variable must not keep the plugin from serving
        log.warning("%s; using %s", SETTING_ERROR, json_backend())
    try:
        from ..plugin import load_target

        model = load_target(target).model(docs=False)
    except EkdslError as exc:
        log.error("%s", exc)
        return 1
    setup_logging(model.name)
    server = PluginServer(model, log)
    install_signal_handlers(server)
    gc.freeze()  # what start-up built lives as long as the process: keep it out of every collection
    log.info("plugin %s %s serving %d symbols (JSON: %s)", model.name, model.version, len(model.symbols),
             json_backend())
    return server.serve()
