"""What eKuiper's rule planner does with a portable source's or sink's properties.

Sources (``internal/topo/planner/planner_source.go``): ``interval`` decodes to a duration (a number is
milliseconds, cut to an integer; a string is a Go duration); above zero a rate limiter keeps only the
latest row per interval (``internal/topo/node/rate_limit.go``), under 1 ms rule creation fails.
Sinks (``internal/topo/node/props.go ParseConf``): the reserved properties decode strictly into Go
fields; a value of another type makes rule creation fail.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Collection, Dict, List, Mapping, Optional, Tuple

from ..goconf import go_duration
from ..protocol import setting
from ..reserved import SINK_PROPERTIES, SOURCE_PROPERTIES, Reserved
from ..transport import Timeout
from .channels import HostError
from .host import SourceHandle

__all__ = ["RateLimitedSource", "RuleError", "go_duration", "plan_sink", "plan_source"]


class RuleError(HostError):
    """eKuiper would refuse to create the rule (the text is eKuiper's reason)."""


def plan_source(symbol: str, props: Mapping[str, Any], config: Mapping[str, Any]) -> Tuple[float, List[str]]:
    """``(rate-limit interval in seconds or 0, findings)`` for a stream on ``symbol``.

    ``props`` are the properties from the yaml and EXTRA, ``config`` what ``GetSourceConf`` made of them.
    Raises :class:`RuleError` where eKuiper refuses the rule.
    """
    findings: List[str] = []
    for prop in props:
        hit = SOURCE_PROPERTIES.get(str(prop).lower())
        if hit is not None:
            findings.append(f"source '{symbol}': property '{prop}' has a name eKuiper reserves ({hit.go}): "
                            f"{hit.effect}")
    key, value = setting(config, "interval")
    period = 0.0
    if key is not None:
        try:
            period = go_duration(value)
        except ValueError as exc:
            raise RuleError(f"source '{symbol}': 1 error(s) decoding: error decoding '{key}': {exc}") from None
    if 0 < period < 0.001:
        raise RuleError(f"source '{symbol}': interval should be larger than 1ms")
    merger = setting(config, "merger")[1] or setting(config, "mergeField")[1]
    if merger and period <= 0:
        raise RuleError(f"source '{symbol}': merger is set but rate limit is not required")
    if period > 0:
        findings.append(f"source '{symbol}': interval {value!r} makes eKuiper keep only the latest row every "
                        f"{period * 1000:g} ms; the emulator does the same")
    return (period if period > 0 else 0.0), findings


def _fits(r: Reserved, value: Any) -> bool:
    if r.gotype == "duration":
        try:
            go_duration(value)
        except ValueError:
            return False
        return True
    if r.gotype == "int":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if r.gotype == "bool":
        return isinstance(value, bool)
    if r.gotype == "strings":
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    if r.gotype == "map":
        return isinstance(value, Mapping)
    return isinstance(value, str)


_UNMODELLED = frozenset({"compression", "encryption"})  # eKuiper changes the payload; the emulator sends it as given


def plan_sink(symbol: str, config: Mapping[str, Any], declared: Collection[str] = ()) -> List[str]:
    """Findings for a rule action on ``symbol``, whose metadata declares the properties ``declared``;
    :class:`RuleError` where ``ParseConf`` fails.

    eKuiper's own settings in the action (``batchSize``, ``sendSingle``, ``requireAck``, ...) are rule options,
    not the plugin's: they are reported only when the sink declares a property of that name (eKuiper takes it
    over), or when the emulator does not do what eKuiper would (``compression``, ``encryption``).
    """
    findings: List[str] = []
    own = {str(name).lower() for name in declared}
    for key, value in config.items():
        hit = SINK_PROPERTIES.get(str(key).lower())
        if hit is None:
            continue
        if not _fits(hit, value):
            raise RuleError(f"fail to parse sink configuration: read properties fail with error: '{key}' "
                            f"expected type '{hit.gotype}', got {value!r}")
        if hit.name.lower() in own:
            findings.append(f"sink '{symbol}': its property '{key}' is read by eKuiper ({hit.go}): {hit.effect}; "
                            "the sink's own value never reaches it as meant")
        elif hit.name.lower() in _UNMODELLED:
            findings.append(f"sink '{symbol}': property '{key}' is read by eKuiper ({hit.go}): {hit.effect}; "
                            "the emulator sends the payload as given")
    return findings


class RateLimitedSource:
    """A source behind eKuiper's rate limiter: of the rows received between two ticks only the latest
    goes on. ``recv`` ticks by ``clock``; ``poll`` and ``tick`` let a test drive the ticks itself."""

    def __init__(self, handle: SourceHandle, interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.handle, self.interval, self.clock = handle, interval, clock
        self.control, self.channel = handle.control, handle.channel
        self.latest: Optional[Tuple[Optional[Dict[str, Any]], Dict[str, Any]]] = None
        self.dropped = 0
        self._next = clock() + interval

    def poll(self, timeout: float = 0.0) -> bool:
        """Take one row the plugin sent within ``timeout`` seconds; it replaces the latest kept one."""
        try:
            row = self.handle.recv(max(timeout, 0.001))
        except Timeout:
            return False
        if self.latest is not None:
            self.dropped += 1
        self.latest = row
        return True

    def tick(self) -> Optional[Tuple[Optional[Dict[str, Any]], Dict[str, Any]]]:
        """The ticker fires: the latest row goes on (``None`` if none came)."""
        row, self.latest = self.latest, None
        return row

    def recv(self, timeout: float = 5.0) -> Tuple[Optional[Dict[str, Any]], Dict[str, Any]]:
        """The next row the rate limiter lets through, ticking every ``interval`` by ``clock``."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.clock()
            if now >= self._next:
                missed = int((now - self._next) // self.interval)  # a Go ticker drops ticks it could not deliver
                self._next += self.interval * (missed + 1)
                row = self.tick()
                if row is not None:
                    return row
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("rate-limited source: no row within the timeout")
            self.poll(min(left, max(self._next - now, 0.001)))

    def rows(self, n: int, timeout: float = 10.0) -> List[Dict[str, Any]]:
        """The next ``n`` rows' messages that pass the rate limiter."""
        out: List[Dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            msg, _ = self.recv(max(0.01, deadline - time.monotonic()))
            out.append(msg or {})
        return out
