"""The REST application on Ray Serve: replicas over many processes and machines, with autoscaling.

One command deploys a plugin's functions, with Ray's own application builder::

    serve run ekdsl.service.ray_serve:app target=plugin.py num_replicas=2

or the same ``import_path`` and ``args`` in a Serve config file (``serve deploy``). eKuiper's REST executor calls
it exactly as it calls ``python -m ekdsl service --protocol rest``: Ray's HTTP proxy passes each request to a
replica, where :class:`~.rest.RestApp` answers it (same paths, bodies, status codes and deadlines).

Arguments (text from ``serve run``, or numbers from a config file):

- ``target`` (required): the plugin, as ``python -m ekdsl service`` takes it, found from each replica's working
  directory (a path that exists on every node, or a module shipped with Ray's ``--working-dir``).
- ``num_replicas``: a fixed number of replicas (default 1); or ``min_replicas``, ``max_replicas``,
  ``target_ongoing_requests`` and any other field of Ray's ``autoscaling_config`` (``upscale_delay_s`` ...) to
  autoscale between the bounds.
- ``max_ongoing_requests``: calls one replica takes at once (Ray's default when left out); Ray queues the rest.
- ``num_cpus``: CPUs Ray reserves per replica (default 1; a fraction packs more replicas on a node).
- ``call_timeout``, ``max_body``, ``body_timeout``, ``grace``: as ``python -m ekdsl service`` takes them.

Each replica imports the plugin once, when it starts. A call past its deadline is answered 504 by the replica; a
replica that dies fails the calls it had (Ray's proxy answers them 500) and Ray starts another in its place.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Dict, Mapping, NamedTuple, Optional

from ..errors import UsageError
from ..model import PluginModel
from ..plugin import load_target
from .asgi import rest_app
from .options import Options, from_values
from .rest import Receive, RestApp, Send

__all__ = ["RestReplica", "Settings", "app", "settings"]

OWN = ("call_timeout", "max_body", "body_timeout", "grace")
DEPLOYMENT = ("num_replicas", "max_ongoing_requests")


class Settings(NamedTuple):
    """What :func:`app` deploys: the target, ekdsl's call settings, and Ray's deployment options."""

    target: str
    options: Options
    deployment: Dict[str, Any]


def settings(args: Mapping[str, Any]) -> Settings:
    """Read the arguments of :func:`app`; a :class:`~ekdsl.errors.UsageError` names the one at fault."""
    from ray.serve.config import AutoscalingConfig

    model: Any = AutoscalingConfig  # pydantic 2's fields, or pydantic 1's (older Ray)
    scaling_fields = set(model.model_fields if hasattr(model, "model_fields") else model.__fields__)
    known = {"target", "num_cpus", *OWN, *DEPLOYMENT, *scaling_fields}
    unknown = sorted(set(args) - known)
    if unknown:
        raise UsageError(f"unknown argument {unknown[0]}=: ekdsl.service.ray_serve:app takes target= and "
                         f"{', '.join(sorted(known - {'target'}))}")
    target = args.get("target")
    if not isinstance(target, str) or not target:
        raise UsageError("no plugin to serve: pass target=plugin.py (or a module, module:attr)")
    options = from_values({k: v for k, v in args.items() if k in OWN}, lambda name: name)
    deployment: Dict[str, Any] = {"name": "ekdsl", "ray_actor_options": {"num_cpus": _number(args, "num_cpus", 1.0)}}
    scaling = {k: v for k, v in args.items() if k in scaling_fields}
    if scaling and "num_replicas" in args:
        raise UsageError(f"num_replicas= fixes the replicas, {sorted(scaling)[0]}= autoscales them: pass one or "
                         "the other")
    if scaling:
        try:
            deployment["autoscaling_config"] = model(**scaling)
        except ValueError as exc:
            raise UsageError(f"Ray refused the autoscaling arguments: {exc}") from None
    else:
        deployment["num_replicas"] = int(_number(args, "num_replicas", 1, whole=True))
    if "max_ongoing_requests" in args:
        deployment["max_ongoing_requests"] = int(_number(args, "max_ongoing_requests", 1, whole=True))
    return Settings(target, options, deployment)


def _number(args: Mapping[str, Any], name: str, default: float, whole: bool = False) -> float:
    value = args.get(name, default)
    try:
        number = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        number = -1.0
    if not math.isfinite(number) or number <= 0 or (whole and number != int(number)):
        kind = "a whole number" if whole else "a number"
        raise UsageError(f"{name}={value!r} must be {kind} above 0")
    return number


@functools.cache
def _model(target: str) -> PluginModel:
    """``target``'s model, imported once per process (each replica is one)."""
    return load_target(target).model()


class RestReplica:
    """The ASGI application each replica runs: it builds its :class:`~.rest.RestApp` once and hands it every
    request. Only the target and settings travel to the replicas."""

    def __init__(self, target: str, options: Options) -> None:
        self.target, self.options = target, options
        self._app: Optional[RestApp] = None

    def __getstate__(self) -> Dict[str, Any]:
        return {"target": self.target, "options": self.options, "_app": None}

    def build(self) -> RestApp:
        if self._app is None:
            self._app = rest_app(_model(self.target), self.target, self.options)
        return self._app

    async def __call__(self, scope: Dict[str, Any], receive: Receive, send: Send) -> None:
        await self.build()(scope, receive, send)


class _Ingress:
    """The deployment's class, made the ingress of a :class:`RestReplica` by Serve. It imports the plugin when Ray
    starts the replica, so an import error is the replica's (and the deployment's) error in ``serve status``."""

    def __init__(self, target: str) -> None:
        _model(target)


def app(args: Dict[str, Any]) -> Any:
    """Ray Serve's application builder (``serve run ekdsl.service.ray_serve:app target=plugin.py ...``)."""
    from ray import serve as _serve

    serve: Any = _serve
    chosen = settings(args)
    ingress = serve.ingress(RestReplica(chosen.target, chosen.options))(_Ingress)
    return serve.deployment(ingress, **chosen.deployment).bind(chosen.target)
