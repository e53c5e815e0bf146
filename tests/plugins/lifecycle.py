"""A test plugin for the process's life: rows that name their process, blocking property types, an import
that fails or is slow when the environment asks for it (``LIFECYCLE_IMPORT=raise`` or ``sleep:<seconds>``)."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Iterator

from ekdsl import Context, Plugin

_IMPORT = os.environ.get("LIFECYCLE_IMPORT", "")
if _IMPORT == "raise":
    raise RuntimeError("no sensor attached")
if _IMPORT.startswith("sleep:"):
    time.sleep(float(_IMPORT[len("sleep:"):]))

plugin = Plugin("lifecycle", version="0.0.1")


@dataclass
class Settings:
    """User code that runs while a start is converted: it may block, exit or raise."""

    delay: float = 0.0
    exit_code: int = -1
    fail: bool = False

    def __post_init__(self) -> None:
        if self.delay:
            time.sleep(self.delay)
        if self.exit_code >= 0:
            sys.exit(self.exit_code)
        if self.fail:
            raise ValueError("bad settings")


@plugin.source
def ticks(ctx: Context, period: float = 0.01, label: str = "") -> Iterator[dict]:
    n = 0
    while True:
        yield {"i": n, "label": label, "pid": os.getpid()}
        n += 1
        ctx.sleep(period)


@plugin.source
def configured(ctx: Context, settings: Settings) -> Iterator[dict]:
    while True:
        yield {"delay": settings.delay}
        ctx.sleep(0.01)


@plugin.source
def blocked() -> Iterator[dict]:
    time.sleep(3600)  # not interruptible: its stop can only wait, and give up
    yield {}


@plugin.sink
def collect(data: dict, path: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(data) + "\n")
