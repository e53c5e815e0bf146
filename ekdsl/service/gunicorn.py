"""A gunicorn worker class for the REST application: ``gunicorn -k ekdsl.service.gunicorn.Worker``.

It is uvicorn's worker (package ``uvicorn-worker``) with ekdsl's HTTP settings: the asyncio loop, httptools with a
deadline for each request head (``EKDSL_SERVICE_HEADER_TIMEOUT``), no websockets, the application's lifespan on (so
calls drain before the worker exits) and ``EKDSL_SERVICE_MAX_CONNECTIONS`` connections at once. gunicorn's own
settings keep their meaning: ``--workers``, ``--bind``, ``--backlog``, ``--keep-alive`` (the idle timeout),
``--graceful-timeout``, ``--max-requests``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Dict

from uvicorn_worker import UvicornWorker

from .http import head_timeout_protocol
from .options import from_env

__all__ = ["Worker"]

_OPTIONS = from_env(os.environ)


class Worker(UvicornWorker):  # type: ignore[misc]
    """uvicorn's gunicorn worker with ekdsl's HTTP settings."""

    CONFIG_KWARGS: ClassVar[Dict[str, Any]] = {
        "loop": "uvloop",
        "http": head_timeout_protocol(_OPTIONS.header_timeout),
        "ws": "none",
        "lifespan": "on",
        "limit_concurrency": _OPTIONS.max_connections,
        "timeout_graceful_shutdown": _OPTIONS.grace,
        "server_header": False,
        "date_header": False,
    }
