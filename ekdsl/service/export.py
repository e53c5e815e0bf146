"""``export --service``: the service description and schema eKuiper registers with ``POST /services``.

The zip holds ``<name>.json`` at its root (the service is named after it) and ``schemas/<name>.proto``, which
eKuiper unpacks into ``data/services/`` (``internal/service/manager.go``). Output is deterministic.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, NamedTuple, Tuple
from urllib.parse import urlsplit

from ..errors import PackagingError
from ..model import PluginModel
from ..outfiles import write_file
from ..package import FILE_MODE, Files, write_zip
from .schema import NotServable, proto_text, shapes

__all__ = ["PROTOCOLS", "ServiceExport", "export_service", "service_address", "service_files"]

PROTOCOLS = {"rest": "http", "grpc": "tcp", "msgpack-rpc": "tcp"}  # protocol → the URL scheme eKuiper dials


class ServiceExport(NamedTuple):
    """What :func:`export_service` wrote, and the functions it left out (with why)."""

    zip_path: str
    files: Tuple[str, ...]
    skipped: Tuple[NotServable, ...]


def service_address(address: str, protocol: str) -> str:
    """``HOST:PORT`` or a URL → the URL eKuiper dials (``http://`` for rest, ``tcp://`` for grpc and msgpack-rpc)."""
    if protocol not in PROTOCOLS:
        raise PackagingError(f"unknown service protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}",
                             protocol)
    scheme = PROTOCOLS[protocol]
    url = address if "://" in address else f"{scheme}://{address}"
    parts = urlsplit(url)
    if parts.scheme not in (scheme, "https" if scheme == "http" else scheme) or not parts.hostname:
        raise PackagingError(f"service address {address!r} does not fit protocol {protocol}: give HOST:PORT "
                             f"or {scheme}://HOST:PORT", address)
    try:
        parts.port  # noqa: B018 (validates the port)
    except ValueError:
        raise PackagingError(f"service address {address!r} has an invalid port", address) from None
    return url.rstrip("/")


def service_files(model: PluginModel, address: str, protocol: str) -> Tuple[Files, List[NotServable]]:
    """The zip's files (path → (bytes, mode)) and the functions that cannot be served."""
    served, skipped = shapes(model)
    if not served:
        reasons = "; ".join(str(s) for s in skipped) or "it has no @function"
        raise PackagingError(f"plugin '{model.name}' has no function to serve: {reasons}", model.name)
    description: Dict[str, Any] = {
        "about": {
            "author": {k: model.author.get(k, "") for k in ("name", "email", "company", "website")},
            "helpUrl": model.help_url.to_json(),
            "description": model.description.to_json(),
        },
        "interfaces": {
            model.name: {
                "address": service_address(address, protocol),
                "protocol": protocol,
                "schemaType": "protobuf",
                "schemaFile": f"{model.name}.proto",
                "functions": [
                    {"name": s.symbol.name, "serviceName": s.method, "description": s.symbol.description.to_json()}
                    for s in served
                ],
            }
        },
    }
    text = json.dumps(description, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    files: Files = {
        f"{model.name}.json": (text.encode("utf-8"), FILE_MODE),
        f"schemas/{model.name}.proto": (proto_text(model, served).encode("utf-8"), FILE_MODE),
    }
    return files, skipped


def export_service(model: PluginModel, out: str, address: str, protocol: str) -> ServiceExport:
    """Write ``<out>/<name>.json``, ``<out>/schemas/<name>.proto`` and ``<out>/<name>.service.zip``."""
    files, skipped = service_files(model, address, protocol)
    for path, (data, _mode) in files.items():
        write_file(out, path, data)  # atomic; a link planted at the name is replaced, never followed
    zip_path = os.path.join(out, f"{model.name}.service.zip")
    write_zip(files, zip_path)
    return ServiceExport(zip_path, tuple(files), tuple(skipped))
