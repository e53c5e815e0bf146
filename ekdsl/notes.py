"""What a valid definition may still hide, said at export: a property or argument without an annotation, whose type
eKuiper then sees as ``any`` and whose value reaches the code as eKuiper sent it, unconverted and unchecked."""

from __future__ import annotations

import inspect
from typing import List

from .model import PluginModel

__all__ = ["definition_notes"]


def definition_notes(model: PluginModel) -> List[str]:
    """One line per parameter that took the type ``any`` for want of an annotation (or of a default to take the type
    of), in declaration order."""
    notes = []
    for sym in model.symbols:
        try:
            params = inspect.signature(sym.func).parameters
        except (TypeError, ValueError):
            continue
        role = "argument" if sym.kind.spec.arguments else "property"
        where = f" ({sym.file}:{sym.line})" if sym.file else ""
        for p in sym.params:
            param = params.get(p.pyname)
            if param is None or param.annotation is not inspect.Parameter.empty or p.type.kind != "any":
                continue
            notes.append(f"@{sym.kind} '{sym.name}'{where} {role} '{p.name}' has no annotation, so eKuiper's metadata "
                         f"says 'any' and the value reaches your code as eKuiper sends it, unchecked: annotate it "
                         f"('{p.pyname}: str', 'float', ...; 'Any' to keep it so)")
    return notes
