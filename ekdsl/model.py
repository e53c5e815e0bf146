"""The neutral model of a plugin: pure, immutable data built by :mod:`ekdsl.introspect`.

Metadata export, packaging and the runtime all read this model; none of them
looks at a signature again. The classes are NamedTuples rather than frozen
dataclasses: as immutable, and much cheaper to define in a plugin process
that imports this module before its handshake.
"""

from __future__ import annotations

import enum
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple, Optional, Tuple

from .kinds import Kind

__all__ = [
    "MISSING",
    "ConnectionModel",
    "ConnectionUse",
    "FieldModel",
    "PluginModel",
    "SymbolModel",
    "Text",
    "TypeInfo",
]


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing.MISSING
"""Marks a parameter without a default value."""


class Text(NamedTuple):
    """A text in eKuiper's two metadata languages."""

    en_US: str = ""
    zh_CN: str = ""

    @classmethod
    def of(cls, value: Any) -> Text:
        """Build from a str (both languages) or a mapping with ``en_US``/``zh_CN`` (or ``en``/``zh``)."""
        if value is None:
            return cls()
        if isinstance(value, Text):
            return value
        if isinstance(value, str):
            return cls(value, value)
        if isinstance(value, Mapping):
            en = str(value.get("en_US", value.get("en", "")))
            zh = str(value.get("zh_CN", value.get("zh", ""))) or en
            return cls(en, zh)
        raise TypeError(f"expected a str or a mapping with 'en_US'/'zh_CN', got {type(value).__name__}")

    def __bool__(self) -> bool:
        return bool(self.en_US or self.zh_CN)

    def to_json(self) -> dict[str, str]:
        return {"en_US": self.en_US, "zh_CN": self.zh_CN}


_NO_TEXT: Text = Text()


class TypeInfo(NamedTuple):
    """A parameter's type, reduced to what eKuiper and coercion need.

    ``kind`` is one of: ``str int float bool bytes datetime any list dict object
    literal enum``, or ``row`` (the items of a sink's ``list[Row]`` data parameter only).
    ``item`` is the element type of a list (or the value type of a dict), ``fields`` the
    fields of an object (TypedDict or dataclass), ``choices`` the allowed values of a
    literal or enum.
    """

    kind: str
    optional: bool = False
    item: Optional[TypeInfo] = None
    fields: Tuple[FieldModel, ...] = ()
    choices: Tuple[Any, ...] = ()
    pytype: Any = None  # the enum class, dataclass, or TypedDict class
    display: str = ""
    constraints: Any = None  # ekdsl.constraints.Constraints when Annotated sets any (checked by types.coerce)
    secret: bool = False  # Param(secret=True): the value is never shown

    def nested(self, test: Callable[[TypeInfo], bool]) -> bool:
        """Whether ``test`` holds for this type or any type inside it (items, object fields), at any depth."""
        return test(self) or (self.item is not None and self.item.nested(test)) or \
            any(f.type.nested(test) for f in self.fields)

    def describe(self) -> str:
        """A short human description, e.g. ``int``, ``float > 0`` or ``one of 'fast', 'slow'``."""
        text = self.display or self.kind
        if self.constraints:
            text = f"{text} {self.constraints.describe()}"
        return f"{text} or null" if self.optional else text


class FieldModel(NamedTuple):
    """A configuration property, a function argument, or a field of an object type."""

    name: str
    type: TypeInfo
    default: Any = MISSING
    hint: Text = _NO_TEXT
    label: Text = _NO_TEXT
    variadic: bool = False
    key: str = ""  # the Python parameter name, when ``name`` was overridden
    dynamic: bool = False  # a data template evaluated per row (sink properties)

    @property
    def required(self) -> bool:
        return self.default is MISSING and not self.type.optional and not self.variadic

    @property
    def pyname(self) -> str:
        return self.key or self.name


class ConnectionModel(NamedTuple):
    """A shared connection's factory: its settings are properties of every symbol that uses it."""

    name: str
    func: Callable[..., Any]
    params: Tuple[FieldModel, ...]
    is_generator: bool = True
    open_timeout: float = 10.0
    file: str = ""
    line: int = 0
    description: Text = _NO_TEXT


class ConnectionUse(NamedTuple):
    """A symbol's parameter that receives the client of ``connection``."""

    param: str
    connection: ConnectionModel


class SymbolModel(NamedTuple):
    """One source, sink or function of a plugin."""

    kind: Kind
    name: str
    func: Callable[..., Any]
    description: Text
    params: Tuple[FieldModel, ...]
    file: str = ""
    line: int = 0
    context_param: Optional[str] = None
    datasource_param: Optional[str] = None
    datasource: Optional[FieldModel] = None
    data_param: Optional[str] = None
    data_type: Optional[TypeInfo] = None
    returns: Optional[TypeInfo] = None
    returns_hint: Text = _NO_TEXT
    is_async: bool = False
    is_generator: bool = False
    aggregate: bool = False
    conf_keys: Tuple[Tuple[str, Mapping[str, Any]], ...] = ()
    example: str = ""
    label: Text = _NO_TEXT
    require_ack: bool = False
    context_at: Optional[int] = None  # the context parameter's position, if it can be passed by position
    connections: Tuple[ConnectionUse, ...] = ()  # shared connections; their settings are in ``params`` too

    @property
    def dynamic(self) -> Tuple[FieldModel, ...]:
        """The properties evaluated per row (``Param(dynamic=True)``)."""
        return tuple(p for p in self.params if p.dynamic)

    @property
    def arity(self) -> tuple[int, Optional[int]]:
        """For functions: the minimum and maximum argument count (``None`` = unbounded).

        Arguments with a default or an ``Optional`` type may be left out.
        """
        fixed = [p for p in self.params if not p.variadic]
        low = sum(1 for p in fixed if p.required)
        high = None if any(p.variadic for p in self.params) else len(fixed)
        return low, high


class PluginModel(NamedTuple):
    """A whole plugin: its identity and its symbols, in declaration order."""

    name: str
    version: str
    symbols: Tuple[SymbolModel, ...]
    author: Mapping[str, str] = MappingProxyType({})
    help_url: Text = _NO_TEXT
    description: Text = _NO_TEXT
    trial: bool = False
    module: str = ""
    module_file: str = ""
    attr: str = ""
    include: Tuple[str, ...] = ()
    requirements: Tuple[str, ...] = ()  # as declared; export adds those of requirements.txt beside the module
    conda_env: str = ""  # run in this conda environment (eKuiper's virtualEnvType "conda")

    def of_kind(self, kind: Kind) -> tuple[SymbolModel, ...]:
        return tuple(s for s in self.symbols if s.kind == kind)

    @property
    def sources(self) -> tuple[SymbolModel, ...]:
        return self.of_kind(Kind.SOURCE)

    @property
    def sinks(self) -> tuple[SymbolModel, ...]:
        return self.of_kind(Kind.SINK)

    @property
    def functions(self) -> tuple[SymbolModel, ...]:
        return self.of_kind(Kind.FUNCTION)

    def get(self, kind: Kind, name: str) -> Optional[SymbolModel]:
        for sym in self.symbols:
            if sym.kind == kind and sym.name == name:
                return sym
        return None
