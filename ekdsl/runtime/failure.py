"""What user code raised, as one line of text that always encodes: for acks, replies and logs."""

from __future__ import annotations

from ..protocol import encodable
from ..secrets import redact

__all__ = ["describe"]


def describe(exc: BaseException) -> str:
    """``Type: message`` for any exception, secret property values redacted; never raises, and the text always
    encodes as UTF-8.

    A ``str(exc)`` that raises is reported as such; ``SystemExit`` says that ``sys.exit()`` was called
    and ignored (argparse calls it on a usage error).
    """
    name = _name(exc)
    try:
        text = str(exc)
    except BaseException as inner:  # a broken __str__ must not cost the host its answer
        text = f"<its message could not be read: str() raised {_name(inner)}>"
    if isinstance(exc, SystemExit):
        text = f"{text} (sys.exit() was called; the plugin ignores it and keeps serving)".lstrip()
    try:
        return encodable(redact(f"{name}: {text}") if text else name)
    except BaseException:  # a str subclass misbehaving on format or encode
        return encodable(name)


def _name(exc: BaseException) -> str:
    try:
        return str(type(exc).__name__)
    except BaseException:
        return "exception"
