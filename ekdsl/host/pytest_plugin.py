"""pytest fixtures for plugin authors (registered through the ``pytest11`` entry point).

- ``ekuiper``: ``ekuiper(target, **options)`` returns a started :class:`~ekdsl.host.Emulator`, the plugin
  running in its own process, launched as eKuiper launches it; stopped after the test.
- ``ekdsl_symbols``: ``ekdsl_symbols(target, **options)`` returns an :class:`~ekdsl.host.InProcess` for fast
  unit tests of symbols, without a process or sockets (``state=`` as its constructor's).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, List

import pytest

from .emulator import Emulator
from .inprocess import InProcess


@pytest.fixture
def ekuiper() -> Iterator[Callable[..., Emulator]]:
    started: List[Emulator] = []

    def start(target: Any, **options: Any) -> Emulator:
        emu = Emulator(str(target), **options)
        started.append(emu)
        emu.start()
        return emu

    yield start
    for emu in started:
        emu.close()


@pytest.fixture
def ekdsl_symbols() -> Iterator[Callable[..., InProcess]]:
    opened: List[InProcess] = []

    def open_(target: Any, **options: Any) -> InProcess:
        ip = InProcess(target if not hasattr(target, "__fspath__") else str(target), **options)
        opened.append(ip)
        return ip

    yield open_
    for ip in opened:
        ip.close()
