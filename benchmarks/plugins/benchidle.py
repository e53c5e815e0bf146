"""Idle instances, for benchmarks/instances.py: a source that sends one row then waits, a sink that drops."""

from __future__ import annotations

from typing import Iterator

from ekdsl import Context, Plugin

plugin = Plugin("benchidle", version="1.0.0")


@plugin.source
def once(ctx: Context) -> Iterator[dict]:
    yield {"n": 1}
    ctx.sleep(86400)


@plugin.sink
def drop(data: bytes) -> None:
    pass
