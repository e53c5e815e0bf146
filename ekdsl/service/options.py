"""The settings of ``python -m ekdsl service``, with their defaults (imported by the command line to build its
options, so it imports nothing heavy)."""

from __future__ import annotations

from typing import Any, Dict, Mapping, NamedTuple, Tuple

from ..errors import UsageError

__all__ = ["DEFAULT_TIMEOUT", "ENV_PREFIX", "PROTOCOLS", "Options", "check", "from_env", "parse_listen"]

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


def check(options: Options) -> None:
    """Refuse settings no server can run with, naming the option."""
    if options.protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {options.protocol!r}: use one of {', '.join(PROTOCOLS)}")
    for name in ("call_timeout", "header_timeout", "body_timeout", "idle_timeout"):
        if not getattr(options, name) > 0:
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    if options.grace < 0:
        raise UsageError("--grace must be 0 or more seconds")
    for name in ("concurrency", "max_body", "max_connections", "backlog"):
        if getattr(options, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if options.workers < 0:
        raise UsageError(f"--workers must be 0 or more, got {options.workers}")


ENV_PREFIX = "EKDSL_SERVICE_"


def from_env(environ: Mapping[str, str]) -> Options:
    """:class:`Options` from ``EKDSL_SERVICE_<NAME>`` variables (``EKDSL_SERVICE_CALL_TIMEOUT=2``), for servers
    that build the application themselves (uvicorn's or gunicorn's command line); the others keep their defaults."""
    values: Dict[str, Any] = {}
    for name, default in Options._field_defaults.items():
        text = environ.get(ENV_PREFIX + name.upper())
        if text is None:
            continue
        try:
            values[name] = type(default)(text)
        except ValueError:
            raise UsageError(f"{ENV_PREFIX}{name.upper()}={text!r} is not a valid {type(default).__name__}") from None
    options = Options(**values)
    check(options)
    return options
