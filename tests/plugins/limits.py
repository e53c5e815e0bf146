"""Constraints on properties and arguments, as Param keywords and annotated-types markers (test_constraints.py)."""

from __future__ import annotations

from typing import Annotated, Iterator, List

import annotated_types as at

from ekdsl import Context, Param, Plugin

plugin = Plugin("limits")


@plugin.source
def ticks(
    ctx: Context,
    rate: Annotated[float, Param(gt=0, le=1000, hint="Rows per second")] = 1.0,
    tag: Annotated[str, Param(pattern=r"^[a-z][a-z0-9_]*$", max_length=16)] = "t",
    burst: Annotated[int, at.Interval(ge=1, lt=100), at.MultipleOf(5)] = 5,
    sensors: Annotated[List[Annotated[str, at.MinLen(1)]], at.Len(1, 3)] = ["s1"],  # noqa: B006
) -> Iterator[dict]:
    while True:
        yield {"rate": rate, "tag": tag, "burst": burst, "sensors": sensors}
        ctx.sleep(1 / rate)


@plugin.function
def clamp(x: float, low: Annotated[float, at.Ge(0)], high: Annotated[float, Param(lt=1e6)] = 100.0) -> float:
    return min(max(x, low), high)


@plugin.sink
def shout(data: dict, level: Annotated[str, at.Predicate(str.isupper)] = "INFO") -> None:
    pass
