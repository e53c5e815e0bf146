"""Functions for the service benchmarks: a trivial one, and one that spends CPU in pure Python."""

from __future__ import annotations

from ekdsl import Plugin

plugin = Plugin("benchserve", version="1.0.0")


@plugin.function
def add(a: int, b: int) -> int:
    return a + b


@plugin.function
def burn(rounds: int) -> int:
    """``rounds`` turns of a pure-Python loop (it holds the GIL throughout, as model code in Python does)."""
    total = 0
    for i in range(rounds):
        total = (total + i * i) % 1000003
    return total
