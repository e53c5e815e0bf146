"""A plugin's requirements: the ``Plugin(requirements=...)`` option plus a ``requirements.txt`` beside its module.

Only plain requirement lines are carried (``name[extras] specifier ; marker``): pip options, ``-r``
includes, editable installs and direct URL/path references cannot be resolved from the wheels a package
carries, so they are refused with the line that holds them.
"""

from __future__ import annotations

import os
import re
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from ..errors import PackagingError
from .markers import marker_problem

__all__ = ["FILE_NAME", "Requirement", "collect", "file_text", "normalize", "parse_line", "read_file",
           "requirement_names"]

FILE_NAME = "requirements.txt"
_IDENT = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_CLAUSE = r"(?:===|~=|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+"
_SPECS = rf"(?:{_CLAUSE}(?:\s*,\s*{_CLAUSE})*)?"
_REQUIREMENT = re.compile(rf"\s*({_IDENT})\s*(?:\[\s*(?:{_IDENT}(?:\s*,\s*{_IDENT})*)?\s*\])?\s*"
                          rf"(?:{_SPECS}|\(\s*{_SPECS}\s*\))\s*")
_COMMENT = re.compile(r"(^|\s)#.*")
_PRINTABLE = re.compile(r"[\t -~]*")  # one line of printable ASCII: pip splits lines at \r, \f, \x1c, \x85, ...
_OPTION = re.compile(r"(?:^|\s)(-\S*)")
_EXAMPLE = "write 'name', 'name>=1.2' or 'name[extra]==1.2 ; python_version >= \"3.9\"'"


class Requirement(NamedTuple):
    """One requirement line, as given, and its distribution name normalised (PEP 503)."""

    text: str
    name: str


def normalize(name: str) -> str:
    """PEP 503 normalisation: ``Foo_Bar.baz`` → ``foo-bar-baz``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_line(line: str, where: str = "") -> Optional[Requirement]:
    """One ``requirements.txt`` line → a :class:`Requirement`, ``None`` for blank/comment lines.

    The whole line is validated, marker included: one line of printable ASCII, no pip option anywhere
    (pip reads any word starting with ``-`` as one, even inside quotes), no ``${...}`` (pip expands it from
    the environment), a PEP 508 name, extras, version specifiers and marker, and nothing else.
    """
    at = f" ({where})" if where else ""
    if _PRINTABLE.fullmatch(line) is None:
        char = next(c for c in line if not (" " <= c <= "~" or c == "\t"))
        raise PackagingError(
            f"requirement {line!r}{at} holds {char!r} (character {line.index(char) + 1}): a requirement is one line "
            "of printable ASCII; give each requirement as its own item or line", where)
    text = _COMMENT.sub("", line).strip()
    if not text:
        return None
    option = _OPTION.search(text)
    if option:
        raise PackagingError(
            f"requirement '{text}'{at} is a pip option ('{option.group(1)}'): a plugin package carries plain "
            "requirement lines only; give index settings to install.sh as eKuiper shellParas (see "
            "docs/deployment.md)", where)
    if "${" in text:
        raise PackagingError(f"requirement '{text}'{at} holds '${{', which pip expands from the environment of "
                             "the machine that installs it: write the value itself", where)
    spec_part, semicolon, marker = text.partition(";")
    if "@" in spec_part or "://" in spec_part or spec_part.startswith((".", "/")):
        raise PackagingError(
            f"requirement '{text}'{at} is a direct URL or path reference, which cannot be installed from the "
            "wheels a package carries: build a wheel ('pip wheel <path> -w wheels'), require it by name and "
            "export with --vendor --find-links wheels", where)
    match = _REQUIREMENT.fullmatch(spec_part)
    if not match:
        raise PackagingError(f"requirement '{text}'{at} is not a requirement pip understands: {_EXAMPLE}", where)
    problem = marker_problem(marker) if semicolon else None
    if problem:
        raise PackagingError(f"requirement '{text}'{at} has a marker that is not a PEP 508 marker ({problem}): "
                             f"{_EXAMPLE}", where)
    return Requirement(text, normalize(match.group(1)))


def read_file(path: str) -> List[Requirement]:
    """The requirements in the file at ``path``."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PackagingError(f"cannot read {path}: {exc}", path) from None
    out = []
    for number, line in enumerate(lines, 1):
        req = parse_line(line, f"{path}:{number}")
        if req is not None:
            out.append(req)
    return out


def collect(declared: Sequence[str], module_file: str = "") -> Tuple[Requirement, ...]:
    """The option's requirements, then those of ``requirements.txt`` beside ``module_file``; each name once."""
    found: List[Requirement] = []
    for i, text in enumerate(declared):
        req = parse_line(text, f"Plugin(requirements=...) item {i}")
        if req is not None:
            found.append(req)
    if module_file:
        path = os.path.join(os.path.dirname(os.path.abspath(module_file)), FILE_NAME)
        if os.path.isfile(path):
            found.extend(read_file(path))
    seen: Dict[str, Requirement] = {}
    for req in found:
        first = seen.setdefault(req.name, req)
        if first.text != req.text:
            raise PackagingError(
                f"requirement '{req.name}' is given twice, as '{first.text}' and '{req.text}': keep one "
                "(in Plugin(requirements=...) or in requirements.txt)", module_file)
    return tuple(seen.values())


def requirement_names(lines: Iterable[str]) -> List[str]:
    """The normalised names of the requirement lines in ``lines`` (a ``requirements.txt``'s text lines)."""
    out = []
    for line in lines:
        req = parse_line(line)
        if req is not None:
            out.append(req.name)
    return out


def file_text(requirements: Sequence[Requirement]) -> str:
    """The ``requirements.txt`` a package carries."""
    return "".join(f"{r.text}\n" for r in requirements)
