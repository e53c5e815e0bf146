"""What eKuiper's sink transform does with properties that hold data templates, for any sink, portable ones too.

The planner takes every string property matching ``{{(.*?)}}`` (in nested maps too) for a template and compiles it
with Go's ``text/template`` (``internal/topo/planner/planner_sink.go findTemplateProps``). For each row
(``sendSingle``) or event the transform renders them (``internal/topo/node/transform_op.go calculateProps``); when
that fails, the row or event is dropped before the sink, and the rule counts an exception. A portable sink receives
only the payload: its config keeps the template text (PROTOCOL §15).
"""

from __future__ import annotations

import re
from typing import Any, List, Mapping, Tuple

from ..codec import loads
from ..errors import RenderError, TemplateError
from ..framing import sink_events, sink_rows
from ..protocol import go_json
from ..template import Template
from .channels import HostError

__all__ = ["MessageDropped", "screen", "sink_templates"]

_TEMPLATE = re.compile(r"{{(.*?)}}")


class MessageDropped(HostError):
    """eKuiper would not deliver this message: a property's template fails on its data (the text is eKuiper's)."""


def sink_templates(config: Mapping[str, Any]) -> Tuple[List[Template], List[str]]:
    """The templates eKuiper renders for a sink with these props, and those the emulator cannot evaluate (Go may
    take them: sprig functions, ``if``, ``range``...)."""
    found: List[Template] = []
    unknown: List[str] = []
    for value in config.values():
        if isinstance(value, Mapping):
            sub, more = sink_templates(value)
            found += sub
            unknown += more
        elif isinstance(value, str) and _TEMPLATE.search(value):
            try:
                found.append(Template(value))
            except TemplateError:
                unknown.append(value)
    return found, unknown


def screen(payload: bytes, templates: List[Template], send_single: bool) -> bytes:
    """The payload as eKuiper delivers it: without the rows (``send_single``) or events a template fails on.
    Raises :class:`MessageDropped` when nothing is left."""
    if not templates:
        return payload
    try:
        value = loads(payload)
    except (ValueError, RecursionError):
        return payload  # not rows: nothing eKuiper would have rendered
    units = list(sink_rows(value)) if send_single else sink_events(value)
    kept, errors = [], []
    for unit in units:
        try:
            for tpl in templates:
                tpl.go_render(unit)
        except RenderError as exc:
            errors.append(f"fail to calculate props {tpl.source} through data {unit!r} with dataTemplate for error "
                          f"{exc.reason}")
            continue
        kept.append(unit)
    if not errors:
        return payload
    if not kept:
        raise MessageDropped(errors[0])
    return go_json(kept)  # a batch, some of whose rows or events were dropped
