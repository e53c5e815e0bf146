"""Value constraints on properties and arguments: ``Param(gt=..., max_length=..., pattern=...)`` keywords and the
`annotated-types <https://github.com/annotated-types/annotated-types>`_ markers (``Gt``, ``Ge``, ``Lt``, ``Le``,
``Interval``, ``MultipleOf``, ``MinLen``, ``MaxLen``, ``Len``, ``Predicate``) inside ``Annotated``, read the way
pydantic reads them, without importing annotated-types (the plugin process needs it only if the user's module
imports it).

:func:`constraints_of` reads them at definition time (refusing a marker that cannot apply to the type);
:meth:`Constraints.violation` checks a converted value when a rule starts or a function is called.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Callable, Iterable, List, NamedTuple, Optional, Tuple

from .decorators import CONSTRAINT_KEYWORDS, Param

__all__ = ["Constraints", "Unfit", "constraints_of"]

_SIGNS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_NUMBERS = frozenset({"int", "float"})
_SIZED = frozenset({"str", "bytes", "list", "dict"})
_MARKERS = {  # annotated-types class → the attributes it sets
    "Gt": ("gt",), "Ge": ("ge",), "Lt": ("lt",), "Le": ("le",), "MultipleOf": ("multiple_of",),
    "MinLen": ("min_length",), "MaxLen": ("max_length",), "Len": ("min_length", "max_length"),
}
_IGNORED = frozenset({"DocInfo"})  # annotated_types.doc(): documentation, not a constraint


class Unfit(Exception):
    """A constraint that cannot apply to the annotated type, or is not a value ekdsl can check."""


class Constraints(NamedTuple):
    """What a value must satisfy beyond its type. ``pattern`` is searched (``re.search``), as pydantic and JSON
    Schema do: anchor it with ``^...$`` to match the whole text."""

    gt: Any = None
    ge: Any = None
    lt: Any = None
    le: Any = None
    multiple_of: Any = None
    min_length: Optional[int] = None
    max_length: Optional[int] = None
    pattern: Optional[str] = None
    predicates: Tuple[Callable[[Any], Any], ...] = ()

    def __bool__(self) -> bool:
        return any(v is not None for v in self[:8]) or bool(self.predicates)

    def describe(self) -> str:
        """The constraints in words, e.g. ``> 0 and <= 100``, ``of length 1 to 64``, ``matching '^[a-z]+$'``."""
        parts = [f"{_SIGNS[k]} {getattr(self, k)!r}" for k in _SIGNS if getattr(self, k) is not None]
        words = [" and ".join(parts)] if parts else []
        if self.multiple_of is not None:
            words.append(f"a multiple of {self.multiple_of!r}")
        low, high = self.min_length, self.max_length
        if low is not None and high is not None:
            words.append(f"of length {low}" if low == high else f"of length {low} to {high}")
        elif low is not None:
            words.append(f"of length >= {low}")
        elif high is not None:
            words.append(f"of length <= {high}")
        if self.pattern is not None:
            words.append(f"matching {self.pattern!r}")
        words += [f"for which {_name(p)} is true" for p in self.predicates]
        return ", ".join(words)

    def violation(self, value: Any) -> Optional[str]:
        """``None`` when ``value`` (already converted to the type) fits; else what to add to the message that
        :meth:`describe` already makes clear (the length found, or ``""``)."""
        for key, ok in (("gt", _gt), ("ge", _ge), ("lt", _lt), ("le", _le)):
            bound = getattr(self, key)
            if bound is not None and not ok(value, bound):
                return ""
        if self.multiple_of is not None and not _multiple(value, self.multiple_of):
            return ""
        if self.min_length is not None or self.max_length is not None:
            size = len(value)
            if (self.min_length is not None and size < self.min_length) or \
                    (self.max_length is not None and size > self.max_length):
                return f"its length is {size}"
        if self.pattern is not None and re.search(self.pattern, value) is None:
            return ""
        if not all(predicate(value) for predicate in self.predicates):
            return ""
        return None


def _gt(v: Any, b: Any) -> bool:
    return bool(v > b)


def _ge(v: Any, b: Any) -> bool:
    return bool(v >= b)


def _lt(v: Any, b: Any) -> bool:
    return bool(v < b)


def _le(v: Any, b: Any) -> bool:
    return bool(v <= b)


def _multiple(v: Any, m: Any) -> bool:
    if isinstance(v, int) and isinstance(m, int):
        return bool(v % m == 0)
    q = v / m  # floats: 0.3 is a multiple of 0.1 although 0.3 % 0.1 is not 0
    return bool(abs(q - round(q)) <= 1e-9 * max(1.0, abs(q)))


def _name(func: Any) -> str:
    return str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func))


def _annotated_types(marker: Any) -> Optional[str]:
    """The class name of an annotated-types marker, or ``None`` for anything else."""
    cls = type(marker)
    return cls.__name__ if cls.__module__ == "annotated_types" else None


def _flatten(metadata: Iterable[Any]) -> Iterable[Any]:
    """The markers, with grouped ones (``Interval``, ``Len`` lists, ...) opened into their parts."""
    for m in metadata:
        if _annotated_types(m) is not None and getattr(m, "__is_annotated_types_grouped_metadata__", False):
            yield from _flatten(m)
        else:
            yield m


def constraints_of(metadata: Iterable[Any], kind: str) -> Constraints:
    """The constraints ``Annotated``'s ``metadata`` sets (``Param`` keywords, annotated-types markers) on a value of
    ``kind`` (a :class:`~ekdsl.model.TypeInfo` kind); :class:`Unfit` when one cannot apply to it."""
    found: dict[str, Any] = {}
    predicates: List[Callable[[Any], Any]] = []
    for m in _flatten(metadata):
        name = _annotated_types(m)
        if name in _MARKERS:
            for attr in _MARKERS[name]:
                _set(found, attr, getattr(m, attr), f"{name}(...)")
        elif name == "Predicate":
            predicates.append(m.func)
        elif name is not None and name not in _IGNORED:
            raise Unfit(f"annotated_types.{name} is not a constraint ekdsl checks: use Gt, Ge, Lt, Le, Interval, "
                        "MultipleOf, MinLen, MaxLen, Len or Predicate, or Param(gt=..., pattern=...)")
        elif isinstance(m, Param):
            for attr in CONSTRAINT_KEYWORDS:
                if getattr(m, attr, None) is not None:
                    _set(found, attr, getattr(m, attr), f"Param({attr}=...)")
    cons = Constraints(**found, predicates=tuple(predicates))
    if cons:
        _fits(cons, kind)
    return cons


def _set(found: dict[str, Any], attr: str, value: Any, where: str) -> None:
    if value is None:
        return
    if attr in found and found[attr] != value:
        raise Unfit(f"{attr} is given twice ({found[attr]!r} and {value!r} in {where}): keep one")
    found[attr] = value


def _fits(cons: Constraints, kind: str) -> None:
    bounds = {k: getattr(cons, k) for k in (*_SIGNS, "multiple_of") if getattr(cons, k) is not None}
    if bounds:
        if kind in _NUMBERS:
            bad = [k for k, v in bounds.items() if isinstance(v, bool) or not isinstance(v, (int, float))]
        elif kind == "datetime" and "multiple_of" not in bounds:
            bad = [k for k, v in bounds.items() if not isinstance(v, _dt.datetime)]
        else:
            many = len(bounds) > 1
            raise Unfit(f"{', '.join(bounds)} appl{'y' if many else 'ies'} to numbers (gt, ge, lt and le to datetimes "
                        f"too), not a {kind}: remove {'them' if many else 'it'} or change the type")
        if bad:
            raise Unfit(f"{bad[0]}={bounds[bad[0]]!r} cannot bound a {kind}: give a "
                        f"{'number' if kind in _NUMBERS else 'datetime'}")
        naive = [k for k, v in bounds.items() if isinstance(v, _dt.datetime) and v.utcoffset() is None]
        if naive:  # eKuiper's times carry a zone (RFC 3339, epoch milliseconds): a naive one cannot be compared
            raise Unfit(f"{naive[0]}={bounds[naive[0]]!r} has no time zone, and the times eKuiper sends have one: "
                        "give it tzinfo=datetime.timezone.utc (or the zone you mean)")
        step = bounds.get("multiple_of")
        if step is not None and not step > 0:
            raise Unfit(f"multiple_of={step!r} is not a step: give a number > 0")
    for attr in ("min_length", "max_length"):
        value = getattr(cons, attr)
        if value is None:
            continue
        if kind not in _SIZED:
            raise Unfit(f"{attr} applies to str, bytes, lists and dicts, not a {kind}: remove it or change the type")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise Unfit(f"{attr}={value!r} is not a length: give an int >= 0")
    if cons.pattern is not None:
        if kind != "str":
            raise Unfit(f"pattern applies to str, not a {kind}: remove it or annotate the parameter str")
        try:
            re.compile(cons.pattern)
        except (re.error, TypeError) as exc:
            raise Unfit(f"pattern {cons.pattern!r} is not a regular expression Python reads ({exc})") from None
