"""Config and arguments from eKuiper → keyword arguments for the user's callable, via the model."""

from __future__ import annotations

import logging
import re
from typing import Any, Dict, Mapping, Tuple

from ..context import Context
from ..errors import ConfigError, TemplateError
from ..kinds import Kind
from ..model import MISSING, FieldModel, SymbolModel, TypeInfo
from ..protocol import Control, require_ack
from ..reserved import SINK_PROPERTIES, SOURCE_PROPERTIES
from ..secrets import leaves, register
from ..types import coerce

__all__ = ["EKUIPER_KEYS", "bind_config", "make_context"]

# Keys eKuiper decodes or adds itself, tolerated and never passed on: the reserved property names (ekdsl.reserved,
# each traced to its Go file) and the keys eKuiper adds to every source config or action beside them.
EKUIPER_KEYS = {
    Kind.SOURCE: frozenset(r.name for r in SOURCE_PROPERTIES.values()) | {"colAliasMapping", "bufferLength"},
    Kind.SINK: frozenset(r.name for r in SINK_PROPERTIES.values()) | {
        "runAsync", "retryInterval", "retryCount", "topic", "batchSendTimeout", "sendError"},
}

_KNOWN_LOWER = {kind: frozenset(k.lower() for k in keys) for kind, keys in EKUIPER_KEYS.items()}
_TEMPLATE = re.compile(r"{{(.*?)}}")  # what eKuiper's planner takes for a template (planner_sink.go findTemplateProps)


def bind_config(sym: SymbolModel, control: Control, log: logging.Logger) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``(kwargs for the callable, the config as received)``; raise :class:`ConfigError` on a bad value.

    Keys match the properties by name, then case-insensitively (eKuiper lower-cases yaml keys it
    does not find in the source json). Missing properties take their defaults. A sink declared
    with ``require_ack=True`` started without ``requireAck`` (in any case) is logged as a warning.
    """
    config = dict(control.config)
    lower = {str(k).lower(): k for k in config}
    kwargs: Dict[str, Any] = {}
    used = set()
    for p in sym.params:
        key = p.name if p.name in config else lower.get(p.name.lower())
        if key is None:
            if p.required:
                where = Kind(sym.kind).spec.config_from.format(name=sym.name)
                if p.type.secret and sym.kind == Kind.SOURCE:
                    where += (f", or, to keep a secret out of the yaml, eKuiper's environment: "
                              f"{sym.name.upper()}__DEFAULT__{p.name.upper()}=...")
                raise ConfigError(sym.name, p.name, p.type.describe(), None,
                                  f"the property is required: set it in {where}")
            if p.dynamic and isinstance(p.default, str) and "{{" in p.default:
                kwargs[p.pyname] = _template(sym, p, p.default)
            continue
        used.add(key)
        value = config[key]
        if p.dynamic and isinstance(value, str) and "{{" in value:
            kwargs[p.pyname] = _template(sym, p, value)
        else:
            kwargs[p.pyname] = coerce(value, p.type, symbol=sym.name, name=p.name)
    if sym.datasource_param is not None:
        ds = config.get("datasource") or control.data_source or config.get("dataSource") or ""
        if not ds and sym.datasource is not None and sym.datasource.default is not MISSING:
            ds = sym.datasource.default
        if sym.datasource is not None and ds != "":
            ds = coerce(ds, sym.datasource.type, symbol=sym.name, name=sym.datasource.name)
        kwargs[sym.datasource_param] = ds
    register(v for p in (*sym.params, sym.datasource) if p is not None and p.type.nested(_secret)
             for v in leaves(kwargs.get(p.pyname), p.type))
    known = _KNOWN_LOWER.get(sym.kind, frozenset())  # eKuiper matches them in any case
    unknown = sorted(str(k) for k in config if k not in used and str(k).lower() not in known and k != "dataSource")
    if unknown:
        names = ", ".join(p.name for p in sym.params) or "(none)"
        log.warning("ignoring unknown properties %s; known: %s", ", ".join(unknown), names)
    if sym.kind == Kind.SINK:
        _warn_templates(sym, config, log)
    if sym.connections and isinstance(config.get("connectionSelector"), str):
        _warn_selector(sym, config, log)
    if sym.require_ack and not require_ack(config):
        log.warning("this sink must not lose rows, but the rule does not set requireAck: "
                    'add "requireAck": true to the rule action\'s properties')
    return kwargs, config


def _template(sym: SymbolModel, p: FieldModel, text: str) -> Any:
    from ..template import Template  # only a dynamic property loads the parser

    try:
        return Template(text)
    except TemplateError as exc:
        raise ConfigError(sym.name, p.name, "a data template ekdsl evaluates", text, exc.reason) from None


def _warn_templates(sym: SymbolModel, config: Mapping[str, Any], log: logging.Logger) -> None:
    """eKuiper evaluates every string property holding ``{{...}}``, per message; one the sink does not evaluate
    reaches it as written."""
    evaluated = {p.name.lower() for p in sym.params if p.dynamic or p.type.kind == "template"}
    for key, value in config.items():
        if isinstance(value, str) and _TEMPLATE.search(value) and str(key).lower() not in evaluated:
            log.warning("property '%s' holds a data template (%s): eKuiper evaluates it for each message (and drops "
                        "a message it cannot evaluate it on), but this sink receives the text as written; declare "
                        "the property with Param(dynamic=True) to receive its value", key, value)


def _warn_selector(sym: SymbolModel, config: Mapping[str, Any], log: logging.Logger) -> None:
    """eKuiper merges a named connection's properties into the config; none of a connection's settings there
    means it found none."""
    lower = {str(k).lower() for k in config}
    for use in sym.connections:
        names = [p.name for p in use.connection.params]
        if names and not any(n.lower() in lower for n in names):
            where = (f"of type '{sym.name}' (POST /connections with \"typ\": \"{sym.name}\")"
                     if sym.kind == Kind.SINK else "(POST /connections)")
            log.warning("connectionSelector '%s' is set, but none of connection '%s''s settings (%s) arrived: "
                        "eKuiper found no connection of that id %s; the defaults are used",
                        config["connectionSelector"], use.connection.name, ", ".join(names), where)


def make_context(plugin: str, sym: SymbolModel, control: Control, config: Mapping[str, Any],
                 logger: logging.Logger, stores: Any = None, connections: Any = None) -> Context:
    """The context of a source or sink instance; ``stores``: where its state lives (``None``: the process's);
    ``connections``: its leases on shared connections."""
    meta = control.meta
    return Context(plugin=plugin, symbol=sym.name, rule_id=meta.rule_id, op_id=meta.op_id,
                   instance_id=meta.instance_id, config=dict(config), logger=logger, kind=str(sym.kind),
                   stores=stores, connections=connections)


def _secret(t: TypeInfo) -> bool:
    return t.secret
