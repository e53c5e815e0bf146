"""The exception hierarchy: every error ekdsl raises is an :class:`EkdslError`.

Each error carries its data as attributes and a message that says what is
wrong, where, and how to fix it. Only the CLI turns them into exit codes.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the plugin's handshake needs this module
if TYPE_CHECKING:
    from typing import Any, Optional, Sequence

    from .problems import Problem

__all__ = [
    "ConfigError",
    "ConnectionFailed",
    "DefinitionError",
    "DeployError",
    "EkdslError",
    "LoadError",
    "PackagingError",
    "Problem",
    "ProtocolError",
    "RenderError",
    "StateError",
    "StoreError",
    "TemplateError",
    "TransportError",
    "UsageError",
]


class EkdslError(Exception):
    """Base class of all ekdsl errors. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class DefinitionError(EkdslError):
    """A plugin definition is invalid. ``problems`` lists every defect found."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = tuple(problems)
        if len(self.problems) == 1:
            text = str(self.problems[0])
        else:
            lines = [f"{len(self.problems)} problems in the plugin definition:"]
            lines += [f"  - {p}" for p in self.problems]
            text = "\n".join(lines)
        super().__init__(text)


class ConfigError(EkdslError):
    """A configuration value or function argument does not fit its declared type.

    ``role`` is ``"property"`` (sources and sinks) or ``"argument"`` (functions).
    """

    def __init__(self, symbol: str, name: str, expected: str, got: Any, detail: str = "",
                 role: str = "property"):
        self.symbol = symbol
        self.role = role
        self.name = name
        self.expected = expected
        self.got = got
        shown = repr(got)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        msg = f"{symbol}: {role} '{name}' expects {expected}, got {shown}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class ProtocolError(EkdslError):
    """A message on the wire does not follow eKuiper's portable-plugin protocol."""

    def __init__(self, message: str, payload: Optional[bytes] = None):
        self.payload = payload
        super().__init__(message)


class TransportError(EkdslError):
    """A socket could not be opened, dialled, listened on, or used."""

    def __init__(self, message: str, url: str = ""):
        self.url = url
        super().__init__(message)


class PackagingError(EkdslError):
    """A plugin package (directory or zip) is broken, or cannot be written."""

    def __init__(self, message: str, path: str = ""):
        self.path = path
        super().__init__(message)


class LoadError(EkdslError):
    """A plugin target (module, ``module:attr`` or ``.py`` path) cannot be loaded."""

    def __init__(self, target: str, message: str):
        self.target = target
        super().__init__(f"cannot load '{target}': {message}")


class UsageError(EkdslError):
    """The command line or a target could not be used as given."""

    exit_code = 2


class DeployError(EkdslError):
    """An eKuiper server refused a request, or could not be reached.

    ``status`` is the HTTP status (0 when there was no answer) and ``message`` the server's own text.
    """

    def __init__(self, message: str, *, method: str = "", url: str = "", status: int = 0, code: int = 0):
        self.method = method
        self.url = url
        self.status = status
        self.code = code
        self.message = message
        where = f"{method} {url}" if method else url
        head = f"{where} failed ({status}): " if status else (f"{where}: " if where else "")
        super().__init__(head + message)


class StateError(EkdslError):
    """A ``ctx.state`` call was given what the store cannot keep: a key that is not a non-empty ``str``, or a value
    JSON cannot hold. ``operation`` is the call (``put``, ``get``, ...), ``key`` its key."""

    def __init__(self, message: str, *, operation: str = "", key: Any = None):
        self.operation = operation
        self.key = key
        super().__init__(message)


class StoreError(StateError):
    """The state store failed the call: unreachable, read-only, full, or not a store. ``where`` names the store
    (a file or a Redis address); the same call may succeed once the store is back."""

    def __init__(self, message: str, *, where: str = "", operation: str = "", key: Any = None):
        self.where = where
        super().__init__(message, operation=operation, key=key)


class TemplateError(EkdslError):
    """A data template (``{{.field}}``) that cannot be parsed, or, as its subclass :class:`RenderError`, evaluated.

    ``template`` is the template's text, ``position`` the offset of the fault in it (``-1`` when it is about the
    data), ``reason`` what is wrong and what to write instead.
    """

    def __init__(self, template: str, reason: str, position: int = -1):
        self.template = template
        self.reason = reason
        self.position = position
        shown = template if len(template) <= 80 else template[:77] + "..."
        where = f" at {position}" if position >= 0 else ""
        super().__init__(f"template {shown!r}{where}: {reason}")


class RenderError(TemplateError):
    """A data template that parsed, but cannot be evaluated against this row or event."""

    def __init__(self, template: str, reason: str):
        super().__init__(template, reason)


class ConnectionFailed(EkdslError):
    """A shared connection could not be opened: its factory raised, or took longer than its ``open_timeout``.

    ``connection`` is the factory's name, ``settings`` what it was called with (secrets masked).
    """

    def __init__(self, connection: str, settings: str, reason: str):
        self.connection = connection
        self.settings = settings
        self.reason = reason
        super().__init__(f"connection '{connection}' ({settings}) could not be opened: {reason}")


def __getattr__(name: str) -> Any:
    if name == "Problem":  # its own module: a NamedTuple needs typing, which the plugin's handshake does without
        from .problems import Problem

        return Problem
    raise AttributeError(f"module 'ekdsl.errors' has no attribute {name!r}")
