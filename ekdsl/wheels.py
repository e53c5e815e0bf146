"""Wheels carried inside a plugin package: their library files, unpacked next to the main script.

eKuiper's images have no compiler and often no network, so a plugin's dependencies (orjson, or
anything its own code imports) can travel in the zip. A wheel's files go to the package root, which
the generated main script puts first on ``sys.path``. A compiled wheel imports only on the platform
and Python it was built for (its tags say which); ekdsl's use of orjson falls back to the standard
library elsewhere.
"""

from __future__ import annotations

import os
import re
import zipfile
from typing import Dict, NamedTuple, Optional, Tuple

from .archive import open_package
from .errors import PackagingError

__all__ = ["Wheel", "read_wheel"]

_NAME = re.compile(r"(?P<dist>[^-\s]+)-(?P<version>[^-\s]+)(-\d[^-\s]*)?-(?P<tags>[^-\s]+-[^-\s]+-[^-\s]+)\.whl")
_LIB_DATA = ("purelib", "platlib")


class Wheel(NamedTuple):
    """One wheel's library files: zip path → (bytes, Unix mode)."""

    path: str
    dist: str
    version: str
    tags: str  # python-abi-platform, e.g. cp312-cp312-musllinux_1_2_aarch64
    files: Dict[str, Tuple[bytes, int]]

    @property
    def pure(self) -> bool:
        """True for a wheel that runs anywhere (``py3-none-any``)."""
        return self.tags.endswith("-none-any")


def read_wheel(path: str) -> Wheel:
    """Read ``path`` (a ``.whl``) into the files a plugin package carries; raise :class:`PackagingError`."""
    match = _NAME.fullmatch(os.path.basename(path))  # matched whole
    if not match:
        raise PackagingError(
            f"'{path}' is not a wheel file name (<dist>-<version>-<python>-<abi>-<platform>.whl): "
            "get one with 'pip download <package> --only-binary=:all: --no-deps'", path)
    files = {}
    total = 0
    try:
        with open_package(path) as pkg:
            for entry in pkg.entries:
                if entry.is_dir:
                    continue
                target = _target(entry.name, path)
                if target is not None:
                    data = pkg.read(entry, min(pkg.limits.entry_bytes, pkg.limits.total_bytes - total))
                    total += len(data)
                    files[target] = (data, _mode(entry.info))
    except PackagingError as exc:
        raise PackagingError(f"cannot read wheel: {exc}", path) from None
    if not files:
        raise PackagingError(f"wheel '{path}' holds no files", path)
    return Wheel(path, match["dist"], match["version"], match["tags"], dict(sorted(files.items())))


def _target(name: str, wheel: str) -> Optional[str]:
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise PackagingError(f"wheel '{wheel}' has an unsafe entry '{name}'", wheel)
    if parts[0].endswith(".data"):
        if len(parts) > 2 and parts[1] in _LIB_DATA:
            return "/".join(parts[2:])
        raise PackagingError(
            f"wheel '{wheel}' installs '{name}' outside the library (scripts, headers or data), "
            "which a plugin package cannot carry: vendor library wheels only", wheel)
    return name


def _mode(info: zipfile.ZipInfo) -> int:
    unix = (info.external_attr >> 16) & 0o777 if info.create_system == 3 else 0
    return 0o755 if unix & 0o111 else 0o644
