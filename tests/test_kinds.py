"""The kind table: decorator options checked against it, and the wire/metadata names read from it."""

from __future__ import annotations

import pytest

from ekdsl import DefinitionError, load_target
from ekdsl.kinds import KINDS, Kind, check_options, kind_of_wire
from ekdsl.protocol import PLUGIN_TYPES


def problems_of(make_module, source):
    path = make_module(source)
    with pytest.raises(DefinitionError) as info:
        load_target(str(path)).model()
    return path.name, info.value


def test_an_unknown_source_option_is_a_definition_error_with_the_valid_options(make_module):
    file, err = problems_of(make_module, '''
        from ekdsl import source

        @source(lookp=True)
        def rows():
            yield {}
        ''')
    assert len(err.problems) == 1
    assert str(err) == (f"@source 'rows' ({file}:3) has an unknown option 'lookp': "
                        "@source takes: conf_keys, description, hints, label, name")


def test_a_source_option_on_a_sink_is_a_definition_error(make_module):
    file, err = problems_of(make_module, '''
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.sink(conf_keys={"ext": {"x": 1}})
        def out(data: dict):
            pass
        ''')
    assert str(err).startswith(f"@sink 'out' ({file}:4) uses conf_keys={{'ext': {{'x': 1}}}}, which only "
                               "sources support: remove conf_keys=...; @sink takes: ")


def test_a_misspelt_option_gets_a_did_you_mean(make_module):
    file, err = problems_of(make_module, '''
        from ekdsl import function

        @function(agregate=True)
        def total(xs):
            return sum(xs)
        ''')
    assert f"({file}:3) has an unknown option 'agregate': did you mean 'aggregate'? @function takes:" in str(err)


def test_every_problem_of_one_decorator_is_reported():
    assert [p.message for p in check_options(Kind.SINK, {"aggregate": True, "zz": 1})] == [
        "uses aggregate=True, which only functions support", "has an unknown option 'zz'"]
    assert check_options(Kind.FUNCTION, {"aggregate": True, "example": "f(x)"}) == ()


def test_the_table_names_the_wire_and_the_folders():
    assert PLUGIN_TYPES == ("source", "sink", "func")
    assert [kind_of_wire(w) for w in PLUGIN_TYPES] == list(Kind)
    assert kind_of_wire("function") is None  # the wire says func
    assert [k.folder for k in Kind] == ["sources", "sinks", "functions"]
    assert all(spec.kind is kind for kind, spec in KINDS.items())
    assert Kind.SOURCE == "source" and f"{Kind.SINK}s" == "sinks" and str(Kind.FUNCTION) == "function"


@pytest.mark.parametrize("kind", list(Kind))
def test_every_runner_in_the_table_exists(kind):
    import importlib

    module, attr = kind.spec.runner.split(":")
    assert callable(getattr(importlib.import_module(module), attr))
