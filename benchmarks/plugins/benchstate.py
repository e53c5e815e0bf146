"""A source that counts, saving its cursor in ctx.state after every row or not at all (benchmarks/state.py)."""

from __future__ import annotations

from typing import Iterator

from ekdsl import Context, Plugin

plugin = Plugin("benchstate", version="1.0.0")


@plugin.source
def count(ctx: Context, save: bool = False) -> Iterator[dict]:
    n = ctx.state.get("next", 0) if save else 0
    while True:
        yield {"n": n, "payload": "x" * 40}
        n += 1
        if save:
            ctx.state.put("next", n)
