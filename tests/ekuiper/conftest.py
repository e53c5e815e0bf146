"""Fixtures of the real-server suite: the server, the installed test plugin, and per-test streams and rules.

Everything a test creates is named after the session's unique plugin name and deleted afterwards, so the
suite can run against a server that others use too.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from .rest import RestError, Server, read_lines, server_from_env, wait_for

HERE = Path(__file__).resolve().parent
PLUGIN_SOURCE = HERE / "e2eplug.py"


def export_zip(source: Path, out: Path, *extra: str) -> Path:
    """Export ``source`` with ``python -m ekdsl export --zip``; return the zip's path."""
    proc = subprocess.run([sys.executable, "-m", "ekdsl", "export", str(source), "-o", str(out), "--zip", *extra],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    zips = list(out.glob("*.zip"))
    assert len(zips) == 1, zips
    return zips[0]


@dataclass
class E2EPlugin:
    """The e2e plugin, installed under a unique name; ``sym('src')`` is a symbol's full name."""

    name: str
    zip_path: Path
    workdir: Path

    def sym(self, suffix: str) -> str:
        return self.name + suffix

    def build(self, version: str) -> Path:
        """A zip of the same plugin with another version string (for updates)."""
        folder = self.workdir / f"v{version}"
        folder.mkdir(exist_ok=True)
        text = PLUGIN_SOURCE.read_text(encoding="utf-8")
        renames = (('NAME = "e2eplug"', f'NAME = "{self.name}"'), ('VERSION = "1.0.0"', f'VERSION = "{version}"'))
        for old, new in renames:
            assert old in text, f"{PLUGIN_SOURCE.name} no longer has {old}"
            text = text.replace(old, new)
        src = folder / f"{self.name}.py"
        src.write_text(text, encoding="utf-8")
        return export_zip(src, folder / "dist")


@pytest.fixture(scope="session")
def server() -> Server:
    srv = server_from_env()
    assert srv is not None
    srv.ok("GET", "/ping")
    return srv


def _installed(server: Server, work: Path) -> Iterator[E2EPlugin]:
    name = "e2e" + uuid.uuid4().hex[:8]
    work.mkdir(parents=True, exist_ok=True)
    tp = E2EPlugin(name, Path(), work)
    tp.zip_path = tp.build("1.0.0")
    server.install(name, str(tp.zip_path))
    yield tp
    server.uninstall(name)


@pytest.fixture(scope="session")
def plugin(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EPlugin]:
    """The e2e plugin, installed once for the session."""
    yield from _installed(server, tmp_path_factory.mktemp("e2e"))


@pytest.fixture
def own_plugin(server: Server, tmp_path: Path) -> Iterator[E2EPlugin]:
    """A copy of the e2e plugin for one test (which may update, kill or delete it)."""
    yield from _installed(server, tmp_path / "plugin")


@dataclass
class Scope:
    """Streams and rules of one test, dropped at its end; sink files live in the test's tmp folder."""

    server: Server
    plugin: E2EPlugin
    tmp: Path
    prefix: str
    rules: List[str] = field(default_factory=list)
    streams: List[str] = field(default_factory=list)

    def stream(self, suffix: str, with_: str) -> str:
        name = f"{self.prefix}_{suffix}"
        self.server.stream(f"CREATE STREAM {name} () WITH ({with_})")
        self.streams.append(name)
        return name

    def source_stream(self, suffix: str, extra: str = "", source: str = "") -> str:
        """A stream of the plugin's source (or ``source``); ``extra`` adds to its WITH clause."""
        typ = source or self.plugin.sym("src")
        return self.stream(suffix, f'TYPE="{typ}", FORMAT="JSON"' + (f", {extra}" if extra else ""))

    def rule(self, suffix: str, sql: str, actions: List[Dict[str, Any]], **options: Any) -> str:
        rule_id = f"{self.prefix}_{suffix}"
        status, payload = self.server.rule(rule_id, sql, actions, **options)
        if status != 201:
            raise RestError(f"creating rule {rule_id} -> {status} {payload!r}")
        self.rules.append(rule_id)
        return rule_id

    def sink_file(self, suffix: str) -> Path:
        return self.tmp / f"{suffix}.jsonl"

    def rows(self, path: Path, n: int, timeout: float = 30.0) -> List[Any]:
        """Wait until the sink wrote at least ``n`` lines; return them all."""
        return wait_for(lambda: (lambda got: got if len(got) >= n else None)(read_lines(path)), timeout,
                        f"{n} lines in {path.name} (have {len(read_lines(path))})")

    def close(self) -> None:
        for rule_id in self.rules:
            self.server.drop_rule(rule_id)
        for name in self.streams:
            self.server.drop_stream(name)


@pytest.fixture
def ek(server: Server, plugin: E2EPlugin, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Scope]:
    short = "".join(c for c in request.node.name if c.isalnum())[-24:]
    scope = Scope(server, plugin, tmp_path, f"{plugin.name}_{short}")
    yield scope
    scope.close()


@pytest.fixture
def own_ek(server: Server, own_plugin: E2EPlugin, tmp_path: Path) -> Iterator[Scope]:
    """Like ``ek``, for the test's own copy of the plugin (dropped before the plugin is uninstalled)."""
    scope = Scope(server, own_plugin, tmp_path, own_plugin.name)
    yield scope
    scope.close()
