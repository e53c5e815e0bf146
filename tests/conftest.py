"""Shared fixtures: user modules written to temporary files, the example paths."""

from __future__ import annotations

import itertools
import os
import sys
import textwrap
from pathlib import Path
from typing import Callable, Iterator

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
