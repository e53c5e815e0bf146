"""``ekdsl check`` for packages with requirements: their ``install.sh`` and their offline wheel bundle.

eKuiper runs a root ``install.sh`` with ``/bin/sh`` before it starts the plugin and aborts the install
when it fails; a package whose requirements it cannot install (no script, a syntax error, no wheel for
the machine) fails there, or worse, installs and then cannot start.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import TYPE_CHECKING, Dict, List, Optional

from ..errors import PackagingError
from .bundle import MANIFEST, split_versions, wheel_fits, wheel_tags
from .installer import INSTALL_SH, VENV_DIR, WHEELS_DIR
from .requirements import FILE_NAME, parse_line

if TYPE_CHECKING:
    from ..findings import Report
    from ..lint import Contents

__all__ = ["check_install"]

_HEAD = 1 << 16  # where the generated main script switches to .venv: its first lines


def check_install(files: Contents, executable: str, report: Report) -> None:
    """Add findings about ``install.sh``, ``requirements.txt`` and ``wheels/`` to ``report``."""
    names = files.files
    script = names.get(INSTALL_SH)
    has_reqs = FILE_NAME in names or any(n.startswith(WHEELS_DIR + "/") for n in names)
    wants_venv = executable in names and f"'{VENV_DIR}'".encode() in files.head(executable, _HEAD)
    reqs = files.data(FILE_NAME) if FILE_NAME in names else None
    check_requirements(reqs, report)
    if script is None:
        if has_reqs or wants_venv:
            report.error(f"the package has {FILE_NAME if has_reqs else 'a main script that runs in .venv'} but no "
                         f"{INSTALL_SH}: eKuiper installs nothing and the plugin cannot import its requirements; "
                         "export it again with ekdsl", lint=True)
        return
    data = files.data(INSTALL_SH)
    if data is not None:
        _check_script(data, script.mode, report)
    if reqs is not None:
        _check_bundle(files, reqs, report)


def _check_script(data: bytes, mode: int, report: Report) -> None:
    if b"\r\n" in data:
        report.error(f"{INSTALL_SH} has Windows line ends (CRLF): /bin/sh fails on them; save it with LF line ends")
        return
    if mode and not mode & 0o111:
        report.warn(f"{INSTALL_SH} is not executable (mode {oct(mode)}): eKuiper runs it with /bin/sh, but "
                    "'./install.sh' by hand fails; set its mode to 0o755")
    problem = _syntax(data)
    if problem:
        report.error(f"{INSTALL_SH} has a shell syntax error, so eKuiper's install fails: {problem}")


def _syntax(data: bytes) -> Optional[str]:
    if not os.path.exists("/bin/sh"):
        return None
    with tempfile.NamedTemporaryFile("wb", suffix=".sh", delete=False) as fh:
        fh.write(data)
    try:
        proc = subprocess.run(["/bin/sh", "-n", fh.name], capture_output=True, text=True, timeout=30)
    finally:
        os.unlink(fh.name)
    if proc.returncode == 0:
        return None
    return " ".join(proc.stderr.replace(fh.name, INSTALL_SH).split()) or f"sh -n exited {proc.returncode}"


def check_requirements(data: Optional[bytes], report: Report) -> None:
    """Each line of a package's ``requirements.txt`` as export validates it: refused lines become findings."""
    if data is None:
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        report.error(f"{FILE_NAME} is not UTF-8 ({exc}): pip cannot read it", lint=True)
        return
    for number, line in enumerate(text.splitlines(), 1):
        try:
            parse_line(line, f"{FILE_NAME}:{number}")
        except PackagingError as exc:
            report.error(str(exc), lint=True)


def _requirement_names(data: bytes) -> List[str]:
    """The names of the valid requirements without a marker (a marker may leave a platform out on purpose)."""
    names = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            req = parse_line(line)
        except PackagingError:
            continue  # check_requirements reports it
        if req is not None and ";" not in req.text:
            names.append(req.name)
    return names


def _check_bundle(files: Contents, reqs: bytes, report: Report) -> None:
    names = files.files
    wheels = sorted(n[len(WHEELS_DIR) + 1:] for n in names if n.startswith(WHEELS_DIR + "/") and n.endswith(".whl"))
    manifest_path = f"{WHEELS_DIR}/{MANIFEST}"
    if manifest_path not in names and not wheels:
        return
    if manifest_path not in names:
        report.warn(f"{WHEELS_DIR}/ has no {MANIFEST}: which platforms the wheels serve is unknown; "
                    "export with --vendor to write it")
        return
    manifest = files.json(manifest_path)
    try:
        platforms: Dict[str, List[str]] = {str(k): [str(n) for n in v] for k, v in manifest["platforms"].items()}
        version = str(manifest["python_version"])
    except (KeyError, TypeError, AttributeError) as exc:
        if manifest is not None:
            report.error(f"{manifest_path} is unreadable ({type(exc).__name__}: {exc}): export the plugin again",
                         lint=True)
        return
    for dist, found in sorted(split_versions(platforms).items()):
        chosen = ", ".join(f"{v} for {p}" for p, v in found.items())
        report.warn(f"{manifest_path}: '{dist}' is {chosen}: hosts of different platforms would run different "
                    "code; export again (export --vendor pins one version for every platform)")
    dists = _requirement_names(reqs)
    for platform, listed in platforms.items():
        for name in listed:
            if name not in wheels:
                report.error(f"{manifest_path} lists {name} for {platform}, but the package lacks it", lint=True)
        for dist in dists:
            if not any((wheel_tags(w) or ("",))[0] == dist and wheel_fits(w, platform, version) for w in wheels):
                report.error(f"requirement '{dist}' has no wheel for {platform}, Python {version}: install.sh fails "
                             f"there without network; export again with --vendor --platform {platform} "
                             f"--python-version {version}", lint=True)
