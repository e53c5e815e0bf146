"""Python types ↔ eKuiper metadata types, and validation/coercion of values.

The mapping (see ``docs/types.md``):

========================  ===============  ==========  =========================
Python                    eKuiper ``type``  ``control``  notes
========================  ===============  ==========  =========================
``str``                   ``string``       ``text``
``int``                   ``int``          ``text``
``float``                 ``float``        ``text``
``bool``                  ``bool``         ``radio``
``bytes``                 ``bytea``        ``text``    base64 on the function wire
``datetime``              ``datetime``     ``text``    ISO 8601 or epoch ms
``Any``                   ``any``          ``text``
``list[str]``             ``list_string``  ``list``
``list[int]``             ``list_int``     ``list``
``list[<object>]``        ``list_object``  ``list``
``list[...]`` (other)     ``array``        ``list``
``dict`` / ``Mapping``    ``object``       ``textarea``
TypedDict / dataclass     ``object``       ``list``    default = its field list
``Literal[...]``/Enum     of the values    ``select``  ``values`` lists them
``Template``              ``string``       ``text``    a data template, parsed
========================  ===============  ==========  =========================

Function arguments always use the ``field`` control.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import enum
import math
import re
from typing import Any, Dict, List, Mapping, Optional

from .errors import ConfigError, TemplateError
from .model import MISSING, TypeInfo

__all__ = ["HIDDEN", "coerce", "control_of", "ekuiper_type", "parse_datetime", "plain", "values_of"]

_SCALAR_TYPES = {
    "str": "string",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "bytes": "bytea",
    "datetime": "datetime",
    "any": "any",
    "dict": "object",
    "object": "object",
    "template": "string",
}
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_INT_RE = re.compile(r"[+-]?\d+")  # both matched whole
_FRACTION = re.compile(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)[.,](\d{1,9})(|[Zz]|[+-]\d\d:?\d\d)")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _choice_type(choices: tuple[Any, ...]) -> str:
    kinds = {type(c.value if isinstance(c, enum.Enum) else c) for c in choices}
    if kinds <= {bool}:
        return "bool"
    if kinds <= {int}:
        return "int"
    if kinds <= {int, float}:
        return "float"
    return "string"


def ekuiper_type(t: TypeInfo) -> str:
    """The metadata ``type`` for a parameter of type ``t``."""
    if t.kind in ("literal", "enum"):
        return _choice_type(t.choices)
    if t.kind == "list":
        item = t.item.kind if t.item else "any"
        return {"str": "list_string", "int": "list_int", "object": "list_object"}.get(item, "array")
    return _SCALAR_TYPES[t.kind]


def control_of(t: TypeInfo, role: str = "property") -> str:
    """The metadata ``control`` (UI widget) for a property or a function argument."""
    if role == "argument":
        return "field"
    if t.kind in ("literal", "enum"):
        return "select"
    if t.kind == "bool":
        return "radio"
    if t.kind in ("list", "object"):
        return "list"
    if t.kind == "dict":
        return "textarea"
    return "text"


def values_of(t: TypeInfo) -> Optional[List[Any]]:
    """The metadata ``values`` (allowed choices), or ``None``."""
    if t.kind in ("literal", "enum"):
        return [plain(c) for c in t.choices]
    return None


def plain(value: Any) -> Any:
    """``value`` as plain JSON/YAML data (enums, dataclasses, datetimes, bytes, tuples converted)."""
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return str(value)


class _Mismatch(Exception):
    def __init__(self, path: str, t: TypeInfo, got: Any, detail: str = ""):
        self.path, self.t, self.got, self.detail = path, t, got, detail
        super().__init__(path)


def coerce(value: Any, t: TypeInfo, *, symbol: str = "", name: str = "", b64: bool = False,
           role: str = "property") -> Any:
    """Validate ``value`` against ``t`` and convert it (e.g. ``"10"`` → ``10`` for an int).

    Raises :class:`ConfigError` naming ``symbol``, the property path and the
    expected type. ``b64`` decodes a string given for ``bytes`` as base64 when it is
    exactly what Go writes for a ``[]byte`` on the function wire (standard alphabet,
    padded); any other string is text (SQL strings arrive as plain JSON strings).
    """
    try:
        return _coerce(value, t, name, b64)
    except _Mismatch as m:
        hide = (t.secret or m.t.secret) and m.got is not None  # nor its length, in a constraint's detail
        got, detail = (HIDDEN, "") if hide else (m.got, m.detail)
        raise ConfigError(symbol, m.path, m.t.describe(), got, detail, role) from None


class _Hidden:
    def __repr__(self) -> str:
        return "a value not shown (secret)"


HIDDEN: Any = _Hidden()
"""What a :class:`ConfigError` holds and shows instead of a secret's value."""


def _coerce(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    if value is None:
        if t.optional or t.kind == "any":
            return None
        raise _Mismatch(path, t, value, "the value is required")
    handler = _HANDLERS[t.kind]
    out = handler(value, t, path, b64)
    if t.constraints is not None:
        why = t.constraints.violation(out)
        if why is not None:
            raise _Mismatch(path, t, value, why)
    return out


def _c_any(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    return value


def _c_str(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    if isinstance(value, str):
        return value
    raise _Mismatch(path, t, value)


def _c_int(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    if isinstance(value, bool):
        raise _Mismatch(path, t, value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        return int(value.strip())
    raise _Mismatch(path, t, value)


def _c_float(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    if isinstance(value, bool):
        raise _Mismatch(path, t, value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _Mismatch(path, t, value)


def _c_bool(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Mismatch(path, t, value)


def _c_bytes(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        if b64:
            try:
                decoded = base64.b64decode(value, validate=True)
            except ValueError:
                decoded = None
            if decoded is not None and base64.b64encode(decoded).decode("ascii") == value:
                return decoded  # exactly what Go writes for a []byte
        return value.encode("utf-8", "surrogatepass")  # a SQL string: its text
    raise _Mismatch(path, t, value)


def _c_datetime(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    if isinstance(value, _dt.datetime):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return _EPOCH + _dt.timedelta(milliseconds=value)
        except (OverflowError, ValueError):
            raise _Mismatch(path, t, value, "epoch milliseconds out of range") from None
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is not None:
            return parsed
    raise _Mismatch(path, t, value, "use ISO 8601 such as 2024-01-31T12:00:00Z, or epoch milliseconds")


def parse_datetime(text: str) -> Optional[_dt.datetime]:
    """An ISO 8601 / RFC 3339 text as a datetime, or ``None``.

    Go writes ``time.RFC3339Nano``: 1 to 9 fractional digits. Python before 3.11 parses only 3 or 6, so
    the fraction is padded or cut (not rounded, as Python 3.11 does) to 6 digits first.
    """
    text = text.strip()
    m = _FRACTION.fullmatch(text)
    if m is not None:
        zone = m.group(3)
        if len(zone) == 5:  # +hhmm, which Python before 3.11 does not read
            zone = f"{zone[:3]}:{zone[3:]}"
        text = f"{m.group(1)}.{(m.group(2) + '00000')[:6]}{zone}"
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return _dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _c_list(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    if not isinstance(value, (list, tuple)):
        raise _Mismatch(path, t, value)
    if t.item is None or (t.item.kind == "any" and t.item.constraints is None):
        return value if type(value) is list else list(value)
    return [_coerce(v, t.item, f"{path}[{i}]", b64) for i, v in enumerate(value)]


def _c_dict(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    if not isinstance(value, Mapping):
        raise _Mismatch(path, t, value)
    if t.item is None or (t.item.kind == "any" and t.item.constraints is None):
        return dict(value)
    return {k: _coerce(v, t.item, f"{path}.{k}", b64) for k, v in value.items()}


def _c_object(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    is_dc = t.pytype is not None and dataclasses.is_dataclass(t.pytype)
    if is_dc and isinstance(value, t.pytype):
        return value
    if not isinstance(value, Mapping):
        raise _Mismatch(path, t, value)
    by_lower = {str(k).lower(): k for k in value}
    out: Dict[str, Any] = {}
    known = set()
    for f in t.fields:
        key = f.name if f.name in value else by_lower.get(f.name.lower())
        known.add(key)
        if key is None:
            if f.default is MISSING and not f.type.optional:
                raise _Mismatch(f"{path}.{f.name}", f.type, None, "the field is required")
            continue
        out[f.pyname] = _coerce(value[key], f.type, f"{path}.{f.name}", b64)
    extra = [k for k in value if k not in known]
    if extra:
        names = ", ".join(f.name for f in t.fields)
        raise _Mismatch(f"{path}.{extra[0]}", t, value[extra[0]], f"unknown field; known fields: {names}")
    if is_dc:
        factory: Any = t.pytype
        return factory(**out)
    return out


def _c_literal(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    for choice in t.choices:
        if value == choice and type(value) is type(choice):
            return choice
    for choice in t.choices:
        if isinstance(value, str) and not isinstance(choice, str) and value.strip() == str(choice):
            return choice
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and isinstance(choice, float) and float(value) == choice:
            return choice
    raise _Mismatch(path, t, value)


def _c_enum(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    cls = t.pytype
    if isinstance(value, cls):
        return value
    for member in cls:
        if member.value == value and type(member.value) is type(value):
            return member
    for member in cls:
        if isinstance(value, str) and (member.name == value or str(member.value) == value.strip()):
            return member
    raise _Mismatch(path, t, value)


def _c_row(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    if isinstance(value, t.pytype):  # a sink's list[Row]: the runtime made each Row
        return value
    raise _Mismatch(path, t, value)


def _c_template(value: Any, t: TypeInfo, path: str, b64: bool) -> Any:
    from .template import Template  # only a Template property loads the parser

    if isinstance(value, Template):
        return value
    if isinstance(value, str):
        try:
            return Template(value)
        except TemplateError as exc:
            raise _Mismatch(path, t, value, exc.reason) from None
    raise _Mismatch(path, t, value)


_HANDLERS = {
    "any": _c_any,
    "str": _c_str,
    "int": _c_int,
    "float": _c_float,
    "bool": _c_bool,
    "bytes": _c_bytes,
    "datetime": _c_datetime,
    "list": _c_list,
    "dict": _c_dict,
    "object": _c_object,
    "literal": _c_literal,
    "enum": _c_enum,
    "row": _c_row,
    "template": _c_template,
}
