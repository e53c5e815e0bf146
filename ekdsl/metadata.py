"""The model → the files eKuiper reads, as plain dicts and deterministic text.

Formats follow eKuiper's metadata readers: the plugin json
(``internal/plugin/portable/model.go``), ``sources/<s>.json`` with
``properties`` as a map keyed by confKey, its companion yaml, ``sinks/<s>.json``
with ``properties`` as a list, and ``functions/<f>.json``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from .kinds import KINDS, Kind
from .model import MISSING, FieldModel, PluginModel, SymbolModel, Text, TypeInfo
from .types import control_of, ekuiper_type, plain, values_of

__all__ = [
    "EXECUTABLE",
    "dump_json",
    "dump_yaml",
    "function_json",
    "metadata_files",
    "plugin_json",
    "sink_json",
    "source_json",
    "source_yaml",
]

EXECUTABLE = "main.py"
_ZERO = {"str": "", "int": 0, "float": 0.0, "bool": False, "bytes": "", "datetime": "", "any": "",
         "list": [], "dict": {}, "object": {}, "template": ""}


def dump_json(data: Any) -> str:
    """Deterministic, human-readable JSON text."""
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def dump_yaml(data: Dict[str, Any]) -> str:
    """Deterministic YAML text (declaration order kept)."""
    import yaml  # only export needs yaml; the run path never imports it

    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000))


def plugin_json(model: PluginModel, executable: str = EXECUTABLE) -> Dict[str, Any]:
    """``<name>.json``: what eKuiper's installer validates."""
    data: Dict[str, Any] = {
        "name": model.name,
        "version": model.version,
        "language": "python",
        "executable": executable,
    }
    if model.conda_env:  # eKuiper launches: conda run -n <env> <pythonBin> <executable> <arg>
        data.update(virtualEnvType="conda", env=model.conda_env)
    return {
        **data,
        **{kind.folder: [s.name for s in model.of_kind(kind)] for kind in KINDS},
    }


def _about(model: PluginModel, sym: SymbolModel) -> Dict[str, Any]:
    about: Dict[str, Any] = {
        "trial": model.trial,
        "author": {k: model.author.get(k, "") for k in ("name", "email", "company", "website")},
        "helpUrl": model.help_url.to_json(),
        "description": (sym.description or model.description).to_json(),
    }
    return about


def _node(sym: SymbolModel, category: Kind) -> Dict[str, Any]:
    return {"category": str(category), "icon": "iconPath", "label": sym.label.to_json()}


def _default(f: FieldModel, override: Any = MISSING, role: str = "property") -> Any:
    t = f.type
    if t.kind == "object" or (t.kind == "list" and t.item is not None and t.item.kind == "object"):
        obj = t if t.kind == "object" else t.item
        assert obj is not None
        return [field_json(sub) for sub in obj.fields]
    value = override if override is not MISSING else f.default
    if value is MISSING:
        if t.kind in ("literal", "enum"):
            return plain(t.choices[0])
        return _ZERO[t.kind]
    out = plain(value)
    if isinstance(out, list) and role == "property":
        # eKuiper reads an array default as nested fields (internal/meta/sinkMeta.go newField): an array of
        # scalars fails to load, and stops its metadata directory at boot. Its own files write [] and keep
        # the real default in the source yaml (a sink's stays in the signature).
        return []
    return out


def field_json(f: FieldModel, override: Any = MISSING, role: str = "property") -> Dict[str, Any]:
    """One field object (a property, or a function argument with ``role="argument"``)."""
    out: Dict[str, Any] = {"name": f.name}
    if role == "property" or f.default is not MISSING:
        out["default"] = _default(f, override, role)
    out["optional"] = not f.required
    out["control"] = control_of(f.type, role)
    out["type"] = ekuiper_type(f.type)
    values = values_of(f.type)
    if values is not None:
        out["values"] = values
    out["hint"] = f.hint.to_json()
    out["label"] = (f.label or Text(f.name, f.name)).to_json()
    return out


def _selector(sym: SymbolModel) -> List[Dict[str, Any]]:
    """For a symbol with shared connections: eKuiper's ``connectionSelector``, which takes a named connection's
    props as the settings. Listed in a source's json, it also keeps its case in the yaml (eKuiper lower-cases the
    keys the json does not name, and then does not see it)."""
    if not sym.connections:
        return []
    typ = f" with typ '{sym.name}'" if sym.kind == Kind.SINK else ""
    hint = Text(f"The id of a connection created with POST /connections{typ}: its props are taken as the settings "
                f"of this {sym.kind}'s connections")
    return [{"name": "connectionSelector", "default": "", "optional": True, "control": "text", "type": "string",
             "hint": hint.to_json(), "label": Text("Connection", "Connection").to_json()}]


def source_json(model: PluginModel, sym: SymbolModel) -> Dict[str, Any]:
    """``sources/<s>.json``, ``properties`` as the map eKuiper needs to read the yaml."""
    props: Dict[str, List[Dict[str, Any]]] = {"default": [field_json(p) for p in sym.params] + _selector(sym)}
    for key, values in sym.conf_keys:
        props[key] = [field_json(p, values.get(p.name, MISSING)) for p in sym.params] + _selector(sym)
    out: Dict[str, Any] = {"about": _about(model, sym), "libs": []}
    if sym.datasource is not None:
        ds = sym.datasource
        out["dataSource"] = {
            "default": "" if ds.default is MISSING else plain(ds.default),
            "hint": (ds.hint or Text("The stream's DATASOURCE")).to_json(),
            "label": Text("Data Source", "数据源").to_json(),
        }
    out["properties"] = props
    out["node"] = _node(sym, Kind.SOURCE)
    return out


def source_yaml(sym: SymbolModel) -> Dict[str, Any]:
    """``sources/<s>.yaml``: every property with a default, then each confKey's overrides."""
    data: Dict[str, Any] = {
        "default": {p.name: plain(p.default) for p in sym.params if p.default is not MISSING}
    }
    for key, values in sym.conf_keys:
        data[key] = {k: plain(v) for k, v in values.items()}
    return data


def sink_json(model: PluginModel, sym: SymbolModel) -> Dict[str, Any]:
    """``sinks/<s>.json``, ``properties`` as a list."""
    return {
        "about": _about(model, sym),
        "libs": [],
        "properties": [field_json(p) for p in sym.params] + _selector(sym),
        "node": _node(sym, Kind.SINK),
    }


def _return(t: Optional[TypeInfo], hint: Text) -> Dict[str, Any]:
    return {"type": ekuiper_type(t) if t else "any", "hint": hint.to_json()}


def function_json(model: PluginModel, sym: SymbolModel) -> Dict[str, Any]:
    """``functions/<f>.json``: one function with its args and return type."""
    return {
        "about": _about(model, sym),
        "name": sym.name,
        "functions": [{
            "name": sym.name,
            "example": sym.example,
            "aggregate": sym.aggregate,
            "hint": sym.description.to_json(),
            "args": [field_json(p, role="argument") for p in sym.params],
            "return": _return(sym.returns, sym.returns_hint),
            "node": _node(sym, Kind.FUNCTION),
        }],
    }


def metadata_files(model: PluginModel, executable: str = EXECUTABLE) -> Dict[str, str]:
    """Every metadata file of the plugin: zip path → text."""
    files = {f"{model.name}.json": dump_json(plugin_json(model, executable))}
    for sym in model.sources:
        files[f"sources/{sym.name}.json"] = dump_json(source_json(model, sym))
        files[f"sources/{sym.name}.yaml"] = dump_yaml(source_yaml(sym))
    for sym in model.sinks:
        files[f"sinks/{sym.name}.json"] = dump_json(sink_json(model, sym))
    for sym in model.functions:
        files[f"functions/{sym.name}.json"] = dump_json(function_json(model, sym))
    return files
