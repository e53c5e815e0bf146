"""A test plugin whose symbols misbehave on request; sinks record what they get in files."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
import time
from pathlib import Path
from typing import Any, AsyncIterator, Generator, Iterator

from ekdsl import Context, Plugin, Row

plugin = Plugin("lab", version="0.0.1")


def _append(path: str, value: Any) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(value) + "\n")


@plugin.source
def ticker(ctx: Context, datasource: str = "", period: float = 0.01, count: int = 0, marker: str = "",
           label: str = "") -> Iterator[dict]:
    try:
        n = 0
        while count == 0 or n < count:
            yield {"i": n, "ds": datasource, "label": label, "rule": ctx.rule_id}
            n += 1
            ctx.sleep(period)
    finally:
        if marker:
            Path(marker).write_text("closed")


@plugin.source
async def aticker(period: float = 0.01, marker: str = "") -> AsyncIterator[dict]:
    try:
        n = 0
        while True:
            yield {"i": n}
            n += 1
            await asyncio.sleep(period)
    finally:
        if marker:
            Path(marker).write_text("closed")


@plugin.source
def broken(after: int = 2) -> Iterator[dict]:
    for i in range(after):
        yield {"i": i}
    raise ValueError("sensor unplugged")


@plugin.source
def weird(ctx: Context) -> Iterator[Any]:
    yield {"x": float("nan"), "t": dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc), "d": decimal.Decimal("1.5")}
    yield [{"a": 1}, {"a": 2}]
    yield Row({"b": 1}, meta={"topic": "t"})
    yield 42
    yield {"after": True}
    ctx.sleep(3600)


@plugin.sink
def collect(data: dict, path: str, fail_on: int = -1) -> None:
    if data.get("i") == fail_on:
        raise RuntimeError(f"cannot take row {fail_on}")
    _append(path, data)


@plugin.sink
def raw(data: bytes, path: str) -> None:
    _append(path, {"len": len(data), "head": data[:40].decode("latin-1")})


@plugin.sink
def events(data: list[dict], path: str) -> None:
    _append(path, data)


@plugin.sink
def text(data: str, path: str) -> None:
    _append(path, data)


@plugin.sink
def anything(data: Any, path: str) -> None:
    _append(path, data)


@plugin.sink
def gen_sink(path: str) -> Generator[None, dict, None]:
    _append(path, "open")
    try:
        while True:
            row = yield
            if row.get("boom"):
                raise RuntimeError("boom")
            _append(path, row)
    finally:
        _append(path, "close")


@plugin.sink
async def async_sink(data: Any, path: str) -> None:
    await asyncio.sleep(0)
    _append(path, data)


@plugin.function
def add(a: int, b: int = 10) -> int:
    return a + b


@plugin.function
def fail(x: Any) -> Any:
    raise RuntimeError("no good")


@plugin.function
def slow(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@plugin.function
def whoami(ctx: Context) -> dict:
    return {"rule": ctx.rule_id, "op": ctx.op_id, "instance": ctx.instance_id, "func": ctx.func_id}


@plugin.function
def stamp(x: bytes) -> Any:
    return {"bytes": x, "when": dt.date(2024, 5, 6), "dec": decimal.Decimal("2.50"), "set": {1}, "nan": float("nan")}


@plugin.function(aggregate=True)
def total(values: list[float]) -> float:
    return sum(v for v in values if v is not None)


@plugin.function
async def shout(s: str, *more: str) -> str:
    await asyncio.sleep(0)
    return " ".join((s, *more)).upper()


@plugin.source
def fixed(n: int = 3) -> Iterator[dict]:
    return iter([{"k": i} for i in range(n)])


@plugin.source
def setup_fail(device: str = "/dev/nothing") -> Iterator[dict]:
    raise OSError(f"cannot open {device}")
    yield {}  # pragma: no cover - makes this a generator


@plugin.source
def empty() -> Iterator[dict]:
    return
    yield {}  # pragma: no cover


@plugin.source
def hang(marker: str = "") -> Iterator[dict]:
    try:
        time.sleep(3600)  # not interruptible: stop must still answer at once
        yield {}
    finally:
        if marker:
            Path(marker).write_text("closed")


@plugin.sink
def teardown_fail(path: str) -> Generator[None, dict, None]:
    try:
        while True:
            _append(path, (yield))
    finally:
        raise RuntimeError("teardown exploded")


@plugin.sink
def slow_sink(data: dict, path: str, delay: float = 0.002) -> None:
    time.sleep(delay)
    _append(path, data)


@plugin.sink
def checker(path: str) -> Generator[None, dict, None]:
    """Counts rows and sequence gaps (rows carry "i" from ticker); writes the tally every 500 rows."""
    count, gaps, last = 0, 0, -1
    try:
        while True:
            row = yield
            i = row["i"]
            gaps += i != last + 1
            last = i
            count += 1
            if count % 500 == 0:
                Path(path).write_text(json.dumps({"count": count, "gaps": gaps, "last": last}))
    finally:
        Path(path).write_text(json.dumps({"count": count, "gaps": gaps, "last": last}))
