"""install.sh and the per-plugin venv, run for real: offline install, conflicting plugins side by side, failures.

Wheels are written by hand (tests/wheelkit.py) and pip's index is disabled, so nothing here needs network.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import List

import pytest

from ekdsl import PackagingError
from ekdsl.cli import main
from ekdsl.deploy.installer import run_install_script
from ekdsl.host import Emulator

from .wheelkit import make_wheel, offline_env, plain_python, version_wheel

PLUGIN = """
import sys
from ekdsl import Plugin

plugin = Plugin("{name}", requirements=["tinydep=={version}"])

@plugin.function
def {name}_version(x: str) -> str:
    import tinydep
    return tinydep.VERSION + "|" + sys.prefix
"""


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("links")
    version_wheel(folder, "tinydep", "1.0")
    version_wheel(folder, "tinydep", "2.0")
    return folder


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    return plain_python(tmp_path_factory, ("ekdsl", "tinydep"))


def vendored(tmp: Path, name: str, version: str, links: Path, *platform: str) -> str:
    src = tmp / f"src_{name}"
    src.mkdir()
    (src / f"{name}.py").write_text(PLUGIN.format(name=name, version=version), encoding="utf-8")
    argv = ["export", str(src / f"{name}.py"), "-o", str(tmp / "dist"), "--zip", "--vendor", "--find-links",
            str(links), "--no-index"]
    for p in platform:
        argv += ["--platform", p]
    assert main(argv) == 0
    sys.modules.pop(name, None)
    return str(tmp / "dist" / f"{name}.zip")


def test_offline_bundles_with_conflicting_requirements_run_side_by_side(tmp_path, links, bare_python):
    """Two plugins pinning different versions of one requirement, each installed from its own wheels (no network)
    into its own venv by install.sh, run at once on a Python that has neither ekdsl nor the requirement."""
    said: list = []
    one = Emulator(vendored(tmp_path, "side_one", "1.0", links), python=bare_python, install_env=offline_env(),
                   progress=said.append)  # install.sh
    assert said[0] == ("installing the requirements of 'side_one' as eKuiper does (install.sh builds its venv and "
                       "runs pip: this takes a while; -v shows pip's output)...")
    assert re.fullmatch(r"requirements installed in \d+\.\d s", said[1]) and len(said) == 2
    two = Emulator(vendored(tmp_path, "side_two", "2.0", links), python=bare_python, install_env=offline_env())
    try:
        plugin_dir = one.installed.plugin_dir
        assert (f"requirements installed into {plugin_dir}/.venv from the package's wheels (no network)"
                in one.install_output)
        one.start()
        two.start()
        ok, value = one.function("side_one_version").exec("x")
        assert ok and value == f"1.0|{os.path.realpath(os.path.join(plugin_dir, '.venv'))}"
        assert two.function("side_two_version").exec("")[1] == (
            f"2.0|{os.path.realpath(os.path.join(two.installed.plugin_dir, '.venv'))}")
        assert one.exit_code is None and two.exit_code is None  # both still running, each with its own tinydep
    finally:
        one.close()
        two.close()


def test_install_fails_clearly_when_no_wheel_fits_this_machine(tmp_path, bare_python):
    links = tmp_path / "links"
    make_wheel(links, "tinydep", "1.0", {"tinydep.py": ""}, tags="py3-none-musllinux_1_2_aarch64")
    package = vendored(tmp_path, "nofit", "1.0", links, "musllinux_1_2_aarch64")
    folder = tmp_path / "plugin"
    with zipfile.ZipFile(package) as zf:
        zf.extractall(folder)
    with pytest.raises(PackagingError) as info:
        run_install_script(str(folder), ["--python", bare_python], env=offline_env())
    message = str(info.value)
    assert message.startswith("fail to install plugin: err:exit status 1 stdout:")
    assert ("install.sh: plugin 'nofit': pip could not install the requirements from the package's wheels "
            "(output above): they do not fit this machine; export the plugin again with --vendor and also "
            "--platform ") in message
    assert re.search(rf"--platform (manylinux_2_\d+|musllinux_1_2)_{platform.machine()} --python-version 3\.\d+, ",
                     message) and '["--online"]' in message
    assert not (folder / ".venv").exists()  # no half-built environment left behind


def test_emulator_runs_install_sh_with_shell_paras(tmp_path, links):
    package = vendored(tmp_path, "paras", "1.0", links)
    for script, expect in (('printf "%s\\n" "$@" > "$(dirname "$0")/args.txt"\n', None), ("exit 3\n", "status 3")):
        edited = tmp_path / expect.replace(" ", "") if expect else tmp_path / "ok"
        edited.mkdir()
        with zipfile.ZipFile(package) as zin, zipfile.ZipFile(edited / "paras.zip", "w") as zout:
            for info in zin.infolist():
                zout.writestr(info, script.encode() if info.filename == "install.sh" else zin.read(info))
        if expect:
            with pytest.raises(PackagingError, match=f"fail to install plugin: err:exit {expect} stdout: stderr:"):
                Emulator(str(edited / "paras.zip"))
            continue
        emu = Emulator(str(edited / "paras.zip"), python="/some/python", shell_paras=["--online"])
        try:
            args = Path(emu.installed.plugin_dir, "args.txt").read_text().splitlines()
            assert args == ["--python", "/some/python", "--online"]
        finally:
            emu.close()


@pytest.fixture
def plugin_dir(tmp_path, links) -> Path:
    package = vendored(tmp_path, "prel", "1.0", links)
    folder = tmp_path / "plugin"
    with zipfile.ZipFile(package) as zf:
        zf.extractall(folder)
    return folder


def run_main(folder: Path, python: str = sys.executable) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EKDSL_PLUGIN_VENV"}
    return subprocess.run([python, "-u", str(folder / "main.py"), '{"sendTimeout":1000}'], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=60)


def test_main_without_venv_says_install_sh_has_not_run(plugin_dir):
    proc = run_main(plugin_dir)
    assert proc.returncode == 1
    assert proc.stderr == (f"plugin prel: no virtual environment at {plugin_dir}/.venv: install.sh has not run; "
                           "reinstall the plugin (eKuiper runs install.sh then), or run 'sh install.sh' in "
                           f"'{plugin_dir}'\n")


def test_main_reexecs_with_argv_kept(plugin_dir):
    record = plugin_dir / "argv.txt"
    fake = plugin_dir / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$0" "$@" "$EKDSL_PLUGIN_VENV" > "{record}"\n', encoding="utf-8")
    fake.chmod(0o755)
    proc = run_main(plugin_dir)
    assert proc.returncode == 0, proc.stderr
    assert record.read_text().splitlines() == [str(fake), "-u", str(plugin_dir / "main.py"), '{"sendTimeout":1000}',
                                               str(plugin_dir / ".venv")]


def test_main_stops_on_a_broken_venv_instead_of_looping(plugin_dir):
    fake = plugin_dir / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.symlink_to(plugin_dir / "gone" / "python3")
    proc = run_main(plugin_dir)
    assert proc.returncode == 1 and "points to a Python that no longer exists" in proc.stderr
    fake.unlink()
    fake.symlink_to(sys.executable)  # a Python, but not the venv's: no pyvenv.cfg, so sys.prefix is elsewhere
    proc = run_main(plugin_dir)
    assert proc.returncode == 1
    assert f"plugin prel: {fake} does not run inside {plugin_dir}/.venv (sys.prefix is " in proc.stderr
    assert "the environment is broken" in proc.stderr


CONDA = """#!/bin/sh
echo "$*" >> "{log}"
[ "$3" = "{env}" ] || exit 1
shift 3
case "$*" in
    "python -m pip"*) exit 0 ;;
esac
shift
exec "{python}" "$@"
"""


def test_conda_install_sh(tmp_path, links):
    src = tmp_path / "cnd.py"
    src.write_text(PLUGIN.format(name="cnd", version="1.0").replace(
        'requirements=["tinydep==1.0"]', 'requirements=["tinydep==1.0"], conda_env="ml-env"'), encoding="utf-8")
    assert main(["export", str(src), "-o", str(tmp_path / "dist"), "--vendor", "--find-links", str(links),
                 "--no-index"]) == 0
    sys.modules.pop("cnd", None)
    folder = tmp_path / "dist" / "cnd"
    bindir, log = tmp_path / "bin", tmp_path / "conda.log"
    bindir.mkdir()
    conda = bindir / "conda"
    path = f"{bindir}:/usr/bin:/bin"
    for env_name, ok in (("ml-env", True), ("other", False)):
        conda.write_text(CONDA.format(log=log, env=env_name, python=sys.executable), encoding="utf-8")
        conda.chmod(0o755)
        if ok:
            out = run_install_script(str(folder), env={"PATH": path})
            assert "requirements installed into conda environment 'ml-env'" in out
            run_install_script(str(folder), ["--online", "--index-url", "https://mirror.example/simple"],
                               env={"PATH": path})
            pip = [line for line in log.read_text().splitlines() if " -m pip " in line]
            head = f"run -n ml-env python -m pip install --no-input -r {folder}/requirements.txt"
            assert pip == [f"{head} --no-index --only-binary=:all: --find-links {folder}/wheels",
                           f"{head} --find-links {folder}/wheels --index-url https://mirror.example/simple"]
        else:
            with pytest.raises(PackagingError, match="conda environment 'ml-env' is missing or has no Python 3.9"):
                run_install_script(str(folder), env={"PATH": path})
    conda.unlink()
    with pytest.raises(PackagingError, match="conda is not on the PATH eKuiper runs with"):
        run_install_script(str(folder), env={"PATH": path})


def test_dev_shows_the_requirements_install_as_it_goes(tmp_path, links):
    package = vendored(tmp_path, "devreq", "1.0", links)
    argv = [sys.executable, "-m", "ekdsl", "dev", package, "-v", "--socket-dir", str(tmp_path), "function",
            "devreq_version", "x"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=offline_env()).stdout.splitlines()
    assert out[0] == ("installing the requirements of 'devreq' as eKuiper does (install.sh builds its venv and runs "
                      "pip: this takes a while)...")
    done = next(i for i, line in enumerate(out) if line.startswith("requirements installed in"))
    pip = out[1:done]  # pip's own lines, shown as they come
    assert any("tinydep" in line for line in pip), out
    assert pip[-1].startswith("  | install.sh: plugin 'devreq': requirements installed into ")
    assert all(line.startswith("  | ") for line in pip)
    assert out[done + 1].startswith("devreq 1.0.0 (python): handshake in ")


def test_a_script_past_its_timeout_ends_with_everything_it_started(tmp_path):
    """The script and what it started (pip, in a real one) are killed at the timeout, not left writing the venv;
    a failing display does not stop the pipes from draining."""
    marker = tmp_path / "child.pid"
    (tmp_path / "install.sh").write_text(f"sleep 300 &\necho $! > {marker}\necho started\nwait\n")
    shown: List[str] = []

    def echo(line: str) -> None:
        shown.append(line)
        raise OSError("display gone")

    with pytest.raises(PackagingError, match="fail to install plugin: err:Command"):
        run_install_script(str(tmp_path), timeout=1.0, echo=echo)
    assert shown == ["started"]
    child = int(marker.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
