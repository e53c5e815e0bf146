"""The ekdsl side of the benchmark: minimal symbols, equivalent to benchsdk and benchraw."""

from typing import Any, Iterator

from ekdsl import Plugin

plugin = Plugin("benchek", version="1")


@plugin.source
def src(size: int = 40) -> Iterator[dict]:
    row = {"name": "bench", "value": 2021, "pad": "x" * max(0, size - 40)}
    while True:
        yield row


@plugin.sink
def snk(data: bytes) -> None:
    pass


@plugin.function
def echo(x: Any) -> Any:
    return x


@plugin.function(aggregate=True)
def agg(values: list) -> float:
    return float(sum(values))
