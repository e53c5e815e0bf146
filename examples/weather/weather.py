"""A richer example: every supported property type, choices, confKeys, and three kinds of function.

Export it with ``python -m ekdsl export examples/weather/weather.py --zip``.
"""

from __future__ import annotations

import enum
import json
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generator, Iterator, Literal, Optional, TypedDict

from ekdsl import Context, Param, Plugin, Row

plugin = Plugin(
    "weather",
    version="1.2.0",
    author="ekdsl",
    description="Simulated weather station with unit conversion and statistics.",
    help_url="https://github.com/lf-edge/ekuiper",
)


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Limits(TypedDict):
    low: float
    high: float


@dataclass(frozen=True)
class Retry:
    attempts: int = 3
    backoff: float = 0.5


DEFAULT_RETRY = Retry()
DEFAULT_SENSORS = ("t1", "t2")
DEFAULT_CHANNELS = (1, 2)


@plugin.source(conf_keys={"fast": {"period": 0.01, "mode": "burst"}, "one": {"count": 1}})
def readings(
    ctx: Context,
    datasource: str = "station-1",
    period: Annotated[float, Param(hint="Seconds between rows", label="Period (s)")] = 1.0,
    count: int = 0,
    mode: Literal["steady", "burst"] = "steady",
    unit: Unit = Unit.CELSIUS,
    noisy: bool = False,
    sensors: list[str] = DEFAULT_SENSORS,  # type: ignore[assignment]
    channels: list[int] = DEFAULT_CHANNELS,  # type: ignore[assignment]
    labels: Optional[dict[str, str]] = None,
    limits: Optional[Limits] = None,
    retry: Retry = DEFAULT_RETRY,
    token: bytes = b"",
    since: Optional[datetime] = None,
    extra: Any = None,
    seed: int = 7,
) -> Iterator[Any]:
    """Simulated readings from a weather station.

    Args:
        datasource: Station name, from the stream's DATASOURCE.
        count: Rows to emit before stopping; 0 means forever.
        mode: 'steady' emits one row per sensor, 'burst' a list of rows at once.
        unit: Temperature unit of the emitted values.
        noisy: Add random noise to every value.
        sensors: Sensor names to emit.
        channels: Channel numbers, copied into each row.
        labels: Extra key/values copied into every row.
        limits: Values outside these limits are flagged.
        retry: Retry policy (kept in meta, for show).
        token: Opaque token, passed in meta as text.
        since: Only for show: start time written into meta.
        extra: Anything; copied as is.
        seed: Random seed.
    """
    rng = random.Random(seed)
    emitted = 0
    while count == 0 or emitted < count:
        rows = []
        for name in sensors:
            value = 20.0 + (rng.random() if noisy else 0.0)
            if unit is Unit.FAHRENHEIT:
                value = value * 9 / 5 + 32
            row: dict[str, Any] = {"station": datasource, "sensor": name, "value": value,
                                   "channels": list(channels), **(labels or {})}
            if limits is not None:
                row["alarm"] = not limits["low"] <= value <= limits["high"]
            if extra is not None:
                row["extra"] = extra
            rows.append(row)
        meta = {"retries": retry.attempts, "token": token.decode(), "since": since.isoformat() if since else ""}
        if mode == "burst":
            yield rows
        else:
            for row in rows:
                yield Row(row, meta=meta)
        emitted += 1
        ctx.sleep(period)


@plugin.sink(hints={"path": "File the rows are appended to, one JSON object per line"})
def archive(path: str = "weather.jsonl", indent: Optional[int] = None) -> Generator[None, dict, None]:
    """Append every row to a JSON Lines file (opened once per rule, closed on stop)."""
    with open(path, "a", encoding="utf-8") as fh:
        while True:
            row = yield
            fh.write(json.dumps(row, indent=indent) + "\n")
            fh.flush()


@plugin.sink
def alert(rows: list[dict], ctx: Context, threshold: float = 30.0, field: str = "value") -> None:
    """Log a warning for each row of an event whose field exceeds the threshold."""
    for row in rows:
        if float(row.get(field, 0)) > threshold:
            ctx.logger.warning("%s=%s above %s", field, row[field], threshold)


@plugin.function
def c_to_f(celsius: float) -> float:
    """Convert Celsius to Fahrenheit.

    Args:
        celsius: Temperature in degrees Celsius.

    Returns:
        The temperature in degrees Fahrenheit.
    """
    return celsius * 9 / 5 + 32


@plugin.function(aggregate=True, example="spread(value)")
def spread(values: list[Optional[float]]) -> float:
    """Difference between the largest and the smallest value of a group.

    Parameters
    ----------
    values : list of float or None
        The group's values.

    Returns
    -------
    float
        max - min, or 0 for an empty group.
    """
    nums = [v for v in values if v is not None]
    return max(nums) - min(nums) if nums else 0.0


@plugin.function
def join_all(sep: str, *parts: Any) -> str:
    """Join any number of values with a separator.

    :param sep: The separator put between values.
    :param parts: The values to join.
    :returns: The joined text.
    """
    return sep.join(str(p) for p in parts)
