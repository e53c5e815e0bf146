"""Secret property values (``Param(secret=True)``) kept out of what the plugin writes.

ekdsl's own messages never hold such a value (:data:`ekdsl.types.HIDDEN` stands in for it). What user code writes is
another matter: a client library's error holding the token, a debug line. So the values a rule starts with are
registered here, and every log line of the plugin process, every error text it sends to eKuiper (acks, replies,
a failed source) shows each of them as ``***``. Values shorter than :data:`MIN_LENGTH` are not replaced inside free
text, where they would mask ordinary words.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, FrozenSet, Iterable

__all__ = ["MASK", "MIN_LENGTH", "RedactFilter", "redact", "register"]

MASK = "***"
MIN_LENGTH = 4
_lock = threading.Lock()
_values: FrozenSet[str] = frozenset()  # replaced whole on change: readers need no lock


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
        message = record.getMessage()
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
