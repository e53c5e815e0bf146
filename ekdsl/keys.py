"""Property keys as eKuiper compares them: two parameters that map to one key are a definition error.

eKuiper compares property keys ignoring case: it lower-cases a source yaml's keys unless the source json names
them (``internal/conf/load.go``), and decodes its own settings with ``cast.MapToStruct`` (mapstructure), which
matches keys in any case. Two parameters whose keys are equal so compared would read one value, and the metadata
would list the key twice.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from .model import FieldModel

__all__ = ["key_clashes"]


def _shown(fm: FieldModel, datasource: Optional[FieldModel]) -> str:
    if fm is datasource:
        return f"'{fm.pyname}' (the stream's DATASOURCE)"
    return f"'{fm.pyname}' (Param(name={fm.name!r}))" if fm.key else f"'{fm.name}'"


def key_clashes(params: Sequence[FieldModel], datasource: Optional[FieldModel] = None) -> List[Tuple[str, str]]:
    """``(problem, fix)`` for each property (or the source's DATASOURCE parameter, ``datasource``) whose key an
    earlier one already has, compared ignoring case."""
    found: List[Tuple[str, str]] = []
    first: Dict[str, FieldModel] = {}
    for fm in ([datasource] if datasource is not None else []) + list(params):
        seen = first.setdefault(fm.name.lower(), fm)
        if seen is fm:
            continue
        fix_for = fm if fm.key or seen is datasource else seen
        found.append((f"parameters {_shown(seen, datasource)} and {_shown(fm, datasource)} map to one eKuiper "
                      f"key, '{fm.name}' (eKuiper compares keys ignoring case), so both would read one value",
                      f"give '{fix_for.pyname}' another key with Param(name=...), one no other parameter uses, or "
                      "remove one of them"))
    return found
