"""eKuiper's configuration values as its Go code reads them: durations, and ``KUIPER__...`` environment overrides.

Durations (``pkg/cast`` ``ToTimeDurationHookFunc``): a number is milliseconds (cut to an integer), a string a Go
duration such as ``1.5s`` or ``1m30s``. Environment overrides (``internal/conf/load.go``): a variable named
``<FILE>__<KEY>__<KEY>`` (the yaml file's name upper-cased, ``__`` between levels) sets that key, lower-cased,
to the value typed as ``getValueType`` types it (a ``[a,b]`` list, an int, a bool, a float, else the text).
"""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping

__all__ = ["env_value", "go_duration", "overlay_env"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_INT = re.compile(r"[+-]?\d+\Z")
_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
          "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def go_duration(value: Any) -> float:
    """Seconds, as ``cast.ToTimeDurationHookFunc`` decodes a ``DurationConf``; ``ValueError`` if it cannot."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a duration, got unconvertible type '{type(value).__name__}'")
    if not isinstance(value, str):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"expected a duration, got {value}")
        return int(value) / 1000.0  # time.Duration(f) * time.Millisecond: the float is cut to an integer
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    parts = _PART.findall(body)
    if not body or "".join(n + u for n, u in parts) != body:
        raise ValueError(f'time: invalid duration "{value}"')
    return sign * sum(float(n) * _UNITS[u] for n, u in parts)


def _scalar(text: str) -> Any:
    if _INT.match(text):
        return int(text)
    if text in _BOOLS:
        return _BOOLS[text]
    try:
        return float(text)
    except ValueError:
        return text


def env_value(text: str) -> Any:
    """An environment variable's value typed as eKuiper's ``getValueType`` types it."""
    text = text.strip(" ")
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(v) for v in text.replace("[", "").replace("]", "").split(",")]
    return _scalar(text)


def overlay_env(config: Mapping[str, Any], env: Mapping[str, str], prefix: str = "KUIPER") -> Dict[str, Any]:
    """``config`` (keys lower-cased, as eKuiper normalizes them) with every ``<prefix>__A__B=value`` variable of
    ``env`` set at ``a.b``; a level that is not a mapping is replaced."""

    def lower(m: Mapping[str, Any]) -> Dict[str, Any]:
        return {str(k).lower(): lower(v) if isinstance(v, Mapping) else v for k, v in m.items()}

    out = lower(config)
    head = f"{prefix}__"
    for name, value in env.items():
        if not name.startswith(head):
            continue
        keys = name[len(head):].lower().split("__")
        node = out
        for key in keys[:-1]:
            nxt = node.get(key)
            if not isinstance(nxt, dict):
                nxt = node[key] = {}
            node = nxt
        node[keys[-1]] = env_value(value)
    return out
