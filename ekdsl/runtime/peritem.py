"""What changes from one call of a sink to the next: its dynamic properties and its shared clients.

eKuiper evaluates a property's data template against each row when the rule action sets ``sendSingle``, and
against each event (the list of rows a rule emitted together) otherwise, batches included
(``internal/topo/node/transform_op.go``). The sink evaluates it against the same: each call of the user's code gets
the value of the row or event its data came from (a call that receives several gets their common value), typed
as the property is, and the current client of each shared connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

from ..codec import loads
from ..context import Context
from ..errors import ConfigError, RenderError
from ..framing import sink_events, sink_rows
from ..model import FieldModel, SymbolModel
from ..protocol import send_single
from ..types import coerce

if TYPE_CHECKING:
    from ..template import Template

__all__ = ["PerItem"]

Extra = Union[Dict[str, Any], str]  # keyword arguments for one call, or why it cannot be made
_WHOLE = frozenset({"bytes", "str", "any"})


class PerItem:
    """The per-call keyword arguments of one sink instance."""

    def __init__(self, sym: SymbolModel, templates: Dict[str, Tuple[FieldModel, Template]], ctx: Context) -> None:
        self.sym, self.templates, self.links = sym, templates, ctx.connections
        self.per_row = send_single(ctx.config)
        self.kind = sym.data_type.kind if sym.data_type is not None else "any"

    @classmethod
    def of(cls, sym: SymbolModel, kwargs: Dict[str, Any], ctx: Context) -> Optional[PerItem]:
        """``None`` for a sink with neither; else takes the templates out of ``kwargs`` (bound at start)."""
        dynamic = sym.dynamic
        if not dynamic and ctx.connections is None:
            return None
        from ..template import Template  # only a sink with dynamic properties loads the parser

        templates = {p.pyname: (p, kwargs.pop(p.pyname)) for p in dynamic if isinstance(kwargs.get(p.pyname), Template)}
        if not templates and ctx.connections is None:
            return None
        return cls(sym, templates, ctx)

    def clients(self) -> Dict[str, Any]:
        """The current client of each shared connection (a reopened one replaces the broken one)."""
        return self.links.clients() if self.links is not None else {}

    def values(self, payload: bytes, count: int) -> List[Extra]:
        """For each of the ``count`` items of ``payload`` (as the sink splits it): its keyword arguments, or the
        error text that fails that item."""
        clients = self.clients()
        if not self.templates:
            return [clients] * count
        try:
            groups = self._groups(loads(payload))
        except (ValueError, RecursionError):
            return [f"the message is not JSON (format or dataTemplate?), so dynamic properties "
                    f"({', '.join(p.name for p, _ in self.templates.values())}) cannot be evaluated"] * count
        if len(groups) != count:
            error = f"the message has {len(groups)} items for dynamic properties, but the sink received {count}"
            return [error] * count
        rendered: Dict[int, Extra] = {}
        out: List[Extra] = []
        for group in groups:
            values = [self._unit(index, unit, rendered) for index, unit in group]
            out.append(self._agree(values, clients))
        return out

    def _groups(self, value: Any) -> List[List[Tuple[int, Any]]]:
        """The units (rows or events, numbered) each item's data came from."""
        units = list(sink_rows(value)) if self.per_row else sink_events(value)
        numbered = list(enumerate(units))
        if self.kind in _WHOLE or self.kind == "list":  # one call takes the whole message (a list: its rows)
            return [numbered]
        if self.per_row:
            return [[u] for u in numbered]
        return [[(i, event)] for i, event in numbered for _ in sink_rows(event)]

    def _unit(self, index: int, unit: Any, rendered: Dict[int, Extra]) -> Extra:
        if index not in rendered:
            rendered[index] = self._render(unit)
        return rendered[index]

    def _render(self, unit: Any) -> Extra:
        values: Dict[str, Any] = {}
        for pyname, (field, template) in self.templates.items():
            try:
                text = template.render(unit)
                values[pyname] = coerce(text, field.type, symbol=self.sym.name, name=field.name)
            except RenderError as exc:
                return f"property '{field.name}': {exc}"
            except ConfigError as exc:
                return f"{exc} (from the template {template.source!r})"
        return values

    def _agree(self, values: List[Extra], clients: Dict[str, Any]) -> Extra:
        first = values[0]
        for value in values:
            if isinstance(value, str):
                return value
            if value != first:
                assert isinstance(first, dict)
                name = next(k for k in value if value[k] != first.get(k))
                unit = "row" if self.per_row else "event"
                return (f"property '{name}' is {first[name]!r} for one {unit} of this message and {value[name]!r} for "
                        f"another, but this sink takes one value per call: annotate its data parameter dict to be "
                        "called per row")
        assert isinstance(first, dict)
        return {**first, **clients}
