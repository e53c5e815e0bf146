"""A test plugin whose user code raises anything and returns or yields what JSON cannot hold."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import enum
import json
import pathlib
import uuid
from typing import Any, AsyncIterator, Iterator

from ekdsl import Context, Plugin, Row

plugin = Plugin("rough", version="0.0.1")


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class Color(enum.Enum):
    RED = "red"


def misbehave(kind: str) -> None:
    """Raise what ``kind`` names; return for anything else."""
    if kind == "exit":  # an argparse error in a helper: prints usage, then sys.exit(2)
        argparse.ArgumentParser(prog="helper").parse_args(["--nope"])
    if kind == "interrupt":
        raise KeyboardInterrupt
    if kind == "surrogate":
        raise ValueError("cannot store \udcff here")
    if kind == "unprintable":
        raise Unprintable()
    if kind == "runtime":
        raise RuntimeError("plain failure")


def _append(path: str, value: Any) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(value) + "\n")


@plugin.sink
def rough_sink(data: dict, path: str) -> None:
    misbehave(data.get("raise", ""))
    _append(path, data)


@plugin.sink
async def async_rough_sink(data: dict, path: str) -> None:
    await asyncio.sleep(0)
    misbehave(data.get("raise", ""))
    _append(path, data)


@plugin.function
def rough(kind: str) -> Any:
    misbehave(kind)
    cycle: list = []
    cycle.append(cycle)
    returns = {"uuid": uuid.UUID(int=7), "object": {"a": [object()]}, "cycle": cycle,
               "surrogate_result": "half \ud800"}
    return returns.get(kind, kind)


@plugin.function(aggregate=True)
def ewma(values: list[float], alpha: float) -> float:
    """Exponentially weighted mean of a column; ``alpha`` is a constant."""
    mean = values[0]
    for v in values[1:]:
        mean = alpha * v + (1 - alpha) * mean
    return mean


@plugin.function(aggregate=True)
def tag_count(values: list[Any], tag: str = "n") -> dict:
    return {tag: len(values)}


@plugin.function
def hexed(data: bytes) -> str:
    return data.hex()


_BAD = {
    "object": lambda: {"a": [0, 1, {"b": object()}]},
    "surrogate": lambda: {"text": "x\udc80y"},
    "cycle": lambda: (lambda d: (d.__setitem__("self", d), d)[1])({}),
    "hugeint": lambda: {"n": 10 ** 5000},
    "meta": lambda: Row({"a": 1}, meta=["not", "a", "dict"]),
}


@plugin.source
def rough_source(ctx: Context, kind: str = "object") -> Iterator[Any]:
    yield {"i": 0}
    yield _BAD[kind]()
    yield {"i": 2}
    yield {"uuid": uuid.UUID(int=1), "path": pathlib.PurePosixPath("/a/b"), "color": Color.RED,
           "delay": dt.timedelta(minutes=1, milliseconds=500)}
    ctx.sleep(3600)


@plugin.source
def exiting_source(kind: str = "exit") -> Iterator[dict]:
    yield {"i": 0}
    misbehave(kind)


@plugin.source
async def async_exiting_source(kind: str = "exit") -> AsyncIterator[dict]:
    yield {"i": 0}
    await asyncio.sleep(0)
    misbehave(kind)
