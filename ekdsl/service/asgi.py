"""The REST application for ASGI servers that load it themselves: uvicorn's command line, gunicorn, Ray Serve.

``app("plugin.py")`` (or ``app()`` with ``EKDSL_SERVICE_TARGET``) builds a :class:`~.rest.RestApp` with the settings
of ``EKDSL_SERVICE_<NAME>`` variables (:func:`.options.from_env`). Each server process that calls it loads the plugin
once; its calls drain when the server ends the application's lifespan.
"""

from __future__ import annotations

import os
from typing import Optional

from ..errors import UsageError
from ..model import PluginModel
from ..plugin import load_target
from .calls import Calls, Limits
from .functions import Functions
from .options import ENV_PREFIX, Options, from_env
from .rest import RestApp

__all__ = ["app", "rest_app"]


def app(target: Optional[str] = None) -> RestApp:
    """The REST application serving ``target``'s functions (default: ``$EKDSL_SERVICE_TARGET``)."""
    target = target or os.environ.get(ENV_PREFIX + "TARGET", "")
    if not target:
        raise UsageError(f"no plugin to serve: call app('plugin.py') or set {ENV_PREFIX}TARGET")
    return rest_app(load_target(target).model(), target, from_env(os.environ))


def rest_app(model: PluginModel, target: str, options: Options) -> RestApp:
    """The REST application serving ``model``'s functions (loaded from ``target``) with ``options``."""
    calls = Calls(Functions(model), Limits(options.call_timeout, options.concurrency, options.workers), target)
    return RestApp(calls, options.max_body, options.body_timeout, options.grace)
