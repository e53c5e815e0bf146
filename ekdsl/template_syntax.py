"""The syntax of data templates: Go's ``text/template`` actions that name a value of a row, parsed (pure).

:mod:`ekdsl.template` evaluates what this module parses. Supported: text; ``{{.field}}``, ``{{.a.b}}``;
``{{$.field}}``; ``{{index X k ...}}`` with literal int or string keys; ``{{(index . 0).field}}``; comments
``{{/* ... */}}``; the trim markers ``{{- `` and `` -}}``. Everything else is a
:class:`~ekdsl.errors.TemplateError` that says what is refused, where, and what to write instead.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple, Union

from .errors import TemplateError

__all__ = ["SUPPORTED", "Dot", "Field", "Index", "Lit", "Part", "parse", "quote"]

SUPPORTED = '{{.field}}, {{.a.b}}, {{index . 0 "field"}} and {{(index . 0).field}}'
_SPACE = " \t\r\n"
_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
_CONSTANTS = {"nil", "true", "false"}


def _fail(src: str, pos: int, reason: str) -> TemplateError:
    return TemplateError(src, f"{reason}; ekdsl evaluates {SUPPORTED}", pos)


class Dot:
    """``.`` or ``$``: the data itself. ``src`` is each node's text, for messages."""

    __slots__ = ("src",)

    def __init__(self, src: str) -> None:
        self.src = src


class Lit(Dot):
    """A literal key of ``index``: an int or a string."""

    __slots__ = ("value",)

    def __init__(self, src: str, value: Union[int, str]) -> None:
        super().__init__(src)
        self.value = value


class Field(Dot):
    """``base.a.b``: the fields of a map, one name after the other; ``top`` when ``base`` is the data itself."""

    __slots__ = ("base", "names", "top")

    def __init__(self, src: str, base: Dot, names: Tuple[str, ...]) -> None:
        super().__init__(src)
        self.base, self.names = base, names
        self.top = type(base) is Dot


class Index(Dot):
    """Go's ``index X k1 k2 ...``: ``X[k1][k2]...``."""

    __slots__ = ("keys", "target")

    def __init__(self, src: str, target: Dot, keys: Tuple[Lit, ...]) -> None:
        super().__init__(src)
        self.target, self.keys = target, keys


Part = Union[str, Dot]


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Tokens:
    """The tokens of one action: ``(kind, value, position, attached)``; ``attached``: no space before it."""

    def __init__(self, src: str, pos: int) -> None:
        self.src = src
        self.items: List[Tuple[str, Any, int, bool]] = []
        self.end, self.trim = self._lex(pos)
        self.i = 0

    def _lex(self, pos: int) -> Tuple[int, bool]:
        src, n = self.src, len(self.src)
        attached = True
        while pos < n:
            c = src[pos]
            if c in _SPACE:
                start = pos
                while pos < n and src[pos] in _SPACE:
                    pos += 1
                if src.startswith("-}}", pos) and pos > start:
                    return pos + 3, True
                attached = False
                continue
            if src.startswith("}}", pos):
                return pos + 2, False
            pos = self._token(pos, attached)
            attached = True
        raise _fail(src, len(src), "the action is not closed: add }}")

    def _token(self, pos: int, attached: bool) -> int:
        src, n = self.src, len(self.src)
        c = src[pos]
        if c == "." and pos + 1 < n and (src[pos + 1].isalpha() or src[pos + 1] == "_"):
            end = _word(src, pos + 1)
            self.items.append(("field", src[pos + 1:end], pos, attached))
            return end
        if c in ".$(" or c == ")":
            if c == "$" and pos + 1 < n and (src[pos + 1].isalnum() or src[pos + 1] == "_"):
                raise _fail(src, pos, f"variables ({src[pos:_word(src, pos + 1)]}) are not supported")
            self.items.append(({".": "dot", "$": "root", "(": "(", ")": ")"}[c], c, pos, attached))
            return pos + 1
        if c == '"':
            end, text = _string(src, pos)
            self.items.append(("str", text, pos, attached))
            return end
        if c == "`":
            end = src.find("`", pos + 1)
            if end < 0:
                raise _fail(src, pos, "the raw string is not closed: add `")
            self.items.append(("str", src[pos + 1:end], pos, attached))
            return end + 1
        if c.isdigit() or (c in "-+." and pos + 1 < n and src[pos + 1].isdigit()):
            end = pos + 1
            while end < n and (src[end].isalnum() or src[end] in "._" or (src[end] in "+-" and src[end - 1] in "eEpP")):
                end += 1
            text = src[pos:end]
            if not (text.lstrip("-").isdigit() and text.isascii()):
                raise _fail(src, pos, f"the number {text} cannot be a key: index takes whole numbers (list "
                                      "positions) and strings (field names)")
            self.items.append(("int", int(text), pos, attached))
            return end
        if c.isalpha() or c == "_":
            end = _word(src, pos)
            self.items.append(("ident", src[pos:end], pos, attached))
            return end
        what = {"|": "pipes (|) are not supported", "'": "character constants are not supported",
                ":": "variables (:=) are not supported", "=": "variables (=) are not supported"}
        raise _fail(src, pos, what.get(c, f"unexpected {c!r} in the action"))

    def peek(self) -> Optional[Tuple[str, Any, int, bool]]:
        return self.items[self.i] if self.i < len(self.items) else None

    def take(self) -> Tuple[str, Any, int, bool]:
        tok = self.items[self.i]
        self.i += 1
        return tok


def _word(src: str, pos: int) -> int:
    while pos < len(src) and (src[pos].isalnum() or src[pos] == "_"):
        pos += 1
    return pos


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}


def _string(src: str, pos: int) -> Tuple[int, str]:
    """A Go interpreted string literal at ``pos``: ``(end, its text)``."""
    out: List[str] = []
    i = pos + 1
    while i < len(src):
        c = src[i]
        if c == '"':
            return i + 1, "".join(out)
        if c == "\n":
            break
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = src[i + 1:i + 2]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
            continue
        width = {"x": 2, "u": 4, "U": 8}.get(e)
        digits = src[i + 2:i + 2 + width] if width else src[i + 1:i + 4]
        base = 16 if width else 8
        try:
            code = int(digits, base) if len(digits) == (width or 3) and digits.isalnum() else -1
        except ValueError:
            code = -1
        if code < 0 or code > 0x10FFFF or (not width and code > 255) or 0xD800 <= code <= 0xDFFF:
            raise _fail(src, i, f"the escape \\{e} in the string is not valid Go")
        out.append(chr(code))
        i += 2 + width if width else 4
    raise _fail(src, pos, "the string is not closed: add \"")


def _primary(toks: _Tokens) -> Dot:
    kind, value, pos, _ = toks.take()
    src = toks.src
    if kind == "dot":
        after = toks.peek()
        if after is not None and after[0] == "field" and after[3]:
            raise _fail(src, pos, f"..{after[1]} is not a field: write .{after[1]}")
        base: Dot = Dot(".")
    elif kind == "root":
        base = Dot("$")
    elif kind == "field":
        return _chain(toks, Dot("."), [value], pos)
    elif kind in ("str", "int"):
        raise _fail(src, pos, f"the constant {value!r} is not supported as a value: write it as text outside "
                              "{{ }}")
    elif kind == "(":
        inner = _command(toks, pos)
        close = toks.peek()
        if close is None or close[0] != ")":
            raise _fail(src, pos, "the parenthesis is not closed: add )")
        toks.take()
        base = inner
    else:
        raise _fail(src, pos, f"{value!r} is not a value here")
    return _chain(toks, base, [], pos)


def _chain(toks: _Tokens, base: Dot, names: List[str], pos: int) -> Dot:
    while True:
        tok = toks.peek()
        if tok is None or tok[0] != "field" or not tok[3]:
            break
        names.append(toks.take()[1])
    if not names:
        return base
    prefix = "" if base.src in (".", "$") else base.src
    if base.src == "$":
        prefix = "$"
    return Field(prefix + "".join("." + n for n in names), base, tuple(names))


def _command(toks: _Tokens, pos: int) -> Dot:
    src = toks.src
    tok = toks.peek()
    if tok is None or tok[0] == ")":
        raise _fail(src, pos, "the action is empty: name a value, such as {{.field}}")
    if tok[0] == "ident":
        name = tok[1]
        if name in _KEYWORDS:
            raise _fail(src, tok[2], f"{{{{{name}}}}} actions are not supported: a property takes one value")
        if name in _CONSTANTS:
            raise _fail(src, tok[2], f"the constant {name} is not supported: write the value as text")
        if name != "index":
            raise _fail(src, tok[2], f"the function {name!r} is not supported")
        toks.take()
        return _index(toks, tok[2])
    expr = _primary(toks)
    extra = toks.peek()
    if extra is not None and extra[0] != ")":
        raise _fail(src, extra[2], f"{expr.src} is not a function and takes no arguments: one value per action")
    return expr


def _index(toks: _Tokens, pos: int) -> Dot:
    src = toks.src
    tok = toks.peek()
    if tok is None or tok[0] in (")", "str", "int", "ident"):
        raise _fail(src, pos, "index needs what to index first, such as {{index . 0}}")
    target = _primary(toks)
    keys: List[Lit] = []
    while True:
        tok = toks.peek()
        if tok is None or tok[0] == ")":
            break
        if tok[0] not in ("str", "int"):
            raise _fail(src, tok[2], "index keys must be literal numbers or strings, such as "
                                     '{{index . 0 "field"}}')
        kind, value, _, _ = toks.take()
        keys.append(Lit(str(value) if kind == "int" else quote(value), value))
    text = " ".join(["index", target.src, *(k.src for k in keys)])
    return Index(f"({text})", target, tuple(keys))


def parse(src: str) -> Tuple[Part, ...]:
    parts: List[Part] = []
    pos, n = 0, len(src)
    trim_next = False
    while pos <= n:
        start = src.find("{{", pos)
        text = src[pos:] if start < 0 else src[pos:start]
        if trim_next:
            text = text.lstrip(_SPACE)
        k = start + 2
        if start >= 0 and src.startswith("-", k) and src[k + 1:k + 2] in tuple(_SPACE):
            text = text.rstrip(_SPACE)
            k += 2
        if text:
            parts.append(text)
        if start < 0:
            break
        if src.startswith("/*", k):
            pos, trim_next = _comment(src, k)
            continue
        toks = _Tokens(src, k)
        expr = _command(toks, start)
        if toks.peek() is not None:
            raise _fail(src, toks.peek()[2], "unexpected ) in the action")  # type: ignore[index]
        parts.append(expr)
        pos, trim_next = toks.end, toks.trim
    return tuple(parts)


def _comment(src: str, pos: int) -> Tuple[int, bool]:
    end = src.find("*/", pos + 2)
    if end < 0:
        raise _fail(src, pos, "the comment is not closed: add */}}")
    end += 2
    if src.startswith("}}", end):
        return end + 2, False
    if src.startswith(" -}}", end) or (src[end:end + 1] in tuple(_SPACE) and src.startswith("-}}", end + 1)):
        return end + 4, True
    raise _fail(src, end, "a comment must end right before }}")
