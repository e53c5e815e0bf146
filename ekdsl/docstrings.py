"""Docstring parsing (Google, NumPy and reST styles) into a summary and per-parameter texts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

__all__ = ["Docstring", "parse_docstring"]

_GOOGLE_PARAMS = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters)\s*:\s*$"
)
_GOOGLE_RETURNS = re.compile(r"^(Returns|Return|Yields|Yield)\s*:\s*$")
_GOOGLE_OTHER = re.compile(r"^[A-Z][A-Za-z ]{1,30}:\s*$")
_GOOGLE_ENTRY = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^(\*{0,2}\w+)\s*(?::.*)?$")
_REST_PARAM = re.compile(r"^:(?:param|parameter|arg|argument|key|keyword)\s+(?:[^:]*?\s)?(\*{0,2}\w+)\s*:\s*(.*)$")
_REST_RETURNS = re.compile(r"^:(?:returns?|yields?)\s*:\s*(.*)$")
_REST_ANY = re.compile(r"^:\w+")
_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")


@dataclass(frozen=True)
class Docstring:
    """What ekdsl uses of a docstring."""

    summary: str = ""
    params: Dict[str, str] = field(default_factory=dict)
    returns: str = ""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _join(parts: List[str]) -> str:
    return " ".join(p.strip() for p in parts if p.strip())


def clean(doc: Optional[str]) -> List[str]:
    """Split a docstring into lines with the common indentation removed (like ``inspect.cleandoc``)."""
    if not doc:
        return []
    lines = doc.expandtabs().splitlines()
    rest = [ln for ln in lines[1:] if ln.strip()]
    margin = min((_indent(ln) for ln in rest), default=0)
    out = [lines[0].strip()] + [ln[margin:].rstrip() for ln in lines[1:]]
    while out and not out[0]:
        out.pop(0)
    while out and not out[-1]:
        out.pop()
    return out


def _summary(lines: List[str]) -> str:
    para: List[str] = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if not line.strip() or _GOOGLE_PARAMS.match(line) or _GOOGLE_RETURNS.match(line):
            break
        if _REST_ANY.match(line.strip()) or _UNDERLINE.match(nxt):
            break
        para.append(line)
    return _join(para)


def _google(lines: List[str], doc: _Builder) -> None:
    i = 0
    while i < len(lines):
        line = lines[i]
        if _GOOGLE_PARAMS.match(line) or _GOOGLE_RETURNS.match(line):
            is_params = bool(_GOOGLE_PARAMS.match(line))
            base = _indent(line)
            i += 1
            current: Optional[str] = None
            entry_indent = -1
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
                body = lines[i]
                if not body.strip():
                    i += 1
                    continue
                if is_params:
                    m = _GOOGLE_ENTRY.match(body.strip())
                    if m and (entry_indent < 0 or _indent(body) <= entry_indent):
                        entry_indent = _indent(body)
                        current = m.group(1).lstrip("*")
                        doc.params[current] = [m.group(2)]
                    elif current is not None:
                        doc.params[current].append(body)
                else:
                    doc.returns.append(body)
                i += 1
            continue
        i += 1


def _numpy(lines: List[str], doc: _Builder) -> None:
    i = 0
    while i < len(lines) - 1:
        title = lines[i].strip()
        if _UNDERLINE.match(lines[i + 1]) and title:
            section = title.lower()
            i += 2
            current: Optional[str] = None
            while i < len(lines) and not (i + 1 < len(lines) and _UNDERLINE.match(lines[i + 1])):
                body = lines[i]
                if section in ("parameters", "other parameters", "params"):
                    if body.strip() and _indent(body) == 0:
                        m = _NUMPY_ENTRY.match(body.strip())
                        current = m.group(1).lstrip("*") if m else None
                        if current:
                            doc.params[current] = []
                    elif current is not None:
                        doc.params[current].append(body)
                elif section in ("returns", "yields") and body.strip() and _indent(body) > 0:
                    doc.returns.append(body)
                i += 1
            continue
        i += 1


def _rest(lines: List[str], doc: _Builder) -> None:
    current: Optional[List[str]] = None
    for line in lines:
        stripped = line.strip()
        m = _REST_PARAM.match(stripped)
        r = _REST_RETURNS.match(stripped)
        if m:
            current = doc.params.setdefault(m.group(1).lstrip("*"), [])
            current[:] = [m.group(2)]
        elif r:
            current = doc.returns
            current[:] = [r.group(1)]
        elif _REST_ANY.match(stripped) or not stripped:
            current = None
        elif current is not None and _indent(line) > 0:
            current.append(line)


@dataclass
class _Builder:
    params: Dict[str, List[str]] = field(default_factory=dict)
    returns: List[str] = field(default_factory=list)


def parse_docstring(doc: Optional[str]) -> Docstring:
    """Parse a raw ``__doc__`` (any of the three styles, or none) into a :class:`Docstring`."""
    lines = clean(doc)
    if not lines:
        return Docstring()
    b = _Builder()
    _google(lines, b)
    _numpy(lines, b)
    _rest(lines, b)
    return Docstring(
        summary=_summary(lines),
        params={k: _join(v) for k, v in b.params.items() if _join(v)},
        returns=_join(b.returns),
    )
