"""A test plugin whose symbols keep state: cursors, a sink that fails on request, per-call-site functions."""

from __future__ import annotations

import json
import os
from typing import Iterator, Set

from ekdsl import Context, Plugin, StateError

plugin = Plugin("stateful", version="0.0.1")
_failed_once: Set[int] = set()


@plugin.source
def numbered(ctx: Context, period: float = 0.001, limit: int = 0, shared: bool = False) -> Iterator[dict]:
    """Rows 0, 1, 2, ... resuming from the cursor; the cursor is saved once a row is sent."""
    n = ctx.state.get("next", 0)
    while limit == 0 or n < limit:
        yield {"n": n, "pid": os.getpid()}
        n += 1
        if shared:
            with ctx.state.transaction() as tx:
                tx.put("next", n)
            ctx.state.shared.incr("rows")
        else:
            ctx.state.put("next", n)
        ctx.sleep(period)


@plugin.source
def plain(ctx: Context, period: float = 0.001) -> Iterator[dict]:
    """Rows 0, 1, 2, ... from 0 at every start: no state."""
    n = 0
    while True:
        yield {"n": n, "pid": os.getpid()}
        n += 1
        ctx.sleep(period)


@plugin.source
def saver(ctx: Context, size: int = 1000, period: float = 0.01) -> Iterator[dict]:
    """Each row stores ``size`` bytes under its own key and says how the put went."""
    n = 0
    while True:
        try:
            ctx.state.put(f"blob{n % 50}", "x" * size)
            error = ""
        except StateError as exc:
            error = f"{type(exc).__name__}: {exc}"
        yield {"n": n, "error": error, "pid": os.getpid()}
        n += 1
        ctx.sleep(period)


@plugin.sink
def store_rows(row: dict, path: str = "rows.jsonl", fail: str = "") -> None:
    """Append each row to ``path``; a row whose ``n`` is listed in ``fail`` fails its first delivery."""
    n = row.get("n")
    if str(n) in fail.split(",") and n not in _failed_once:
        _failed_once.add(n)
        raise RuntimeError(f"row {n} fails once")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


@plugin.function
def running_mean(ctx: Context, x: float) -> float:
    """The mean of every x this call site of this rule was given."""
    with ctx.state.transaction() as tx:
        count = tx.incr("count")
        total = tx.incr("sum", x)
    return total / count


@plugin.function
def hits(ctx: Context) -> int:
    """Calls from any rule or call site: the plugin's shared counter."""
    return int(ctx.state.shared.incr("hits"))
