"""A test plugin served as an external service: scalars, lists, an object, none, a raise, a slow call, integers
past int64."""

from __future__ import annotations

import os
import time
from typing import Any, List

from typing_extensions import TypedDict

from ekdsl import Plugin

plugin = Plugin("svcfuncs", version="1.0.0")


class Stats(TypedDict):
    n: int
    mean: float


@plugin.function
def add(a: int, b: int) -> int:
    """Sum of two integers."""
    return a + b


@plugin.function
def shout(text: str) -> str:
    return text.upper() + "!"


@plugin.function
def tau() -> float:
    return 6.283185307179586


@plugin.function
def boom(x: int) -> int:
    raise RuntimeError(f"boom {x}")


@plugin.function
def leave(x: int) -> int:
    raise SystemExit(3)


@plugin.function
def stats(values: List[float]) -> Stats:
    return {"n": len(values), "mean": sum(values) / len(values) if values else 0.0}


@plugin.function
def scale(values: List[float], factor: float = 2.0) -> List[float]:
    return [v * factor for v in values]


@plugin.function
def flip(data: bytes) -> bytes:
    return data[::-1]


@plugin.function
def positive(x: float) -> bool:
    return x >= 0


@plugin.function
def ipow(base: int, exp: int) -> int:
    """``base ** exp``: past int64 for a large ``exp``."""
    return base ** exp


@plugin.function
def ipows(base: int, exps: List[int]) -> List[int]:
    return [base ** e for e in exps]


@plugin.function
def whoami() -> int:
    return os.getpid()


@plugin.function
def nap(marker: str, seconds: float) -> str:
    """Create ``marker`` (so a test knows the call started), then sleep."""
    with open(marker, "w", encoding="utf-8"):
        pass
    time.sleep(seconds)
    return "rested"


@plugin.function
def anything(x: Any) -> Any:
    return x


@plugin.function
def crash(code: int) -> int:
    """End the process that runs it at once (a worker, under ``--workers``)."""
    os._exit(code)


@plugin.function
async def snooze(marker: str, seconds: float) -> str:
    """The async ``nap``: create ``marker``, then await a sleep (cancellable)."""
    import asyncio

    with open(marker, "w", encoding="utf-8"):
        pass
    await asyncio.sleep(seconds)
    return "rested"
