"""A parameter → the property eKuiper sets (:class:`ekdsl.model.FieldModel`): its type, default, name and key
checked, each problem located at its symbol; and a symbol's ``conf_keys`` checked against its properties."""

from __future__ import annotations

import inspect
import re
from typing import Any, Dict, Optional, Sequence, Tuple

from . import reserved as _reserved
from . import types as _types
from .callables import Collector
from .decorators import SymbolSpec
from .errors import ConfigError, TemplateError
from .hints import SUPPORTED, Unsupported, data_type_info, param_marker, strip, type_info, type_name
from .kinds import Kind, Role
from .model import MISSING, FieldModel, Text, TypeInfo

__all__ = ["NAME_RE", "PropertyReader", "conf_keys"]

NAME_RE = re.compile(r"[a-zA-Z0-9_-]+")  # matched whole: NAME_RE.fullmatch
_DYNAMIC_KINDS = frozenset({"str", "int", "float", "bool", "bytes", "datetime", "any", "literal", "enum"})
_NOT_TEXT = frozenset({"int", "float", "bool", "datetime"})
_RENAME = {"interval": "period", "format": "encoding", "key": "keyName", "timestamp": "timestampField",
           "delimiter": "separator", "fields": "columns", "concurrency": "workers", "compression": "codec"}


def _typed_example(kind: str, text: str) -> str:
    """The default ``text`` written as a ``kind`` literal, for a fix hint."""
    try:
        if kind == "int":
            return repr(int(text))
        if kind == "float":
            return repr(float(text))
    except ValueError:
        pass
    return {"bool": "False", "datetime": "datetime(2024, 1, 1)"}.get(kind, "0")


def _dynamic_problem(kind: Kind, gen: bool, t: TypeInfo) -> Optional[Tuple[str, str]]:
    """Why a property of type ``t`` cannot be dynamic (a sink's, evaluated per row and passed per call, of a type
    text converts to), and the fix; ``None`` if it can."""
    if kind != Kind.SINK:
        return ("is declared dynamic, but only a sink's properties are evaluated per row (eKuiper renders "
                "templates in rule actions)", "annotate it Template and call .render(data) with what your code has")
    if gen:
        return ("is declared dynamic, but a generator sink receives its properties once, at setup",
                "write the sink as a plain function (a @connection keeps what setup opened)")
    if t.kind not in _DYNAMIC_KINDS:
        return (f"is declared dynamic, but a template gives text, which cannot become {t.describe()}",
                "declare a str, number, bool, datetime, Literal or Enum")
    return None


class PropertyReader:
    """Reads the parameters of one symbol (``names``: all of them) as properties; ``gen``: it is a generator."""

    def __init__(self, spec: SymbolSpec, col: Collector, hints: Dict[str, Any], doc: Any, gen: bool,
                 names: Tuple[str, ...] = ()):
        self.spec, self.col, self.hints, self.doc, self.gen, self.names = spec, col, hints, doc, gen, names
        markers = (param_marker(hints.get(n)) for n in names)
        # every key a parameter may take, lower-cased: the names, and each Param(name=...)
        self.taken = frozenset(n.lower() for n in names) | {m.name.lower() for m in markers if m and m.name}
        self.spec_hints = dict(spec.hints)

    def type_of(self, param: inspect.Parameter, default_any: bool = False) -> Optional[TypeInfo]:
        """The parameter's type; ``default_any``: a data parameter (``Any`` unless annotated, or ``list[Row]``)."""
        ann = self.hints.get(param.name, inspect.Parameter.empty)
        if ann is inspect.Parameter.empty:
            default = param.default
            if default is inspect.Parameter.empty or default is None or default_any:
                return TypeInfo("any", display="any")
            ann = type(default)
        try:
            return data_type_info(ann) if default_any else type_info(ann)
        except Unsupported as exc:
            self.col.add(f"parameter '{param.name}': {exc}")
        except Exception as exc:
            self.col.add(f"parameter '{param.name}' has an annotation that cannot be used ({exc})",
                         f"use {SUPPORTED}")
        return None

    def field(self, param: inspect.Parameter, datasource: bool = False) -> Optional[FieldModel]:
        """The property, or ``None`` with its problems collected; ``datasource``: the source's DATASOURCE
        parameter, whose reserved name is meant."""
        t = self.type_of(param)
        if t is None:
            return None
        marker = param_marker(self.hints.get(param.name))
        default = MISSING if param.default is inspect.Parameter.empty else param.default
        if t.secret and default not in (MISSING, None, ""):
            self.col.add(f"parameter '{param.name}' is secret but has a default, which export would write into the "
                         "metadata and yaml that eKuiper serves to anyone who asks",
                         "remove the default (or make it '' or None) and set the value where eKuiper keeps "
                         "settings: see docs/howto.md#secrets")
            return None
        dynamic = bool(marker and marker.dynamic)
        if dynamic and not self._dynamic_ok(param.name, t):
            return None
        if default is not MISSING:
            if default is None and not t.optional and t.kind != "any":
                t = t._replace(optional=True)
            if not self._default_ok(param.name, default, t, dynamic):
                return None
        pname = marker.name if marker and marker.name else param.name
        if not NAME_RE.fullmatch(pname):
            self.col.add(f"parameter name '{pname}' is not a valid eKuiper property name",
                         "use letters, digits, '_' and '-' only")
        if not datasource and not self._datasource_clash(pname):
            self._check_reserved(pname, param.name)  # the DATASOURCE parameter is meant to get the stream's value
        hint = self.spec_hints.get(param.name) or (Text.of(marker.hint) if marker and marker.hint else None)
        return FieldModel(
            name=pname, key=param.name if pname != param.name else "", type=t, default=default,
            hint=hint or Text.of(self.doc.params.get(param.name, "")),
            label=Text.of(marker.label) if marker and marker.label else Text(pname, pname),
            variadic=param.kind is param.VAR_POSITIONAL, dynamic=dynamic,
        )

    def _datasource_clash(self, pname: str) -> bool:
        """Whether ``pname`` is the key of a source's DATASOURCE parameter (reported as a clash, naming both)."""
        return (pname.lower() == "datasource" and "datasource" in self.names
                and Role.DATASOURCE in Kind(self.spec.kind).spec.roles)

    def _default_ok(self, name: str, default: Any, t: TypeInfo, dynamic: bool) -> bool:
        if dynamic and isinstance(default, str) and "{{" in default:  # a template evaluated per row
            from .template import Template  # only a dynamic property loads the parser

            try:
                Template(default)
            except TemplateError as exc:
                self.col.add(f"parameter '{name}' has a default template that ekdsl refuses: {exc}",
                             "fix the default")
                return False
            return True
        try:
            _types.coerce(default, t, symbol=self.col.name, name=name)
        except ConfigError:
            self.col.add(f"parameter '{name}' has default {default!r}, which is not {t.describe()}",
                         "change the default or the annotation so they agree")
            return False
        if isinstance(default, str) and t.kind in _NOT_TEXT:
            self.col.add(f"parameter '{name}' has default {default!r}, a str where {t.kind} is declared "
                         "(it would reach your code as a str)",
                         f"write it as a {t.kind}: '{name}: {t.kind} = {_typed_example(t.kind, default)}'")
            return False
        return True

    def _dynamic_ok(self, name: str, t: TypeInfo) -> bool:
        problem = _dynamic_problem(Kind(self.spec.kind), self.gen, t)
        if problem is not None:
            self.col.add(f"parameter '{name}' {problem[0]}", problem[1])
        return problem is None

    def _check_reserved(self, pname: str, pyname: str) -> None:
        hit = _reserved.reserved_property(self.spec.kind, pname)
        if hit is None:
            return
        other = next((n for n in (_RENAME.get(hit.name, ""), f"{pyname}_value") if n and n.lower() not in self.taken),
                     f"{pyname}_{len(self.names)}")
        ann = self.hints.get(pyname)
        shown = type_name(strip(ann)) if ann is not None else "T"
        fix = (f"rename the key eKuiper sees with Annotated[{shown}, Param(name={other!r})], "
               "or give the parameter another name")
        if hit.name == "requireAck":
            fix = "remove it: the runtime acks every message whenever the rule action sets requireAck"
        elif hit.name == "datasource":
            fix = "name the parameter 'datasource' (without Param(name=...)) to receive the stream's DATASOURCE"
        self.col.add(f"property '{pname}' has a name eKuiper reserves ({hit.go}): {hit.effect}", fix)


def conf_keys(spec: SymbolSpec, params: Sequence[FieldModel], connected: bool,
              col: Collector) -> Tuple[Tuple[str, Dict[str, Any]], ...]:
    """``@source(conf_keys=...)``, each section's values checked against the properties ``params``;
    ``connected``: the symbol uses a connection (so a section may name one with ``connectionSelector``)."""
    out = []
    by_lower = {p.name.lower(): p for p in params}
    for key, values in spec.conf_keys:
        if not NAME_RE.fullmatch(key) or key == "default":
            col.add(f"confKey '{key}' is not a valid confKey name",
                    "use letters, digits, '_' and '-', and not 'default'")
            continue
        section: Dict[str, Any] = {}
        for prop, value in values.items():
            if prop == "connectionSelector" and connected and isinstance(value, str):
                section[prop] = value  # eKuiper takes a named connection's props as the settings
                continue
            fm = _conf_value(key, prop, value, by_lower, params, col)
            if fm is not None:
                section[fm.name] = value
        out.append((key, section))
    return tuple(out)


def _conf_value(key: str, prop: Any, value: Any, by_lower: Dict[str, FieldModel], params: Sequence[FieldModel],
                col: Collector) -> Optional[FieldModel]:
    """The property a confKey's ``prop`` sets to ``value``, or ``None`` with the problem collected."""
    fm = by_lower.get(str(prop).lower())
    if fm is None:
        col.add(f"confKey '{key}' sets unknown property '{prop}'",
                f"use one of: {', '.join(p.name for p in params) or '(none)'}")
        return None
    if fm.type.secret:
        col.add(f"confKey '{key}' sets the secret property '{fm.name}', which export would write into "
                "the yaml", "remove it from conf_keys: see docs/howto.md#secrets")
        return None
    try:
        _types.coerce(value, fm.type, symbol=col.name, name=fm.name)
    except ConfigError:
        col.add(f"confKey '{key}' sets '{fm.name}' to {value!r}, which is not "
                f"{fm.type.describe()}", "fix the value in conf_keys")
        return None
    return fm
