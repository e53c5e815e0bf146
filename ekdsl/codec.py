"""JSON for the wire: encoding any Python value eKuiper can take, and fast decoding.

With the standard library, encoding uses its C encoder built once (``json.dumps`` with options builds a
new one on every call) and decoding its C scanner directly. With `orjson <https://pypi.org/project/orjson/>`_
installed (``pip install 'ekdsl[fast]'``), both use orjson: encoding a row ~15 times faster, decoding
numbers several times faster and floats ten times. orjson only decides what it accepts; whatever it
refuses (``NaN`` literals, lone surrogates, numbers out of range, deep nesting, keys that are not strings)
goes to the standard library, and the values ekdsl converts its own way (datetimes, dataclasses, bytes,
Decimal, numpy, sets) go through :func:`json_safe` as before. So the JSON is the same with and without it
(the same values; a number may be spelled differently, ``1e-07`` or ``1e-7``), with one exception: in a
document orjson reads, an integer literal outside the 64-bit range (which Go writes only for a ``float64``
of 1e19 or more) decodes as a float, the value eKuiper meant.

``EKDSL_JSON=stdlib`` turns orjson off; ``auto`` (the default) uses it when it imports.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import json
import math
import os
import pathlib
import sys
import uuid
from typing import Any, Callable, Iterable, Mapping, Optional, Tuple

from .errors import UsageError

__all__ = ["JSON_ENV", "SETTING_ERROR", "backend", "dumps", "find_unencodable", "json_backend", "json_safe", "loads",
           "select_json", "stdlib_dumps", "stdlib_loads"]

JSON_ENV = "EKDSL_JSON"
_CHOICES = ("auto", "orjson", "stdlib")


# ---------------------------------------------------------------- encoding


def json_safe(value: Any) -> Any:
    """Convert a Python value into something ``json.dumps`` accepts, as Go would decode it.

    datetime/date → RFC 3339 text, Decimal → number, bytes → base64 (Go ``[]byte``),
    UUID and paths → text, timedelta → seconds (a float), tuples and sets → lists,
    dataclasses → objects, enums → values, numpy scalars/arrays → numbers/lists,
    NaN and ±Infinity → null (JSON has none). Raises ``TypeError`` for other types.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    return _json_other(value)


def _json_other(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return value.isoformat() if value.tzinfo else value.isoformat() + "Z"
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_safe(getattr(value, f.name)) for f in dataclasses.fields(value)}
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist) and type(value).__module__.startswith("numpy"):
        return json_safe(tolist())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_MAX_DEPTH = 400  # deeper than this, the search below gives up (the C encoder itself stops near 1,000)


def find_unencodable(value: Any, root: str = "row") -> Optional[Tuple[str, str]]:
    """Why ``value`` cannot be written as JSON: ``(path, what)`` such as ``('row["a"][2]', "a uuid.UUID")``
    for the first value found that :func:`json_safe` refuses, a string with a lone surrogate, an int too long
    to write, a reference cycle or too deep a nesting; ``None`` when nothing is found. Never raises."""
    try:
        return _find(value, root, 0, set())
    except RecursionError:
        return root, f"a value nested deeper than {_MAX_DEPTH} levels"
    except BaseException as exc:  # user code (a __str__, a property) raised: say so rather than fail
        return root, f"a value whose conversion raised {type(exc).__name__}"


def _find(value: Any, path: str, depth: int, active: set[int]) -> Optional[Tuple[str, str]]:
    if value is None or isinstance(value, (bool, float)):
        return None
    if isinstance(value, int):
        try:
            int.__repr__(value)
        except ValueError:  # Python's limit on int → text conversion (4,300 digits by default)
            return path, f"an int of about {int(value.bit_length() * 0.30103)} digits, too long to write"
        return None
    if isinstance(value, str):
        return _text_problem(value, path, "a str")
    if depth >= _MAX_DEPTH:
        return path, f"a value nested deeper than {_MAX_DEPTH} levels"
    if id(value) in active:
        return path, f"a {type(value).__name__} that contains itself (a reference cycle)"
    active.add(id(value))
    try:
        if isinstance(value, Mapping):
            for k, v in value.items():
                key = str(k)
                sub = f"{path}[{json.dumps(key)}]"
                found = _text_problem(key, sub, "a key") or _find(v, sub, depth + 1, active)
                if found:
                    return found
            return None
        if isinstance(value, (list, tuple, set, frozenset)):
            for i, v in enumerate(value):
                found = _find(v, f"{path}[{i}]", depth + 1, active)
                if found:
                    return found
            return None
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                found = _find(getattr(value, f.name), f"{path}[{json.dumps(f.name)}]", depth + 1, active)
                if found:
                    return found
            return None
        try:
            converted = _json_other(value)
        except TypeError:
            cls = type(value)
            name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
            return path, f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"
        return _find(converted, path, depth + 1, active)
    finally:
        active.discard(id(value))


def _text_problem(text: str, path: str, what: str) -> Optional[Tuple[str, str]]:
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        return path, f"{what} with a lone surrogate (\\u{ord(text[exc.start]):04x} at index {exc.start})"


def _unserializable(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_LENIENT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _stdlib_dumps() -> Callable[[Any], bytes]:
    """:func:`stdlib_dumps` on the C encoder built once: ``json.dumps(separators=(",", ":"), ensure_ascii=False,
    allow_nan=False)`` without its per-call setup."""
    make = getattr(json.encoder, "c_make_encoder", None)
    basestring = getattr(json.encoder, "c_encode_basestring", None)
    encoder: Callable[[Any, int], Iterable[str]]
    if make is None or basestring is None:  # no C accelerator (e.g. PyPy): the pure-Python encoder's chunks
        pure = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        basestring = json.encoder.py_encode_basestring

        def encoder(value: Any, _level: int) -> Iterable[str]:
            return pure.iterencode(value, True)
    else:
        encoder = make(None, _unserializable, basestring, None, ":", ",", False, False, False)
    join = "".join

    def stdlib_dumps(value: Any) -> bytes:
        """Compact UTF-8 JSON: fast path for plain data, safe path for the rest (NaN → null, datetimes, numpy...)."""
        try:
            text = basestring(value) if value.__class__ is str else join(encoder(value, 0))
        except (TypeError, ValueError, RecursionError):
            text = _LENIENT(json_safe(value))
        return text.encode()

    return stdlib_dumps


stdlib_dumps = _stdlib_dumps()


def _orjson_dumps(encode: Callable[..., bytes], option: int) -> Callable[[Any], bytes]:
    def orjson_dumps(value: Any) -> bytes:
        try:
            return encode(value, default=json_safe, option=option)
        except Exception:  # orjson refuses it: the standard library writes it (or raises its error)
            return stdlib_dumps(value)

    return orjson_dumps


# ---------------------------------------------------------------- decoding

_SCAN: Callable[[str, int], Tuple[Any, int]] = getattr(json.decoder.JSONDecoder(), "scan_once")  # noqa: B009
_WS = " \t\n\r"


def stdlib_loads(data: bytes) -> Any:
    """``json.loads`` for UTF-8 bytes without its Python-level setup; raises ``ValueError`` likewise."""
    text = data.decode("utf-8")
    if not text or text[0] in _WS or text[-1] in _WS:
        return json.loads(text)
    try:
        value, end = _SCAN(text, 0)
    except StopIteration as exc:
        raise json.JSONDecodeError("Expecting value", text, exc.value) from None
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _with_orjson(decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def orjson_loads(data: bytes) -> Any:
        try:
            return decode(data)
        except Exception:  # orjson refuses it: the standard library decides (a value, or its error)
            return stdlib_loads(data)

    return orjson_loads


_LOADS: Callable[[bytes], Any] = stdlib_loads
_DUMPS: Callable[[Any], bytes] = stdlib_dumps
_BACKEND = "stdlib"


def backend() -> Tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    """``(loads, dumps)`` of the codec in use, for a hot loop to call without :func:`loads`' and :func:`dumps`'
    indirection (it does not follow a later :func:`select_json`)."""
    return _LOADS, _DUMPS


def loads(data: bytes) -> Any:
    """Decode UTF-8 JSON bytes; raises ``ValueError`` (or ``RecursionError``) on what is not JSON."""
    return _LOADS(data)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value``, made JSON-safe as :func:`json_safe` says; raises ``TypeError``
    for what cannot be (and ``UnicodeEncodeError`` for text with lone surrogates)."""
    return _DUMPS(value)


def select_json(choice: Optional[str] = None) -> str:
    """Choose the codec: ``auto`` (orjson when it imports), ``orjson`` or ``stdlib``; return the one in use.

    ``None`` reads ``$EKDSL_JSON``. Raises :class:`UsageError` for an unknown choice, or for ``orjson``
    when it is not installed (the codec in use does not change then).
    """
    global _LOADS, _DUMPS, _BACKEND
    name = (os.environ.get(JSON_ENV, "") if choice is None else choice).strip().lower() or "auto"
    if name not in _CHOICES:
        source = f"{JSON_ENV}={name!r}" if choice is None else repr(name)
        raise UsageError(f"{source} is not a JSON codec: use auto, orjson or stdlib")
    fast: Any = None
    if name != "stdlib":
        try:
            import orjson as fast
        except ImportError:
            if name == "orjson":
                raise UsageError(f"orjson is not installed for {sys.executable}: "
                                 "pip install 'ekdsl[fast]' (or orjson), or use auto") from None
    if fast is None:
        _LOADS, _DUMPS, _BACKEND = stdlib_loads, stdlib_dumps, "stdlib"
    else:  # orjson's own output for datetimes and dataclasses differs from json_safe's: route them there
        option = fast.OPT_PASSTHROUGH_DATETIME | fast.OPT_PASSTHROUGH_DATACLASS
        _LOADS, _DUMPS, _BACKEND = _with_orjson(fast.loads), _orjson_dumps(fast.dumps, option), "orjson"
    return _BACKEND


def json_backend() -> str:
    """The codec in use: ``"orjson"`` or ``"stdlib"``."""
    return _BACKEND


def _select_from_environment() -> Optional[UsageError]:
    try:
        select_json()
    except UsageError as exc:  # a wrong $EKDSL_JSON must not break an import: the default, and the error kept
        select_json("auto")
        return exc
    return None


SETTING_ERROR = _select_from_environment()
"""What was wrong with ``$EKDSL_JSON`` when ekdsl was imported (``None``: nothing); the plugin logs it."""
