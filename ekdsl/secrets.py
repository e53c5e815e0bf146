"""Secret property values (``Param(secret=True)``) kept out of what the plugin writes.

ekdsl's own messages never hold such a value (:data:`ekdsl.types.HIDDEN` stands in for it). What user code writes is
another matter: a client library's error holding the token, a debug line. So the values a rule starts with are
registered here, and every log line of the plugin process, every error text it sends to eKuiper (acks, replies,
a failed source) shows each of them as ``***``. Values shorter than :data:`MIN_LENGTH` are not replaced inside free
text, where they would mask ordinary words.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any, FrozenSet, Iterable, Iterator

__all__ = ["MASK", "MIN_LENGTH", "RedactFilter", "leaves", "redact", "register"]

MASK = "***"
MIN_LENGTH = 4
_lock = threading.Lock()
_values: FrozenSet[str] = frozenset()  # replaced whole on change: readers need no lock


def leaves(value: Any, t: Any, hidden: bool = False) -> Iterator[Any]:
    """The scalar values inside ``value`` (coerced to the :class:`~ekdsl.model.TypeInfo` ``t``) that are secret:
    all of it under a secret type, else the secret items, dict values and object fields at any depth."""
    hidden = hidden or bool(t is not None and t.secret)
    if value is None:
        return
    if isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from leaves(v, t.item if t is not None else None, hidden)
    elif isinstance(value, dict) or dataclasses.is_dataclass(value):
        fields = {f.pyname: f.type for f in t.fields} if t is not None and t.fields else {}
        items = value.items() if isinstance(value, dict) else vars(value).items()
        for k, v in items:
            yield from leaves(v, fields.get(k, t.item if t is not None and not fields else None), hidden)
    elif hidden:
        yield value


def register(values: Iterable[Any]) -> None:
    """Remember the text of each secret value (for the life of the process)."""
    global _values
    texts = {v if isinstance(v, str) else str(v) for v in values if v is not None}
    texts = {t for t in texts if len(t) >= MIN_LENGTH} - _values
    if texts:
        with _lock:
            _values = _values | texts


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***`` (longest first, so no part of one is left)."""
    values = _values
    if not values or not any(v in text for v in values):
        return text
    for v in sorted(values, key=len, reverse=True):
        text = text.replace(v, MASK)
    return text


class RedactFilter(logging.Filter):
    """Redacts a record's message, traceback and stack (on a handler: every record it writes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _values:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format or arguments: the handler reports it as logging always does
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
