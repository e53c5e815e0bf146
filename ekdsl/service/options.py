"""The settings of ``python -m ekdsl service``, with their defaults (imported by the command line to build its
options, so it imports nothing heavy)."""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, NamedTuple, Tuple

from ..errors import UsageError

__all__ = ["DEFAULT_TIMEOUT", "ENV_PREFIX", "PROTOCOLS", "Options", "check", "flag", "from_env", "from_values",
           "parse_listen"]

DEFAULT_TIMEOUT = 4.0  # eKuiper's executors give up after a fixed 5 s (internal/service/executors.go NewExecutor)

PROTOCOLS = ("rest", "grpc", "msgpack-rpc")


class Options(NamedTuple):
    """Everything ``service`` takes besides the target (seconds, bytes, counts)."""

    listen: str = "127.0.0.1:8000"
    protocol: str = "rest"
    workers: int = 0
    call_timeout: float = DEFAULT_TIMEOUT
    concurrency: int = 64
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    idle_timeout: float = 60.0
    max_body: int = 16 * 1024 * 1024
    max_connections: int = 1024
    backlog: int = 2048
    grace: float = 10.0


def parse_listen(text: str) -> Tuple[str, int]:
    """``HOST:PORT`` → ``(host, port)``; port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen expects HOST:PORT such as 127.0.0.1:8000, got {text!r}")
    return host.strip("[]"), int(port)


def flag(name: str) -> str:
    """The command-line option of a setting: ``call_timeout`` → ``--call-timeout``."""
    return "--" + name.replace("_", "-")


def check(options: Options, label: Callable[[str], str] = flag) -> None:
    """Refuse settings no server can run with, naming each setting as ``label`` spells it."""
    if options.protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {options.protocol!r}: use one of {', '.join(PROTOCOLS)}")
    for name in ("call_timeout", "header_timeout", "body_timeout", "idle_timeout"):
        if not getattr(options, name) > 0:
            raise UsageError(f"{label(name)} must be a positive number of seconds")
    if options.grace < 0:
        raise UsageError(f"{label('grace')} must be 0 or more seconds")
    for name in ("concurrency", "max_body", "max_connections", "backlog"):
        if getattr(options, name) < 1:
            raise UsageError(f"{label(name)} must be at least 1")
    if options.workers < 0:
        raise UsageError(f"{label('workers')} must be 0 or more, got {options.workers}")


ENV_PREFIX = "EKDSL_SERVICE_"


def from_env(environ: Mapping[str, str]) -> Options:
    """:class:`Options` from ``EKDSL_SERVICE_<NAME>`` variables (``EKDSL_SERVICE_CALL_TIMEOUT=2``), for servers
    that build the application themselves (uvicorn's or gunicorn's command line); the others keep their defaults."""
    given = {name: environ[ENV_PREFIX + name.upper()] for name in Options._fields
             if ENV_PREFIX + name.upper() in environ}
    return from_values(given, lambda name: ENV_PREFIX + name.upper())


def from_values(values: Mapping[str, Any], label: Callable[[str], str]) -> Options:
    """Checked :class:`Options` from ``{field: value}``, each value text or of the field's type; ``label`` names a
    field in errors. Fields left out keep their defaults."""
    typed: Dict[str, Any] = {}
    for name, value in values.items():
        kind = type(Options._field_defaults[name])
        try:
            typed[name] = _typed(kind, value)
        except ValueError:
            raise UsageError(f"{label(name)}={value!r} is not a valid {kind.__name__}") from None
    options = Options(**typed)
    check(options, label)
    return options


def _typed(kind: Callable[[Any], Any], value: Any) -> Any:
    """``value`` as ``kind``: parsed from text, or an int where a float goes; anything else is a ValueError."""
    if isinstance(value, str) or type(value) is kind or (kind is float and type(value) is int):
        return kind(value)
    raise ValueError(value)
