"""What ``ctx.state`` stores: string keys, and values as JSON bytes (the values eKuiper's JSON carries, plus the
ones ekdsl converts for rows: datetimes become RFC 3339 text, bytes base64, ``NaN`` null, ...)."""

from __future__ import annotations

from typing import Any, Optional, Tuple, Union

from ..codec import dumps, find_unencodable, loads
from ..errors import StateError, StoreError

__all__ = ["INT64", "add", "check_key", "decode", "encode"]

INT64 = (-(2**63), 2**63 - 1)  # the integers eKuiper's JSON (Go int64) and Redis carry
Number = Union[int, float]


def check_key(key: Any, operation: str) -> str:
    """``key`` if it is a non-empty ``str`` that UTF-8 can write, else :class:`StateError`."""
    if not isinstance(key, str):
        raise StateError(f"state.{operation}: keys are str, got {type(key).__name__} {key!r:.80}: use str(key)",
                         operation=operation, key=key)
    if not key:
        raise StateError(f"state.{operation}: the key is empty: name it", operation=operation, key=key)
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StateError(f"state.{operation}: key {key!r:.80} holds a lone surrogate at index {exc.start}, which "
                         "no store can write", operation=operation, key=key) from None
    return key


def encode(value: Any, key: str, operation: str = "put") -> bytes:
    """``value`` as JSON bytes; :class:`StateError` naming where, for a value JSON cannot hold."""
    try:
        return dumps(value)
    except BaseException:  # TypeError, UnicodeEncodeError, RecursionError, ValueError: say where and what
        found = find_unencodable(value, "value")
    where, what = found if found else ("value", "a value whose encoding failed")
    raise StateError(f"state.{operation}({key!r:.80}): {where} is {what}, which JSON cannot hold: store str, "
                     "numbers, bools, None, and lists and dicts of them", operation=operation, key=key)


def decode(data: bytes, key: str = "") -> Any:
    """The value ``data`` holds; :class:`StoreError` when it is not JSON (something other than ekdsl wrote it)."""
    try:
        return loads(data)
    except (ValueError, RecursionError):
        raise StoreError(f"state: the value under {key!r:.80} is not JSON ({bytes(data[:40])!r}...): something "
                         "other than ekdsl wrote it; put a new value or delete the key", operation="get",
                         key=key) from None


def add(current: Optional[bytes], by: Any, key: str) -> Tuple[Number, bytes]:
    """The value of ``key`` after ``incr(key, by)``: ``(number, its JSON)``. A missing key counts as 0; an int stays
    an int within 64 bits; anything else is :class:`StateError`."""
    if isinstance(by, bool) or not isinstance(by, (int, float)):
        raise StateError(f"state.incr({key!r:.80}): by must be an int or a float, got {type(by).__name__}",
                         operation="incr", key=key)
    value = 0 if current is None else decode(current, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StateError(f"state.incr({key!r:.80}): the key holds {type(value).__name__} {value!r:.60}, not a "
                         "number: put a number first, or use another key", operation="incr", key=key)
    result = value + by
    if isinstance(result, int) and not INT64[0] <= result <= INT64[1]:
        raise StateError(f"state.incr({key!r:.80}): {result} is outside the 64-bit integers eKuiper's JSON "
                         "carries", operation="incr", key=key)
    return result, encode(result, key, "incr")
