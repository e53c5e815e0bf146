"""Offline bundles: the wheels of a plugin's requirements, downloaded per target platform into the package.

``pip download --only-binary=:all: --platform TAG --python-version X.Y`` resolves the requirements once
per platform (so each platform's set is complete on its own), then again with one version pinned for every
platform where pip chose different ones (a newer numpy may drop an older platform); the wheels go to
``wheels/`` in the package, with ``wheels/bundle.json`` recording which files serve which platform.
``install.sh`` installs from there with ``--no-index --find-links``. A requirement published only as a source
distribution has no wheel to carry: it is refused, with how to build one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from ..errors import PackagingError
from .requirements import Requirement, file_text, normalize

__all__ = ["MANIFEST", "NATIVE", "Bundle", "download", "platform_fits", "split_versions", "wheel_fits", "wheel_tags"]

MANIFEST = "bundle.json"
NATIVE = "native"
_WHEEL = re.compile(
    r"^(?P<dist>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$")
_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_PLAT = re.compile(r"(?P<kind>manylinux|musllinux)_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>.+)")  # matched whole
_PY = re.compile(r"(?P<impl>py|cp)(?P<major>\d)(?P<minor>\d*)")


class Bundle(NamedTuple):
    """Downloaded wheels: file name → bytes, and the file names each platform installs."""

    python_version: str
    platforms: Dict[str, Tuple[str, ...]]
    wheels: Dict[str, bytes]

    def manifest(self) -> str:
        """``wheels/bundle.json``: what ``ekdsl check`` verifies."""
        data = {"python_version": self.python_version,
                "platforms": {k: list(v) for k, v in sorted(self.platforms.items())}}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


def wheel_tags(filename: str) -> Optional[Tuple[str, str, str, str]]:
    """``(normalised dist, python tags, abi tags, platform tags)`` of a wheel file name, or ``None``."""
    match = _WHEEL.match(filename)
    if not match:
        return None
    return normalize(match["dist"]), match["py"], match["abi"], match["plat"]


def _glibc(tag: str) -> Optional[Tuple[str, int, int, str]]:
    for legacy, (major, minor) in _LEGACY.items():
        if tag.startswith(legacy + "_"):
            return "manylinux", major, minor, tag[len(legacy) + 1:]
    match = _PLAT.fullmatch(tag)
    if match:
        return match["kind"], int(match["major"]), int(match["minor"]), match["arch"]
    return None


def platform_fits(wheel_platform: str, target: str) -> bool:
    """True if a wheel built for ``wheel_platform`` installs on ``target`` (a ``--platform`` tag)."""
    if wheel_platform == "any" or target == NATIVE or wheel_platform == target:
        return True
    have, want = _glibc(wheel_platform), _glibc(target)
    if have is None or want is None:
        return False
    return have[0] == want[0] and have[3] == want[3] and have[1:3] <= want[1:3]


def _python_fits(py: str, abi: str, version: str) -> bool:
    if not version:
        return True
    major, minor = (int(p) for p in version.split(".")[:2])
    for tag in py.split("."):
        match = _PY.fullmatch(tag)
        if not match or int(match["major"]) != major:
            continue
        if not match["minor"]:
            return True
        tag_minor = int(match["minor"])
        if tag_minor == minor or (tag_minor < minor and (match["impl"] == "py" or "abi3" in abi.split("."))):
            return True
    return False


def wheel_fits(filename: str, platform: str, python_version: str) -> bool:
    """True if the wheel named ``filename`` installs on ``platform`` with Python ``python_version``."""
    tags = wheel_tags(filename)
    if tags is None:
        return False
    _, py, abi, plat = tags
    return _python_fits(py, abi, python_version) and any(platform_fits(p, platform) for p in plat.split("."))


def _pip_download(reqfile: str, dest: str, platform: str, python_version: str,
                  find_links: Sequence[str], no_index: bool, pins: str = "") -> None:
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
            "--only-binary=:all:", "--python-version", python_version, "-d", dest, "-r", reqfile]
    if pins:
        argv += ["-c", pins]
    if platform != NATIVE:
        argv += ["--platform", platform]
    for link in find_links:
        argv += ["--find-links", os.path.abspath(link)]
    if no_index:
        argv.append("--no-index")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PackagingError(f"cannot run pip download: {exc}") from None
    if proc.returncode != 0:
        raise PackagingError(_explain(proc.stderr or proc.stdout, platform, python_version), reqfile)


def _explain(output: str, platform: str, python_version: str) -> str:
    errors = [line[len("ERROR: "):] for line in output.splitlines() if line.startswith("ERROR: ")]
    target = f"platform {platform}, Python {python_version}"
    missing = re.search(r"No matching distribution found for (\S+)", output)
    if missing:
        return (f"requirement '{missing.group(1)}' has no wheel for {target} (pip: {errors[0] if errors else ''}): "
                "it is published only as source, or not for this platform/Python; build a wheel for the target "
                "('pip wheel <requirement> -w wheels' on such a machine) and export with --find-links wheels, "
                "or leave that --platform out")
    tail = "; ".join(errors) or " ".join(output.strip().splitlines()[-3:])
    return f"pip download for {target} failed: {tail}"


def download(requirements: Sequence[Requirement], platforms: Sequence[str] = (), python_version: str = "", *,
             find_links: Sequence[str] = (), no_index: bool = False) -> Bundle:
    """Download the wheels of ``requirements`` for each platform (``native``: this machine's)."""
    if not requirements:
        raise PackagingError("--vendor has nothing to download: the plugin declares no requirements "
                             "(Plugin(requirements=[...]) or a requirements.txt beside its module)")
    version = python_version or f"{sys.version_info[0]}.{sys.version_info[1]}"
    if not re.fullmatch(r"3\.\d+", version):
        raise PackagingError(f"--python-version {python_version!r} is not of the form 3.X, e.g. 3.12")
    for platform in platforms:
        if not re.fullmatch(r"[A-Za-z0-9_.]+", platform):
            raise PackagingError(f"--platform {platform!r} is not a platform tag, e.g. manylinux2014_x86_64")
    targets = list(dict.fromkeys(platforms)) or [NATIVE]
    with tempfile.TemporaryDirectory(prefix="ekdsl-vendor-") as tmp:
        reqfile = os.path.join(tmp, "requirements.txt")
        with open(reqfile, "w", encoding="utf-8") as fh:
            fh.write(file_text(requirements))
        per_platform, wheels = _download_each(tmp, reqfile, targets, version, find_links, no_index)
        split = split_versions(per_platform)
        if split:
            per_platform, wheels = _one_version(tmp, reqfile, targets, version, find_links, no_index, split)
    return Bundle(version, per_platform, dict(sorted(wheels.items())))


def _download_each(tmp: str, reqfile: str, targets: Sequence[str], version: str, find_links: Sequence[str],
                   no_index: bool, pins: str = "") -> Tuple[Dict[str, Tuple[str, ...]], Dict[str, bytes]]:
    """Each platform's wheel names, and every wheel's bytes; ``pins``: a pip constraints file."""
    wheels: Dict[str, bytes] = {}
    per_platform: Dict[str, Tuple[str, ...]] = {}
    for platform in targets:
        dest = tempfile.mkdtemp(dir=tmp)
        _pip_download(reqfile, dest, platform, version, find_links, no_index, pins)
        names = sorted(n for n in os.listdir(dest) if n.endswith(".whl"))
        _refuse_misfits(names, platform, version)
        per_platform[platform] = tuple(names)
        for name in names:
            with open(os.path.join(dest, name), "rb") as fh:
                wheels[name] = fh.read()
    return per_platform, wheels


def split_versions(platforms: Mapping[str, Sequence[str]]) -> Dict[str, Dict[str, str]]:
    """The distributions whose wheels differ in version between platforms: dist → {platform: version}."""
    seen: Dict[str, Dict[str, str]] = {}
    for platform, names in platforms.items():
        for name in names:
            match = _WHEEL.match(name)
            if match:
                seen.setdefault(normalize(match["dist"]), {})[platform] = match["version"]
    return {dist: found for dist, found in seen.items() if len(set(found.values())) > 1}


def _release(version: str) -> Tuple[Tuple[int, ...], str]:
    """A sort key: the release numbers first (``2.10`` after ``2.9``), then the text."""
    numbers = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(n) for n in numbers.group(0).split(".")) if numbers else (), version


def _one_version(tmp: str, reqfile: str, targets: Sequence[str], version: str, find_links: Sequence[str],
                 no_index: bool, split: Dict[str, Dict[str, str]]
                 ) -> Tuple[Dict[str, Tuple[str, ...]], Dict[str, bytes]]:
    """Download again with each split distribution pinned to one version for every platform: the oldest pip chose
    (it has wheels for at least one platform, and the newer ones often drop older platforms), then the newest;
    refuse when neither resolves everywhere."""
    tried = []
    for pick in (min, max):
        pins = {dist: pick(found.values(), key=_release) for dist, found in split.items()}
        if pins in tried:
            continue
        tried.append(pins)
        path = os.path.join(tmp, f"pins{len(tried)}.txt")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("".join(f"{dist}=={v}\n" for dist, v in sorted(pins.items())))
        try:
            per_platform, wheels = _download_each(tmp, reqfile, targets, version, find_links, no_index, path)
        except PackagingError:
            continue
        if not split_versions(per_platform):
            return per_platform, wheels
    dist, found = sorted(split.items())[0]
    chosen = ", ".join(f"{v} for {p}" for p, v in found.items())
    raise PackagingError(
        f"requirement '{dist}' resolves to different versions per platform ({chosen}), and no one version of it has "
        f"wheels for every platform, Python {version}: hosts would run different code. Pin a version that has "
        f"wheels for all of them in the requirement ('{dist}==...'), or export each platform on its own")


def _refuse_misfits(names: List[str], platform: str, version: str) -> None:
    for name in names:
        if not wheel_fits(name, platform, version):
            raise PackagingError(f"pip chose '{name}' for platform {platform}, Python {version}, but its tags do "
                                 "not fit it: remove the wheel from the --find-links folder or pick a compatible "
                                 "version of that requirement")
