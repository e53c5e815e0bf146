"""The plugin the mangos harness drives: a source, sinks that record what they get, and functions."""

from __future__ import annotations

import json
import time
from typing import Iterator

from ekdsl import Context, Plugin

plugin = Plugin("ekplug", version="0.0.1")


@plugin.source
def counter(ctx: Context, period: float = 0.01, pad: int = 0) -> Iterator[dict]:
    """Rows ``{"i": n}``, with a ``pad`` of that many characters when asked (large messages)."""
    n = 0
    while True:
        yield {"i": n, "pad": "x" * pad} if pad else {"i": n}
        n += 1
        ctx.sleep(period)


@plugin.sink
def record(data: bytes, path: str, fail: str = "") -> None:
    """Append the payload's length and head to ``path``; raise when the payload contains ``fail``."""
    if fail and fail.encode() in data:
        raise RuntimeError(f"refused a payload with {fail!r}")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"len": len(data), "head": data[:32].decode("latin-1")}) + "\n")


@plugin.function
def add(a: int, b: int = 10) -> int:
    return a + b


@plugin.function
def size(s: str) -> int:
    return len(s)


@plugin.function
def echo(s: str) -> str:
    return s


@plugin.function
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@plugin.function(aggregate=True)
def total(values: list[float]) -> float:
    return sum(values)


