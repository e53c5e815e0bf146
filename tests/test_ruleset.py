"""The provisioning file as eKuiper's boot ruleset (``etc/init.json``): the format its import reads, merged with
what is there, never replacing what another hand put there."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ekdsl import PackagingError
from ekdsl.deploy.provision import Provision, Rule, Stream
from ekdsl.deploy.ruleset import dump, empty, fragment, merge, parse

RULE = {"id": "r1", "sql": "SELECT * FROM s1", "actions": [{"log": {}}]}


def provision(*items: object) -> Provision:
    streams = tuple(i for i in items if isinstance(i, Stream))
    rules = tuple(i for i in items if isinstance(i, Rule))
    return Provision("p.yaml", streams, rules)


def stream(name: str, kind: str = "stream", rest: str = '() WITH (TYPE="memory", DATASOURCE="t")') -> Stream:
    return Stream(kind, name, f"CREATE {kind.upper()} {name} {rest}", rest)


def test_fragment_is_the_format_of_ekuipers_ruleset_import():
    got = fragment(provision(stream("s1"), stream("t1", "table"), Rule("r1", RULE)))
    assert got == {"streams": {"s1": 'CREATE STREAM s1 () WITH (TYPE="memory", DATASOURCE="t")'},
                   "tables": {"t1": 'CREATE TABLE t1 () WITH (TYPE="memory", DATASOURCE="t")'},
                   "rules": {"r1": '{"actions":[{"log":{}}],"id":"r1","sql":"SELECT * FROM s1"}'}}
    assert json.loads(got["rules"]["r1"]) == RULE  # a rule is its JSON as a string


@pytest.mark.parametrize(("items", "message"), [
    ((stream("s1"), stream("s1", "table")), "lists the stream or table 's1' twice: eKuiper keeps streams and "
                                            "tables in one namespace"),
    ((Rule("r1", RULE), Rule("r1", RULE)), "lists rule 'r1' twice"),
])
def test_fragment_refuses_a_name_given_twice(items, message):
    with pytest.raises(PackagingError, match=message):
        fragment(provision(*items))


@pytest.mark.parametrize(("text", "message"), [
    (b"{", "is not valid JSON"),
    (b"[]", "is an array, not an object with 'streams', 'tables' and 'rules': eKuiper would import none of it"),
    (b'{"streams": []}', "'streams' is an array, not an object of names"),
    (b'{"rules": {"r1": {"id": "r1"}}}', "rules['r1'] is an object, not a string: eKuiper would import none of the "
                                         "file (a rule is its JSON as a string)"),
    (b'{"Rules": {}}', "has the key 'Rules', which eKuiper reads as 'rules' (Go matches keys without case)"),
    (b"[" * 100000 + b"]" * 100000, "is nested too deeply to read"),
])
def test_parse_refuses_what_would_make_the_import_fail(text, message):
    with pytest.raises(PackagingError, match=re.escape(message)):
        parse(text, "etc/init.json")


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["streams", "tables", "rules", "other", "x"]) | st.text(max_size=3),
                        inner, max_size=4), max_leaves=12))
def test_parse_accepts_only_what_ekuiper_imports(value):
    data = json.dumps(value).encode()
    try:
        sections, doc = parse(data, "init.json")
    except PackagingError:
        return
    assert set(sections) == {"streams", "tables", "rules"}
    assert all(isinstance(k, str) and isinstance(v, str) for s in sections.values() for k, v in s.items())
    assert parse(dump(doc), "init.json") == (sections, doc)  # what is written reads back the same


def test_merge_keeps_other_entries_and_refuses_to_redefine_them():
    current = {"streams": {"theirs": "CREATE STREAM theirs () WITH (TYPE=\"memory\")"}, "tables": {},
               "rules": {"r1": json.dumps({**RULE, "sql": "SELECT a FROM s1"})}}
    doc = {**current, "comment": "kept"}
    done = merge(doc, current, empty(), fragment(provision(stream("s1"))), "etc/init.json", "plugin 'p'")
    assert done.changes == ("added stream s1",)
    assert done.content is not None and done.content["comment"] == "kept"
    assert set(done.content["streams"]) == {"theirs", "s1"} and done.content["rules"] == current["rules"]
    with pytest.raises(PackagingError, match="etc/init.json already defines rule 'r1' otherwise, and not as an "
                                             "earlier layout of plugin 'p' left it"):
        merge(doc, current, empty(), fragment(provision(Rule("r1", RULE))), "etc/init.json", "plugin 'p'")
    with pytest.raises(PackagingError, match="already defines stream 'theirs' otherwise"):
        merge(doc, current, empty(), fragment(provision(stream("theirs", "table"))), "etc/init.json", "plugin 'p'")
    same = merge(doc, current, empty(), {**empty(), "rules": dict(current["rules"])}, "etc/init.json", "plugin 'p'")
    assert same.content is None  # the same definition is no change: the file (and its mtime) stay


def test_merge_replaces_and_removes_only_what_the_owner_left():
    old = fragment(provision(stream("s1"), Rule("r1", RULE), Rule("gone", {**RULE, "id": "gone"})))
    new = fragment(provision(stream("s1", "table"), Rule("r1", {**RULE, "sql": "SELECT b FROM s1"})))
    current = {section: dict(old[section]) for section in old}
    current["rules"]["mine"] = "{}"
    done = merge({}, current, old, new, "etc/init.json", "plugin 'p'")
    assert done.changes == ("removed rule gone", "replaced table s1", "replaced rule r1")
    assert done.content == {"tables": new["tables"], "rules": {"mine": "{}", **new["rules"]}}  # s1 is a table now
    current["rules"]["r1"] = json.dumps({**RULE, "sql": "SELECT edited FROM s1"})  # edited by hand since
    with pytest.raises(PackagingError, match="already defines rule 'r1' otherwise"):
        merge({}, current, old, new, "etc/init.json", "plugin 'p'")
    kept = merge({}, current, old, empty(), "etc/init.json", "plugin 'p'")
    assert kept.content is not None and "r1" in kept.content["rules"] and "gone" not in kept.content["rules"]


def test_merge_refuses_a_definition_that_data_init_json_gives_otherwise():
    theirs = {**empty(), "rules": {"r1": json.dumps({**RULE, "sql": "SELECT x FROM s1"})}}
    with pytest.raises(PackagingError, match="data/init.json defines rule 'r1' otherwise, and eKuiper imports it "
                                             "too"):
        merge({}, empty(), empty(), fragment(provision(Rule("r1", RULE))), "etc/init.json", "plugin 'p'",
              [("data/init.json", theirs)])
