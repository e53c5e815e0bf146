"""``ekdsl check`` for packages with requirements: their ``install.sh`` and their offline wheel bundle.

eKuiper runs a root ``install.sh`` with ``/bin/sh`` before it starts the plugin and aborts the install
when it fails; a package whose requirements it cannot install (no script, a syntax error, no wheel for
the machine) fails there, or worse, installs and then cannot start.
"""

from __future__ import annotations

import json
import os
import posixpath
import subprocess
import tempfile
from typing import TYPE_CHECKING, Dict, List, Optional

from .bundle import MANIFEST, wheel_fits, wheel_tags
from .installer import INSTALL_SH, VENV_DIR, WHEELS_DIR
from .requirements import FILE_NAME, parse_line

if TYPE_CHECKING:
    from ..checks import Entry, Report

__all__ = ["check_install"]


def check_install(entries: List[Entry], executable: str, report: Report) -> None:
    """Add findings about ``install.sh``, ``requirements.txt`` and ``wheels/`` to ``report``."""
    by_name = {posixpath.normpath(e.name): e for e in entries if not e.is_dir}
    script = by_name.get(INSTALL_SH)
    has_reqs = FILE_NAME in by_name or any(n.startswith(WHEELS_DIR + "/") for n in by_name)
    main = by_name.get(executable)
    wants_venv = main is not None and f"'{VENV_DIR}'" in main.data.decode("utf-8", "replace")
    if script is None:
        if has_reqs or wants_venv:
            report.error(f"the package has {FILE_NAME if has_reqs else 'a main script that runs in .venv'} but no "
                         f"{INSTALL_SH}: eKuiper installs nothing and the plugin cannot import its requirements; "
                         "export it again with ekdsl", lint=True)
        return
    _check_script(script.data, script.mode, report)
    if FILE_NAME in by_name:
        _check_bundle(by_name, report)


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


def _check_bundle(by_name: Dict[str, Entry], report: Report) -> None:
    wheels = sorted(n[len(WHEELS_DIR) + 1:] for n in by_name if n.startswith(WHEELS_DIR + "/") and n.endswith(".whl"))
    manifest_entry = by_name.get(f"{WHEELS_DIR}/{MANIFEST}")
    if manifest_entry is None and not wheels:
        return
    if manifest_entry is None:
        report.warn(f"{WHEELS_DIR}/ has no {MANIFEST}: which platforms the wheels serve is unknown; "
                    "export with --vendor to write it")
        return
    try:
        manifest = json.loads(manifest_entry.data.decode("utf-8"))
        platforms: Dict[str, List[str]] = dict(manifest["platforms"])
        version = str(manifest["python_version"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        report.error(f"{WHEELS_DIR}/{MANIFEST} is unreadable ({exc}): export the plugin again", lint=True)
        return
    names = []
    for line in by_name[FILE_NAME].data.decode("utf-8", "replace").splitlines():
        try:
            req = parse_line(line)
        except Exception as exc:
            report.error(f"{FILE_NAME}: {exc}", lint=True)
            continue
        if req is not None and ";" not in req.text:  # a marker may leave a platform out on purpose
            names.append(req.name)
    for platform, listed in platforms.items():
        for name in listed:
            if name not in wheels:
                report.error(f"{WHEELS_DIR}/{MANIFEST} lists {name} for {platform}, but the package lacks it",
                             lint=True)
        for dist in names:
            if not any((wheel_tags(w) or ("",))[0] == dist and wheel_fits(w, platform, version) for w in wheels):
                report.error(f"requirement '{dist}' has no wheel for {platform}, Python {version}: install.sh fails "
                             f"there without network; export again with --vendor --platform {platform} "
                             f"--python-version {version}", lint=True)
