"""Every ekdsl name the docs use is importable from the place the docs give.

A page that names a public class or error of ekdsl (one listed in some module's ``__all__``) in its text, such as
`Timeout` or `ProtocolError(...)`, must say where it comes from: its code imports it (``from ekdsl.transport import
Timeout``) or its text writes it qualified (``ekdsl.transport.Timeout``). Every such import and qualified name must
resolve.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import cache
from typing import Dict, FrozenSet, Set

import pytest

import ekdsl

from .test_docs import DOCS, FENCE

IMPORT = re.compile(r"^\s*from (ekdsl[\w.]*) import \(?([\w\s,]+?)\)?\s*$", re.M)
QUALIFIED = re.compile(r"\bekdsl(?:\.[A-Za-z]\w*)+")  # ekdsl._1geo is a proto package: not Python
SPAN = re.compile(r"`([^`\n]+)`")
CLASSLIKE = re.compile(r"[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*")  # CamelCase, not CONSTANTS


@cache
def public_names() -> FrozenSet[str]:
    """The CamelCase names in the ``__all__`` of ekdsl and its modules."""
    names: Set[str] = set(ekdsl.__all__)
    for info in pkgutil.walk_packages(ekdsl.__path__, "ekdsl."):
        if info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra (grpcio, ray, ...) that is not installed
            continue
        names.update(getattr(module, "__all__", ()))
    return frozenset(n for n in names if CLASSLIKE.fullmatch(n))


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` (``ekdsl.host.Emulator``, ``ekdsl.host.Emulator.start_sink``) names something."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def places(text: str) -> Dict[str, Set[str]]:
    """Each name the page gives a place for → the places (``module.Name``)."""
    code = "\n".join(body for kind, body in FENCE.findall(text) if kind == "python")
    given: Dict[str, Set[str]] = {}
    for module, listed in IMPORT.findall(code):
        for name in re.split(r"[\s,]+", listed.strip()):
            if name:
                given.setdefault(name, set()).add(f"{module}.{name}")
    for dotted in QUALIFIED.findall(text):
        parts = dotted.split(".")
        for i, part in enumerate(parts[1:], 1):
            if CLASSLIKE.fullmatch(part):
                given.setdefault(part, set()).add(".".join(parts[:i + 1]))
                break
    return given


def used(text: str) -> Set[str]:
    """The public ekdsl names the page's text (outside its code) writes in backticks, bare."""
    prose = FENCE.sub("", text)
    found = set()
    for span in SPAN.findall(prose):
        head = re.match(r"[A-Za-z_]\w*", span)
        if head and head.group(0) in public_names():
            found.add(head.group(0))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_every_name_a_page_uses_has_a_place_that_provides_it(doc):
    text = doc.read_text(encoding="utf-8")
    given = places(text)
    missing = sorted(used(text) - set(given))
    assert not missing, (f"{doc.name} names {', '.join(missing)} without saying where to import them from: write "
                         "`ekdsl.<module>.<Name>` once, or import it in the page's code")
    wrong = sorted(p for ps in given.values() for p in ps if not resolves(p))
    assert not wrong, f"{doc.name} gives places that do not provide the name: {', '.join(wrong)}"


def test_the_check_sees_a_name_without_a_place():
    page = "Catch `Timeout` when `recv()` gets nothing; `ProtocolError` for a bad message.\n"
    assert used(page) == {"Timeout", "ProtocolError"}
    assert set(places(page)) == set()
    placed = page + "Both come from `ekdsl.transport.Timeout` and `ekdsl.ProtocolError`.\n"
    assert places(placed) == {"Timeout": {"ekdsl.transport.Timeout"}, "ProtocolError": {"ekdsl.ProtocolError"}}
    assert not resolves("ekdsl.Timeout") and resolves("ekdsl.transport.Timeout")
