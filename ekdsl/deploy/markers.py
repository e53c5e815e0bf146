"""PEP 508 environment markers (``python_version >= "3.9" and sys_platform == "linux"``), validated whole.

A requirement line's marker is the part pip reads last; a marker that is not one (an option, a second
line, a stray quote) would reach pip's requirements-file parser as something else. :func:`marker_problem`
parses the marker grammar of PEP 508 and says what is wrong, or ``None``.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

__all__ = ["VARIABLES", "marker_problem"]

VARIABLES = frozenset({
    "python_version", "python_full_version", "os_name", "sys_platform", "platform_release", "platform_system",
    "platform_version", "platform_machine", "platform_python_implementation", "implementation_name",
    "implementation_version", "extra",
})
_COMPARE = frozenset({"===", "==", "!=", "<=", ">=", "~=", "<", ">"})
# PEP 508 python_str: quoted, no quote or backslash inside
_TOKEN = re.compile(r"""\s*(?:('[^'\\]*'|"[^"\\]*")|(===|==|!=|<=|>=|~=|<|>|\(|\))|([A-Za-z_][A-Za-z0-9_]*))""")
_MAX_DEPTH = 32


class _Bad(Exception):
    pass


def _tokens(text: str) -> List[Tuple[str, str]]:
    """(kind, text) pairs; kind is ``str``, ``op`` or ``word``."""
    out: List[Tuple[str, str]] = []
    pos = 0
    while text[pos:].strip():
        match = _TOKEN.match(text, pos)
        if match is None:
            rest = text[pos:].lstrip()
            raise _Bad(f"unexpected {rest[:12]!r}" + (" (an unterminated quote?)" if rest[0] in "'\"" else ""))
        kind = "str" if match.group(1) else "op" if match.group(2) else "word"
        out.append((kind, match.group(match.lastindex or 0)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, tokens: List[Tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else ""

    def take(self) -> Tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise _Bad("it ends too early")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def marker(self, depth: int = 0) -> None:  # marker_or
        self.conjunction(depth)
        while self.peek() == "or":
            self.take()
            self.conjunction(depth)

    def conjunction(self, depth: int) -> None:  # marker_and
        self.expression(depth)
        while self.peek() == "and":
            self.take()
            self.expression(depth)

    def expression(self, depth: int) -> None:  # marker_expr
        if self.peek() == "(":
            if depth >= _MAX_DEPTH:
                raise _Bad(f"it nests parentheses more than {_MAX_DEPTH} deep")
            self.take()
            self.marker(depth + 1)
            if self.peek() != ")":
                raise _Bad("a '(' is not closed")
            self.take()
            return
        self.value()
        op = self.take()[1]
        if op == "not":
            op = "not " + self.take()[1]
        if op not in _COMPARE and op not in ("in", "not in"):
            raise _Bad(f"{op!r} is not a comparison (==, !=, <=, >=, <, >, ~=, ===, in, not in)")
        self.value()

    def value(self) -> None:  # marker_var
        kind, text = self.take()
        if kind == "word" and text not in VARIABLES:
            raise _Bad(f"{text!r} is not a marker variable (one of {', '.join(sorted(VARIABLES))})")
        if kind == "op":
            raise _Bad(f"{text!r} where a variable or a quoted string belongs")


def marker_problem(text: str) -> Optional[str]:
    """What keeps ``text`` from being a PEP 508 marker, or ``None`` when it is one."""
    try:
        parser = _Parser(_tokens(text))
        if not parser.tokens:
            return "it is empty"
        parser.marker()
        if parser.pos < len(parser.tokens):
            raise _Bad(f"unexpected {parser.peek()!r}")
    except _Bad as exc:
        return str(exc)
    return None
