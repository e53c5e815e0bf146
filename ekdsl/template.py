"""Data templates in property values: the part of Go's ``text/template`` that names a value of a row.

eKuiper evaluates a sink property holding ``{{...}}`` against each row (with ``sendSingle``) or each event (the
list of rows a rule emitted together) with Go's ``text/template``. A :class:`Template` is parsed once, when the
rule starts (:mod:`ekdsl.template_syntax` says what is supported), and rendered per row; this module is pure:
text in, text out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, List, Optional

from .errors import RenderError
from .template_syntax import SUPPORTED, Dot, Field, Index, Lit, parse, quote

__all__ = ["SUPPORTED", "Template", "go_text"]

_MISSING = object()  # Go's "no value": a key the data does not have


def _what(value: Any) -> str:
    if value is None or value is _MISSING:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        shown = value if len(value) <= 30 else value[:27] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, bool):
        return f"a bool ({go_text(value)})"
    if isinstance(value, (int, float)):
        return f"a number ({go_text(value)})"
    return f"a {type(value).__name__}"


def _eval(node: Dot, dot: Any, go: bool, tpl: str) -> Any:
    """The value ``node`` names in ``dot``; ``go``: Go's leniency, a missing key is "no value"."""
    if isinstance(node, Field):
        return _field(node, _eval(node.base, dot, go, tpl), go, tpl)
    if isinstance(node, Index):
        return _index(node, _eval(node.target, dot, go, tpl), go, tpl)
    if isinstance(node, Lit):
        return node.value
    return dot  # . or $


def _field(node: Field, value: Any, go: bool, tpl: str) -> Any:
    """``value.a.b...``, with the message a user needs when a name is not there."""
    path = "" if node.top else node.base.src
    for i, name in enumerate(node.names):
        if type(value) is dict or isinstance(value, Mapping):
            got = value.get(name, _MISSING)
            if got is _MISSING and not go:
                have = ", ".join(sorted(str(k) for k in value)[:8]) or "none"
                raise RenderError(tpl, f"{node.src}: {path or 'the row'} has no field {name!r} (its fields: "
                                       f"{have})")
            value = got
        elif value is _MISSING:  # only when go: a field of Go's "no value" is "no value"
            value = _MISSING
        elif value is None:
            raise RenderError(tpl, f"{node.src}: {path} is null, so it has no field {name!r}")
        elif isinstance(value, (list, tuple)) and i == 0 and node.top:
            raise RenderError(tpl, f"{node.src}: the data is an event (the list of rows a rule emitted together), "
                                   f"which has no field {name!r}: write {{{{index . 0 {quote(name)}}}}} for the "
                                   "first row's, or set sendSingle: true in the rule action to have one row "
                                   "per message")
        else:
            raise RenderError(tpl, f"{node.src}: {path or 'the data'} is {_what(value)}, which has no field "
                                   f"{name!r}")
        path += "." + name
    return value


def _index(node: Index, value: Any, go: bool, tpl: str) -> Any:
    """``value[k1][k2]...`` as Go's ``index`` takes it: a string key of a map, an int of a list or a string."""
    for key in node.keys:
        k = key.value
        if (type(value) is dict or isinstance(value, Mapping)) and isinstance(k, str):
            got = value.get(k, _MISSING)
            if got is _MISSING and not go:
                raise RenderError(tpl, f"{node.src}: no field {k!r} (its fields: "
                                       f"{', '.join(sorted(str(x) for x in value)[:8]) or 'none'})")
            value = got
        elif isinstance(value, (list, tuple)) and isinstance(k, int):
            if not 0 <= k < len(value):
                raise RenderError(tpl, f"{node.src}: index {k} is out of range for a list of {len(value)}")
            value = value[k]
        elif isinstance(value, str) and isinstance(k, int):  # Go indexes a string's UTF-8 bytes
            raw = value.encode("utf-8", "surrogatepass")
            if not 0 <= k < len(raw):
                raise RenderError(tpl, f"{node.src}: index {k} is out of range for a string of {len(raw)} bytes")
            value = raw[k]
        elif value is None or value is _MISSING:
            raise RenderError(tpl, f"{node.src}: cannot index null")
        else:
            key_kind = "a number" if isinstance(k, int) else "a string"
            raise RenderError(tpl, f"{node.src}: cannot index {_what(value)} with {key_kind} ({key.src})")
    return value


def _fast(node: Dot) -> Any:
    """A getter for the usual case of ``node`` (fields of dicts, positions of lists) that gives ``_MISSING``
    for anything else, for :func:`_eval` to explain; ``None`` when there is no such case."""
    if isinstance(node, Field) and node.top:
        names = node.names

        def field(dot: Any) -> Any:
            for name in names:
                if type(dot) is not dict:
                    return _MISSING
                dot = dot.get(name, _MISSING)
            return dot

        return field
    if isinstance(node, Index) and type(node.target) is Dot:
        keys = tuple(k.value for k in node.keys)

        def index(dot: Any) -> Any:
            for key in keys:
                if type(dot) is dict and type(key) is str:
                    dot = dot.get(key, _MISSING)
                elif type(dot) is list and type(key) is int and 0 <= key < len(dot):
                    dot = dot[key]
                else:
                    return _MISSING
            return dot

        return index
    return None


class Template:
    """A data template, parsed (a :class:`~ekdsl.errors.TemplateError` says what is refused and why).

    ``render(data)`` evaluates it against a row (a dict) or an event (a list of rows) and returns the text;
    a missing field, a null, or an object or list where a value belongs is a :class:`~ekdsl.errors.RenderError`.
    ``constant`` is the text of a template without actions (``None`` otherwise).
    """

    __slots__ = ("_getters", "_parts", "constant", "source")

    def __init__(self, source: str) -> None:
        if not isinstance(source, str):
            raise TypeError(f"a template is text, got {type(source).__name__}")
        self.source = source
        self._parts = parse(source)
        self._getters = tuple((p, None if isinstance(p, str) else _fast(p)) for p in self._parts)
        self.constant: Optional[str] = None
        if all(isinstance(p, str) for p in self._parts):
            self.constant = "".join(p for p in self._parts if isinstance(p, str))

    def render(self, data: Any) -> str:
        """The text for ``data``; :class:`~ekdsl.errors.RenderError` when a value is missing or not a value."""
        if self.constant is not None:
            return self.constant
        out: List[str] = []
        for part, get in self._getters:
            if isinstance(part, str):
                out.append(part)
                continue
            value = _MISSING if get is None else get(data)
            if type(value) is str:
                out.append(value)
                continue
            if value is _MISSING:  # not the usual case: evaluate it again, with what to say if it fails
                value = _eval(part, data, False, self.source)
            if value is None or isinstance(value, (Mapping, list, tuple)):
                fix = "select a field of it" if value is not None else "give the row a value there"
                raise RenderError(self.source, f"{part.src} is {_what(value)}, not a value: {fix}")
            out.append(go_text(value))
        return "".join(out)

    def go_render(self, data: Any) -> str:
        """What Go's ``text/template`` makes of ``data``: a missing field or a null prints ``<no value>`` (as in
        eKuiper's own sinks); raises :class:`~ekdsl.errors.RenderError` where Go fails to execute it."""
        out: List[str] = []
        for part in self._parts:
            out.append(part if isinstance(part, str) else go_text(_eval(part, data, True, self.source), top=True))
        return "".join(out)

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"Template({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and other.source == self.source

    def __hash__(self) -> int:
        return hash(("Template", self.source))


def go_text(value: Any, top: bool = False) -> str:
    """``value`` as Go's ``fmt.Sprint`` writes what JSON decoding gave it (numbers as ``float64``: ``1.5``,
    ``1e+06``); a Python int in full. ``top``: a nil is ``<no value>``, as a template prints it."""
    if value is None or value is _MISSING:
        return "<no value>" if top else "<nil>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_text(value[k])}" for k in sorted(value, key=str)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_text(v) for v in value) + "]"
    return str(value)


def _go_float(f: float) -> str:
    """Go's ``%v`` of a float64 (``strconv.FormatFloat(f, 'g', -1, 64)``): the shortest digits, in exponent form
    below 1e-4 and from 1e6 up."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    import decimal  # only a float in a template needs it

    sign, digits, exp = decimal.Decimal(repr(f)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    assert isinstance(exp, int)
    exp += len(digits) - len(text)
    nd = len(text)
    x = nd + exp - 1  # the power of ten of the first digit
    neg = "-" if sign else ""
    if x < -4 or x >= 6:
        mantissa = text[0] + ("." + text[1:] if nd > 1 else "")
        return f"{neg}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if x < 0:
        return f"{neg}0.{'0' * (-x - 1)}{text}"
    whole = text[:x + 1].ljust(x + 1, "0")
    frac = text[x + 1:]
    return f"{neg}{whole}{'.' + frac if frac else ''}"
