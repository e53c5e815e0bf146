"""The symbol kinds as data: one enum member and one :class:`KindSpec` row per kind.

Every rule that differs by kind reads this table (decorator options, metadata folder, the control channel's
``pluginType``, parameter roles, the runner) instead of comparing strings. A new kind is a new row.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, FrozenSet, Mapping, NamedTuple, Optional, Tuple

__all__ = ["KINDS", "WIRE_NAMES", "Kind", "KindSpec", "Role", "check_options", "kind_of_wire"]


class Kind(str, Enum):
    """What a decorated callable is; equal to its name (``Kind.SOURCE == "source"``)."""

    SOURCE = "source"
    SINK = "sink"
    FUNCTION = "function"

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @property
    def spec(self) -> KindSpec:
        return KINDS[self]

    @property
    def wire(self) -> str:
        """The control channel's ``pluginType``."""
        return KINDS[self].wire

    @property
    def folder(self) -> str:
        return KINDS[self].folder


class Role(str, Enum):
    """A parameter that is not a property: what the runtime passes to it."""

    CONTEXT = "context"  # annotated Context: the rule context
    DATASOURCE = "datasource"  # named ``datasource``: the stream's DATASOURCE
    DATA = "data"  # the first parameter: the sink's payload


_COMMON = frozenset({"name", "description", "label", "hints"})


class KindSpec(NamedTuple):
    kind: Kind
    wire: str  # ``pluginType`` on the control channel
    folder: str  # plugin json key and metadata folder (``etc/<folder>/<symbol>.json``)
    options: FrozenSet[str]  # the decorator's keyword options
    roles: Tuple[Role, ...]  # special parameters the runtime fills
    runner: str  # ``module:attr`` of what runs an instance, imported only when one starts
    generator: Optional[bool]  # True: must be a generator; False: must not be; None: either
    arguments: bool  # parameters are SQL arguments passed by position (else properties passed by name)
    config_from: str  # where a required property is set (``{name}``: the symbol's name)


KINDS: Mapping[Kind, KindSpec] = {
    Kind.SOURCE: KindSpec(Kind.SOURCE, "source", "sources", _COMMON | {"conf_keys"},
                          (Role.CONTEXT, Role.DATASOURCE), "ekdsl.runtime.source:SourceRunner", True, False,
                          "sources/{name}.yaml (default section or a confKey)"),
    Kind.SINK: KindSpec(Kind.SINK, "sink", "sinks", _COMMON | {"require_ack"},
                        (Role.CONTEXT, Role.DATA), "ekdsl.runtime.sink:SinkRunner", None, False,
                        "the rule action's properties"),
    Kind.FUNCTION: KindSpec(Kind.FUNCTION, "func", "functions", _COMMON | {"aggregate", "example"},
                            (Role.CONTEXT,), "ekdsl.runtime.function:FunctionService", False, True,
                            "the SQL call's arguments"),
}
_BY_WIRE = {s.wire: s.kind for s in KINDS.values()}
WIRE_NAMES = tuple(_BY_WIRE)


def kind_of_wire(plugin_type: str) -> Optional[Kind]:
    """The kind a control command's ``pluginType`` names, or ``None``."""
    return _BY_WIRE.get(plugin_type)


class OptionProblem(NamedTuple):
    message: str
    fix: str


def check_options(kind: Kind, options: Mapping[str, Any]) -> Tuple[OptionProblem, ...]:
    """What is wrong with a decorator's keyword options: unknown ones (with a "did you mean"), and ones that
    belong to another kind."""
    import difflib  # only a definition with a rejected option gets here

    allowed = KINDS[kind].options
    valid = ", ".join(sorted(allowed))
    found = []
    for opt, value in options.items():
        if opt in allowed:
            continue
        owners = [s.kind for s in KINDS.values() if opt in s.options]
        if owners:
            found.append(OptionProblem(f"uses {opt}={value!r}, which only {' and '.join(f'{k}s' for k in owners)} "
                                       f"support", f"remove {opt}=...; @{kind} takes: {valid}"))
            continue
        close = difflib.get_close_matches(opt, sorted(_COMMON.union(*(s.options for s in KINDS.values()))), 1)
        hint = f"did you mean {close[0]!r}? " if close and close[0] in allowed else ""
        found.append(OptionProblem(f"has an unknown option {opt!r}", f"{hint}@{kind} takes: {valid}"))
    return tuple(found)
