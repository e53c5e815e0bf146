"""Data templates: pinned against Go's text/template (golden cases), and fuzzed."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ekdsl.errors import RenderError, TemplateError
from ekdsl.template import Template, go_text

CASES = json.loads((Path(__file__).parent / "golden" / "templates" / "cases.json").read_text(encoding="utf-8"))

# Go parses these, ekdsl refuses them when the rule starts: functions, pipes, actions, variables, constants
REFUSED_BY_EKDSL = {
    '{{.t | printf "%s"}}', "{{.t .n}}", "{{.1}}", "{{if .ok}}y{{end}}", "{{range .l}}{{.}}{{end}}",
    "{{$x := .t}}{{$x}}", "{{index . .t}}", '{{"lit"}}', "{{42}}", "{{nil}}", "{{true}}", "{{len .l}}",
    "{{index . 1.5}}",
}


def _accepts(text: str) -> bool:
    try:
        Template(text)
    except TemplateError:
        return False
    return True


def test_the_cases_cover_rows_events_and_batches():
    shapes = {type(c["data"]).__name__ + ("[list]" if c["data"] and isinstance(c["data"][0], list) else "")
              if isinstance(c["data"], list) else "dict" for c in CASES}
    assert shapes == {"dict", "list", "list[list]"}
    assert sum(c["go"]["ok"] for c in CASES) > 50


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['template']!r}")
def test_a_template_goes_as_far_as_go_takes_it(case: Any):
    text, data, go = case["template"], case["data"], case["go"]
    if not go["parsed"]:
        with pytest.raises(TemplateError):
            Template(text)  # what Go refuses, ekdsl refuses too
        return
    if not _accepts(text):
        assert text in REFUSED_BY_EKDSL
        return
    tpl = Template(text)
    if go["ok"]:
        assert tpl.go_render(data) == go["out"]
    else:
        with pytest.raises(RenderError):
            tpl.go_render(data)
    try:
        strict = tpl.render(data)
    except RenderError:  # Go prints <no value> for a missing field or null, and map[...] for an object: ekdsl refuses
        assert not go["ok"] or "<no value>" in go["out"] or "map[" in go["out"] or go["out"].startswith("[")
    else:
        assert go["ok"] and strict == go["out"]


def test_the_subset_ekdsl_refuses_is_exactly_the_listed_one():
    go_parses = {c["template"] for c in CASES if c["go"]["parsed"]}
    assert {t for t in go_parses if not _accepts(t)} == REFUSED_BY_EKDSL


@pytest.mark.parametrize(("text", "fragment"), [
    ("{{lower .t}}", "the function 'lower' is not supported"),
    ("{{.t | lower}}", "pipes (|) are not supported"),
    ("{{if .t}}x{{end}}", "{{if}} actions are not supported"),
    ("{{$x := .t}}", "variables ($x) are not supported"),
    ("{{.t", "the action is not closed"),
    ('{{index . "a}}', "the string is not closed"),
    ("{{index . .k}}", "index keys must be literal numbers or strings"),
    ("{{}}", "the action is empty"),
])
def test_a_refused_template_says_what_and_where(text: str, fragment: str):
    with pytest.raises(TemplateError) as info:
        Template(text)
    assert fragment in str(info.value) and info.value.position >= 0
    assert '{{index . 0 "field"}}' in str(info.value)  # and what ekdsl does evaluate


@pytest.mark.parametrize(("text", "data", "fragment"), [
    ("{{.t}}", [{"t": 1}], 'write {{index . 0 "t"}} for the first row\'s, or set sendSingle: true'),
    ("{{.nope}}", {"t": 1, "u": 2}, "the row has no field 'nope' (its fields: t, u)"),
    ("{{.z}}", {"z": None}, ".z is null"),
    ("{{.o}}", {"o": {}}, ".o is an object, not a value: select a field of it"),
    ("{{index . 3}}", [{}], "index 3 is out of range for a list of 1"),
    ("{{.t.x}}", {"t": "s"}, ".t is a string ('s'), which has no field 'x'"),
])
def test_a_render_error_names_the_field_and_the_fix(text: str, data: Any, fragment: str):
    with pytest.raises(RenderError) as info:
        Template(text).render(data)
    assert fragment in str(info.value)


@pytest.mark.parametrize(("value", "text"), [
    (1.5, "1.5"), (2500000.5, "2.5000005e+06"), (1e21, "1e+21"), (123456.0, "123456"), (1e6, "1e+06"),
    (0.0001, "0.0001"), (0.00001, "1e-05"), (-0.0, "-0"), (3, "3"), (10**20, "100000000000000000000"),
    (True, "true"), (None, "<nil>"), ([1, None], "[1 <nil>]"), ({"b": 1, "a": "x"}, "map[a:x b:1]"),
])
def test_values_print_as_go_prints_them(value: Any, text: str):
    assert go_text(value) == text


# ---- fuzzing

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@given(st.text().filter(lambda s: "{{" not in s), _json)
def test_text_without_actions_is_itself(text: str, data: Any):
    tpl = Template(text)
    assert tpl.constant == text and tpl.render(data) == text


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("{}.$()|\"`\\ -_/*0123456789abcxyzé\n'")), max_size=30), _json)
@example("{{index . 0 \"a\"}}", [{"a": 1}])
@example("{{- .a -}}", {"a": "x"})
def test_any_text_parses_or_is_refused_and_renders_or_fails_cleanly(text: str, data: Any):
    try:
        tpl = Template(text)
    except TemplateError as exc:
        assert exc.position >= 0
        return
    for render in (tpl.render, tpl.go_render):
        try:
            out = render(data)
        except RenderError:
            continue
        assert isinstance(out, str)


_name = st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=6).filter(lambda n: n not in {"_"})
_key = st.text(max_size=6)


def _go_quote(key: str) -> str:
    """``key`` as a Go interpreted string literal, written with escapes where it may."""
    out = []
    for ch in key:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) > 127 or not ch.isprintable():
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF and not 0xD800 <= ord(ch) <= 0xDFFF else ch)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@given(st.lists(st.one_of(_name.map(lambda n: ("field", n)), _key.map(lambda k: ("key", k)),
                          st.integers(0, 3).map(lambda i: ("pos", i))), min_size=1, max_size=5),
       st.text(max_size=5).filter(lambda s: "{{" not in s and not s.endswith("{")), st.text(max_size=5))
def test_a_path_renders_the_value_at_that_path(steps: list, before: str, value: str):
    data: Any = value
    for kind, key in reversed(steps):  # build the data around the value, outermost step first
        data = [data] * (key + 1) if kind == "pos" else {key: data}
    expr = "."
    text_steps = []
    for kind, key in steps:
        text_steps.append(f" {key}" if kind == "pos" else f" {_go_quote(key)}")
    expr = "index ." + "".join(text_steps)
    assert Template(before + "{{" + expr + "}}").render(data) == before + value
    if all(kind == "field" for kind, _ in steps):
        assert Template("{{." + ".".join(k for _, k in steps) + "}}").render(data) == value


def test_templates_compare_by_their_text():
    assert Template("{{.a}}") == Template("{{.a}}") and len({Template("{{.a}}"), Template("{{.a}}")}) == 1
    assert str(Template("x{{.a}}")) == "x{{.a}}" and Template("{{.a}}").constant is None
