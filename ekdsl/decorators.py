"""``@source``, ``@sink``, ``@function``, ``@connection`` and the ``Param`` marker.

The decorators only mark: they attach a :class:`SymbolSpec` to the callable and
return it unchanged, so it stays a plain function you can call in a unit test.
A :class:`~ekdsl.Plugin` collects marked callables and validates them.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional, Tuple, TypeVar, Union, overload

from .errors import DefinitionError
from .kinds import Kind
from .model import Text
from .problems import Problem

__all__ = ["CONNECTION_ATTR", "CONSTRAINT_KEYWORDS", "SPEC_ATTR", "ConnectionSpec", "Param", "SymbolSpec", "connection",
           "function", "get_connection_spec", "get_spec", "sink", "source"]

F = TypeVar("F", bound=Callable[..., Any])
TextLike = Union[str, Mapping[str, str], None]
SPEC_ATTR = "__ekdsl_spec__"
CONNECTION_ATTR = "__ekdsl_connection__"
CONSTRAINT_KEYWORDS = ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "pattern")


class Param(NamedTuple):
    """Metadata for one parameter, used inside ``Annotated[T, Param(...)]``.

    ``hint`` and ``label`` are a str (used for both languages) or a mapping with
    ``en_US`` and ``zh_CN``. ``name`` overrides the property name that eKuiper
    sees (for example a camelCase key for a snake_case parameter). ``dynamic=True``
    (sink properties) makes the value a data template, such as ``"{{.table}}"``,
    evaluated for each row: the sink receives the result.
    ``gt``, ``ge``, ``lt``, ``le``, ``multiple_of`` (numbers), ``min_length``,
    ``max_length`` (str, bytes, lists, dicts) and ``pattern`` (str, searched)
    constrain the value, checked when a rule starts and at each call
    (:mod:`ekdsl.constraints`). ``secret=True`` keeps the value out of every log
    line, error and ``dev`` output, and out of the generated files.
    """

    hint: TextLike = None
    label: TextLike = None
    name: Optional[str] = None
    dynamic: bool = False
    gt: Any = None
    ge: Any = None
    lt: Any = None
    le: Any = None
    multiple_of: Any = None
    min_length: Optional[int] = None
    max_length: Optional[int] = None
    pattern: Optional[str] = None
    secret: bool = False

    @property
    def constrains(self) -> bool:
        """Whether a constraint keyword is given."""
        return any(getattr(self, k) is not None for k in CONSTRAINT_KEYWORDS)


class SymbolSpec(NamedTuple):
    """What a decorator recorded about a callable."""

    kind: Kind
    name: Optional[str] = None
    description: Optional[Text] = None
    label: Optional[Text] = None
    aggregate: bool = False
    conf_keys: Tuple[Tuple[str, Mapping[str, Any]], ...] = ()
    example: str = ""
    hints: Tuple[Tuple[str, Text], ...] = ()
    require_ack: bool = False
    rejected: Tuple[Tuple[str, Any], ...] = ()  # options the kind does not take: reported by Plugin.model()


def get_spec(obj: Any) -> Optional[SymbolSpec]:
    """The spec a decorator attached to ``obj``, or ``None``."""
    spec = getattr(obj, SPEC_ATTR, None)
    return spec if isinstance(spec, SymbolSpec) else None


def _mark(func: F, spec: SymbolSpec) -> F:
    if not callable(func):
        raise TypeError(
            f"@{spec.kind} must decorate a function, got {type(func).__name__}: "
            f"write '@{spec.kind}' or '@{spec.kind}(name=...)' directly above a 'def'"
        )
    old = get_spec(func)
    if old is not None and old != spec:
        code = getattr(func, "__code__", None)
        name = spec.name or getattr(func, "__name__", "?")
        raise DefinitionError([Problem(
            spec.kind, str(name), code.co_filename.rsplit("/", 1)[-1] if code else "",
            code.co_firstlineno if code else 0,
            f"is decorated with both @{old.kind} and @{spec.kind}",
            "one callable is one symbol: keep one decorator, or wrap the function in a second 'def'",
        )])
    try:
        setattr(func, SPEC_ATTR, spec)
    except AttributeError as exc:
        raise TypeError(f"@{spec.kind} cannot mark {func!r}: decorate a plain 'def' function") from exc
    return func


def _make(
    kind: Kind,
    func: Any,
    name: Optional[str],
    options: dict[str, Any],
) -> Any:
    if isinstance(func, str) and name is None:  # @source("name")
        func, name = None, func
    allowed = kind.spec.options
    rejected = tuple((k, options.pop(k)) for k in sorted(options) if k not in allowed)
    hints = options.pop("hints", None) or {}
    conf_keys = options.pop("conf_keys", None) or {}
    for key in ("description", "label"):
        if options.get(key) is not None:
            options[key] = Text.of(options[key])
    spec = SymbolSpec(
        kind=kind,
        name=name,
        hints=tuple((k, Text.of(v)) for k, v in dict(hints).items()),
        conf_keys=tuple((str(k), dict(v)) for k, v in dict(conf_keys).items()),
        rejected=rejected,
        **options,
    )
    if func is None:
        return lambda f: _mark(f, spec)
    return _mark(func, spec)


@overload
def source(func: F, /) -> F: ...
@overload
def source(
    func: Optional[str] = None,
    /,
    *,
    name: Optional[str] = None,
    description: TextLike = None,
    label: TextLike = None,
    conf_keys: Optional[Mapping[str, Mapping[str, Any]]] = None,
    hints: Optional[Mapping[str, TextLike]] = None,
) -> Callable[[F], F]: ...
def source(func: Any = None, /, *, name: Optional[str] = None, **options: Any) -> Any:
    """Mark a generator (sync or async) as an eKuiper source.

    Its parameters are the source's properties, read from ``sources/<name>.yaml``;
    each yielded dict is one row (a list yields several, ``Row(data, meta)`` adds meta).
    ``conf_keys`` maps extra confKey names to property overrides. A parameter
    named ``datasource`` receives the stream's DATASOURCE; one annotated
    ``Context`` receives the rule context.
    """
    return _make(Kind.SOURCE, func, name, options)


@overload
def sink(func: F, /) -> F: ...
@overload
def sink(
    func: Optional[str] = None,
    /,
    *,
    name: Optional[str] = None,
    description: TextLike = None,
    label: TextLike = None,
    hints: Optional[Mapping[str, TextLike]] = None,
    require_ack: bool = False,
) -> Callable[[F], F]: ...
def sink(func: Any = None, /, *, name: Optional[str] = None, **options: Any) -> Any:
    """Mark a function as an eKuiper sink.

    A plain function is called once per item with the data as its first
    parameter, shaped by that parameter's annotation (``bytes``, ``str``,
    ``dict`` per row, ``list[dict]`` per message with all its rows, ``list[Row]``
    the same with each row's event number, or ``Any``). A generator function
    is a sink with setup and teardown: it receives each item from ``yield``.
    Other parameters are the sink's properties, from the rule action.
    ``require_ack=True`` declares that the sink must not lose rows: a rule that
    starts it without ``requireAck`` gets a warning in the log.
    """
    return _make(Kind.SINK, func, name, options)


@overload
def function(func: F, /) -> F: ...
@overload
def function(
    func: Optional[str] = None,
    /,
    *,
    name: Optional[str] = None,
    description: TextLike = None,
    label: TextLike = None,
    aggregate: bool = False,
    example: str = "",
    hints: Optional[Mapping[str, TextLike]] = None,
) -> Callable[[F], F]: ...
def function(func: Any = None, /, *, name: Optional[str] = None, **options: Any) -> Any:
    """Mark a function as an eKuiper SQL function.

    Its positional parameters are the SQL arguments (``*args`` makes it
    variadic). With ``aggregate=True`` each argument receives the list of the
    group's values.
    """
    return _make(Kind.FUNCTION, func, name, options)


class ConnectionSpec(NamedTuple):
    """What ``@connection`` recorded about a factory."""

    name: Optional[str] = None
    description: Optional[Text] = None
    open_timeout: float = 10.0


def get_connection_spec(obj: Any) -> Optional[ConnectionSpec]:
    """The spec ``@connection`` attached to ``obj``, or ``None``."""
    spec = getattr(obj, CONNECTION_ATTR, None)
    return spec if isinstance(spec, ConnectionSpec) else None


@overload
def connection(func: F, /) -> F: ...
@overload
def connection(
    func: Optional[str] = None,
    /,
    *,
    name: Optional[str] = None,
    description: TextLike = None,
    open_timeout: float = 10.0,
) -> Callable[[F], F]: ...
def connection(func: Any = None, /, *, name: Optional[str] = None, description: TextLike = None,
               open_timeout: float = 10.0) -> Any:
    """Mark a generator as a shared connection: it opens a client, yields it, and closes it after the yield.

    A source or sink asks for it with a parameter annotated ``Annotated[Client, factory]``; the factory's
    parameters become properties of that symbol. The plugin process opens one client per distinct settings and
    shares it among every rule and symbol that uses it, and closes it when the last of them stops. Opening may
    take ``open_timeout`` seconds before the start that waits for it fails.
    """
    if isinstance(func, str) and name is None:
        func, name = None, func
    spec = ConnectionSpec(name, Text.of(description) if description is not None else None, float(open_timeout))

    def mark(f: Any) -> Any:
        if not callable(f):
            raise TypeError(f"@connection must decorate a function, got {type(f).__name__}: "
                            "write '@connection' directly above a 'def' that yields the client")
        try:
            setattr(f, CONNECTION_ATTR, spec)
        except AttributeError as exc:
            raise TypeError(f"@connection cannot mark {f!r}: decorate a plain 'def' function") from exc
        return f

    return mark if func is None else mark(func)
