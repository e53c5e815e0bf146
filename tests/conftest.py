"""Shared fixtures: user modules written to temporary files, the example paths."""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PYSAM = EXAMPLES / "pysam" / "pysam.py"
WEATHER = EXAMPLES / "weather" / "weather.py"
_counter = itertools.count()


@pytest.fixture
def make_module(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Write dedented source to a uniquely named module in tmp_path; return its path."""
    created: list[str] = []

    def make(source: str, name: str = "") -> Path:
        name = name or f"usermod_{os.getpid()}_{next(_counter)}"
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
        created.append(name)
        return path

    yield make
    for name in created:
        sys.modules.pop(name, None)


LAB = Path(__file__).resolve().parent / "plugins" / "lab.py"


def wait_for(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.01) -> object:
    """Poll ``predicate`` until it is truthy or ``timeout`` passes; return its last value."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def lines(path: Path) -> list:
    import json

    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Path]:
    """Export a plugin once per session; return its package folder."""
    from ekdsl import load_target
    from ekdsl.package import export

    cache: dict = {}

    def get(target: Path) -> Path:
        if target not in cache:
            out = tmp_path_factory.mktemp("export")
            model = load_target(str(target)).model()
            cache[target] = Path(export(model, str(out)).directory)
        return cache[target]

    return get


@pytest.fixture
def sockdir() -> Iterator[str]:
    """A short, private socket directory (Unix socket paths are limited to 107 bytes)."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="ek", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["native", "pynng"])
def transport(request: pytest.FixtureRequest) -> str:
    """The plugin's transport: every runtime test runs on both, always against a pynng host."""
    return str(request.param)


@pytest.fixture
def host(exported: Callable[[Path], Path], sockdir: str, transport: str) -> Iterator[Callable[..., object]]:
    """Start a Host for an example plugin, launched as eKuiper launches it; everything is killed after."""
    import os

    from ekdsl.host import Host

    hosts: list = []

    def start(target: Path = LAB, **kwargs: object) -> Host:
        pkg = exported(target)
        env = {**os.environ, "EKDSL_TRANSPORT": transport}
        h = Host(pkg.name, str(pkg / "main.py"), socket_dir=sockdir, init_timeout=30, env=env, **kwargs)
        hosts.append(h)
        h.start()
        return h

    yield start
    for h in hosts:
        h.close()


SDK_PYSAM = Path(__file__).resolve().parent / "sdk_plugins" / "pysam"


@contextlib.contextmanager
def shared(factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A directory every pytest-xdist worker of this run shares, held under an exclusive lock meanwhile."""
    import fcntl

    root = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' base directories sit side by side in the run's own
    path = root / name
    path.mkdir(exist_ok=True)
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def sdk_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Python with the official SDK (PyPI ekuiper 2.4.2, which pins pynng==0.8.1) in its own venv, made once
    per run. orjson is installed beside it, for the benchmark's ekdsl+orjson plugin (the SDK does not use it)."""
    import subprocess
    import venv

    with shared(tmp_path_factory, "sdk-venv") as path:
        python = str(path / "bin" / "python")
        if not (path / "ready").exists():
            venv.EnvBuilder(with_pip=False, clear=True).create(path)  # this pip installs into it: no ensurepip
            proc = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q",
                                   "--disable-pip-version-check", "ekuiper==2.4.2", "orjson"],
                                  capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                pytest.fail(f"cannot install the official SDK: {proc.stderr[-2000:]}")
            (path / "ready").touch()
    return python


@pytest.fixture
def official_sdk_alone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Held by every test that runs an official-SDK plugin: its sockets are fixed ``/tmp`` paths, so such tests
    run one at a time, whichever worker they land on."""
    with shared(tmp_path_factory, "official-sdk-sockets"):
        yield


SOAK_FIGURES: list = []  # a test appends its figures (text, or (label, text)); they travel in its report (also from
# an xdist worker)
_SHOWN: list = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    while SOAK_FIGURES:
        figure = SOAK_FIGURES.pop(0)
        report.user_properties.append(tuple(figure) if isinstance(figure, (tuple, list)) else ("reliability", figure))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _SHOWN.extend((key, value) for key, value in report.user_properties if key in ("reliability", "ray"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the soak and cycle figures (rows, losses, RSS, threads, fds) and the Ray Serve ones at the end of the
    run."""
    if _SHOWN:
        write = terminalreporter.write_line
        write("")
        for label, line in _SHOWN:
            write(f"{label}: {line}")


def start_stop_cycle(h: Any, out: Path) -> None:
    """Start a source and a sink of the lab plugin, use each once, stop both (eKuiper's order)."""
    src = h.start_source("ticker", {"period": 0.001})
    snk = h.start_sink("collect", {"path": str(out), "requireAck": True})
    src.rows(1)
    assert snk.send(b'{"i":1}') is None
    h.stop_source(src)
    h.stop_sink(snk)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Any]:
    """A redis-server of this test's own (skipped with one line where it cannot be installed); killed after."""
    from .redis_server import RedisServer, redis_or_skip

    server = RedisServer(tmp_path, redis_or_skip())
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def pysam_zip(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The bundled pysam example exported as a zip."""
    from ekdsl import load_target
    from ekdsl.package import export

    result = export(load_target(str(PYSAM)).model(),
                    str(tmp_path_factory.mktemp("dist")), make_zip=True)
    assert result.zip_path
    return result.zip_path
