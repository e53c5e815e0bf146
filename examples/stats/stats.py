"""Numeric functions: mean, exponentially weighted mean, percentile of a group; a moving baseline per rule.

In an aggregate call each column argument arrives as the list of the group's values (nulls included);
a constant argument (``0.5`` in ``ewma(kwh, 0.5)``) arrives as a list too, one copy per row, and a
parameter that is not a list takes its first value. So declare columns as ``list[Optional[float]]``
and constants as plain ``float``:

    SELECT mean_of(kwh), ewma(kwh, 0.3), pctl(kwh, 95) FROM meters GROUP BY TumblingWindow(ss, 10)

``baseline_delta`` is a plain function that remembers: each call site of each rule keeps its own baseline in
``ctx.state``, which survives restarts of the rule, the plugin and eKuiper:

    SELECT kwh, baseline_delta(kwh, 0.1) AS jump FROM meters

Export it with ``python -m ekdsl export examples/stats/stats.py --zip``.
"""

from __future__ import annotations

import math
from typing import Optional

from ekdsl import Context, Plugin

plugin = Plugin("stats", version="1.1.0", author="ekdsl", description="Aggregate statistics for windows.")


def _numbers(values: list[Optional[float]]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


@plugin.function(aggregate=True, example="mean_of(kwh)")
def mean_of(values: list[Optional[float]]) -> Optional[float]:
    """Arithmetic mean of a group, nulls left out; null for an empty group."""
    nums = _numbers(values)
    return sum(nums) / len(nums) if nums else None


@plugin.function(aggregate=True, example="ewma(kwh, 0.3)")
def ewma(values: list[Optional[float]], alpha: float = 0.5) -> Optional[float]:
    """Exponentially weighted mean in arrival order: each value weighs ``alpha`` against the past."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    acc: Optional[float] = None
    for v in _numbers(values):
        acc = v if acc is None else alpha * v + (1 - alpha) * acc
    return acc


@plugin.function(aggregate=True, example="pctl(kwh, 95)")
def pctl(values: list[Optional[float]], q: float) -> Optional[float]:
    """The ``q``-th percentile (0-100) of a group, linearly interpolated."""
    if not 0 <= q <= 100:
        raise ValueError(f"q must be between 0 and 100, got {q}")
    nums = sorted(_numbers(values))
    if not nums:
        return None
    pos = (len(nums) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(nums) - 1)
    return nums[low] + (nums[high] - nums[low]) * (pos - low)


@plugin.function(example="baseline_delta(kwh, 0.1)")
def baseline_delta(ctx: Context, value: Optional[float], alpha: float = 0.1) -> Optional[float]:
    """How far ``value`` is from this rule's moving baseline (the exponentially weighted mean of the values
    before it, weighing each new one ``alpha``); null for the first value, and for a null value."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if value is None or not math.isfinite(value):
        return None
    base = ctx.state.get("baseline")
    ctx.state.put("baseline", value if base is None else alpha * value + (1 - alpha) * base)
    return None if base is None else value - base
