"""The model built from signatures, and every definition error with its message."""

from __future__ import annotations

import pytest

from ekdsl import DefinitionError, LoadError, load_target
from ekdsl.model import MISSING


def model_of(make_module, source):
    return load_target(str(make_module(source))).model()


def problems_of(make_module, source):
    path = make_module(source)
    with pytest.raises(DefinitionError) as info:
        load_target(str(path)).model()
    return path.name, info.value


FULL = '''
from __future__ import annotations
from typing import Annotated, Any, Iterator, Literal, Optional
from ekdsl import Context, Param, Plugin

plugin = Plugin("full", version="2.0")

@plugin.source(conf_keys={"ext": {"Period": 5}})
def src(ctx: Context, datasource: str = "topic",
        interval_ms: Annotated[int, Param(hint="ms", label="Period", name="Period")] = 10,
        mode: Literal["a", "b"] = "a", name: Optional[str] = None, level=3) -> Iterator[dict]:
    """Emit rows.

    Args:
        mode: The mode.
    """
    yield {}

@plugin.sink
def snk(data: list[dict], prefix: str, ctx) -> None:
    pass

@plugin.sink
def gsnk(path: str = "x"):
    while True:
        row = yield

@plugin.function(aggregate=True)
def agg(values: list[float]) -> float:
    return 0.0

@plugin.function
async def varargs(sep: str, count: int = 1, *rest: Any) -> str:
    return ""
'''


def test_full_model(make_module):
    m = model_of(make_module, FULL)
    assert (m.name, m.version) == ("full", "2.0")
    src = m.get("source", "src")
    assert src.context_param == "ctx" and src.datasource_param == "datasource"
    assert src.datasource.default == "topic"
    assert [p.name for p in src.params] == ["Period", "mode", "name", "level"]
    period = src.params[0]
    assert (period.key, period.pyname, period.default) == ("interval_ms", "interval_ms", 10)
    assert period.hint.en_US == "ms" and period.label.en_US == "Period"
    assert src.params[1].hint.en_US == "The mode." and src.params[1].type.choices == ("a", "b")
    assert src.params[2].type.optional and not src.params[2].required
    assert src.params[3].type.kind == "int"  # inferred from the default
    assert src.conf_keys == (("ext", {"Period": 5}),)
    assert src.description.en_US == "Emit rows."
    assert src.is_generator
    snk = m.get("sink", "snk")
    assert snk.data_param == "data" and snk.data_type.kind == "list" and snk.context_param == "ctx"
    assert [p.name for p in snk.params] == ["prefix"] and snk.params[0].default is MISSING
    gsnk = m.get("sink", "gsnk")
    assert gsnk.is_generator and gsnk.data_param is None and gsnk.data_type.kind == "any"
    agg = m.get("function", "agg")
    assert agg.aggregate and agg.arity == (1, 1) and agg.returns.kind == "float"
    var = m.get("function", "varargs")
    assert var.is_async and var.arity == (1, None) and var.params[-1].variadic
    assert var.example == "varargs(sep, count, rest...)"


def test_module_level_decorators_and_collect(make_module):
    path = make_module('''
        from ekdsl import function, sink, source

        @source
        def a():
            yield {}

        @sink("b-sink")
        def b(data: bytes):
            pass

        @function(name="c")
        def c_impl(x: int) -> int:
            return x
        ''')
    plugin = load_target(str(path))
    assert plugin.name == path.stem
    m = plugin.model()
    assert [(s.kind, s.name) for s in m.symbols] == [("source", "a"), ("sink", "b-sink"), ("function", "c")]
    assert plugin.callables[2](3) == 3  # decorated callables stay plain callables


def test_plugin_add_and_collect_namespace(make_module):
    from ekdsl import Plugin, function

    @function
    def twice(x: int) -> int:
        return 2 * x

    p = Plugin("ns").collect({"twice": twice, "other": 1})
    assert [s.name for s in p.model().symbols] == ["twice"]
    with pytest.raises(TypeError, match="is not marked"):
        Plugin("x").add(len)


ERRORS = [
    ('''
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.source
        def temperature(period: float = 1.0):
            return {"t": 1}
        ''', "@source 'temperature' ({file}:4) must be a generator function: use 'yield' to emit rows"),
    ('''
        from ekdsl import Plugin, Context
        plugin = Plugin("p")

        @plugin.sink
        def out(ctx: Context):
            pass
        ''', "@sink 'out' ({file}:4) has no data parameter: add a first parameter that receives the data"),
    ('''
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.function
        def f(x: int) -> int:
            return x

        @plugin.function(name="f")
        def g(x: int) -> int:
            return x
        ''', "@function 'f' ({file}:8) is declared twice (first at {file}:4): give one of them another name"),
    ('''
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.function(name="my func")
        def f(x: int) -> int:
            return x
        ''', "@function 'my func' ({file}:4) has a name eKuiper rejects (allowed: letters, digits, '_' and '-')"),
    ('''
        from ekdsl import Plugin
        plugin = Plugin("bad name!")

        @plugin.function
        def f(x: int) -> int:
            return x
        ''', "plugin 'bad name!' has a name eKuiper rejects: use letters, digits, '_' and '-' only"),
    ('''
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.source
        def s(level: complex = 1j):
            yield {}
        ''', "@source 's' ({file}:4) parameter 'level': the annotation complex is not supported: use str, int"),
    ('''
        from typing import Union
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.sink
        def s(data: dict, level: Union[int, str] = 1):
            pass
        ''', "@sink 's' ({file}:5) parameter 'level': the union Union[int, str] is not supported"),
    ('''
        from typing import Literal
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.source
        def s(mode: Literal["fast", "slow"] = "medium"):
            yield {}
        ''', "@source 's' ({file}:5) parameter 'mode' has default 'medium', which is not one of 'fast', 'slow': "
             "change the default or the annotation so they agree"),
    ('''
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.source
        def s(count: int = "many"):
            yield {}
        ''', "@source 's' ({file}:4) parameter 'count' has default 'many', which is not int"),
    ('''
        from ekdsl import Plugin
        plugin = Plugin("empty")
        ''', "plugin 'empty' ({file}:0) declares no source, sink or function: decorate at least one callable"),
    ('''
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.source
        def s(**options):
            yield {}
        ''', "@source 's' ({file}:4) has '**options', which eKuiper cannot fill"),
    ('''
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.function
        def f(x: int, *, scale: int = 1) -> int:
            return x
        ''', "@function 'f' ({file}:4) has keyword-only parameter 'scale', which SQL cannot pass"),
    ('''
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.function
        def f(x: int):
            yield x
        ''', "@function 'f' ({file}:4) is a generator, but a SQL function returns one value per call"),
    ('''
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.source(conf_keys={"ext": {"nope": 1}})
        def s(period: int = 1):
            yield {}
        ''', "@source 's' ({file}:4) confKey 'ext' sets unknown property 'nope': use one of: period"),
    ('''
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.source(conf_keys={"ext": {"period": "soon"}})
        def s(period: int = 1):
            yield {}
        ''', "@source 's' ({file}:4) confKey 'ext' sets 'period' to 'soon', which is not int"),
    ('''
        from __future__ import annotations
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.function
        def f(x: Missing) -> int:
            return 1
        ''', "@function 'f' ({file}:5) has an annotation that cannot be resolved (name 'Missing' is not defined)"),
    ('''
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.sink(aggregate=True)
        def s(data: dict):
            pass
        ''', "@sink 's' ({file}:4) uses aggregate=True, which only functions support"),
    ('''
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.source
        def s(*values):
            yield {}
        ''', "@source 's' ({file}:4) has '*values', which only SQL functions support"),
]


@pytest.mark.parametrize(("source", "expected"), ERRORS)
def test_definition_errors(make_module, source, expected):
    file, err = problems_of(make_module, source)
    assert str(err).startswith(expected.format(file=file))
    assert len(err.problems) == 1


def test_all_problems_reported_at_once(make_module):
    file, err = problems_of(make_module, '''
        from ekdsl import Plugin
        plugin = Plugin("p")

        @plugin.source
        def a():
            return 1

        @plugin.sink
        def b():
            pass
        ''')
    assert len(err.problems) == 2
    text = str(err)
    assert text.splitlines()[0] == "2 problems in the plugin definition:"
    assert f"@source 'a' ({file}:4)" in text and f"@sink 'b' ({file}:8)" in text


def test_decorator_misuse_is_immediate():
    from ekdsl import source

    with pytest.raises(TypeError, match="must decorate a function"):
        source(name="x")(42)


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("import does_not_exist_anywhere\n", "ModuleNotFoundError: No module named 'does_not_exist_anywhere'"),
        ("def broken(:\n", "SyntaxError at"),
        ("raise RuntimeError('boom')\n", "importing it raised RuntimeError: boom"),
        ("x = 1\n", "it defines no ekdsl.Plugin and no @source/@sink/@function callable"),
        ("from ekdsl import Plugin\na = Plugin('a')\nb = Plugin('b')\n", "several Plugin objects (a, b)"),
    ],
)
def test_load_errors(make_module, source, needle):
    path = make_module(source)
    with pytest.raises(LoadError) as info:
        load_target(str(path))
    assert needle in str(info.value)
    assert str(info.value).startswith(f"cannot load '{path}'")


def test_load_target_forms(make_module):
    path = make_module("from ekdsl import Plugin\np = Plugin('x')\nq = Plugin('y')\n")
    assert load_target(f"{path}:q").name == "y"
    with pytest.raises(LoadError, match="has no attribute 'zz'"):
        load_target(f"{path}:zz")
    with pytest.raises(LoadError, match="no module named 'no_such_mod_xyz'"):
        load_target("no_such_mod_xyz")
    with pytest.raises(LoadError, match="no such file"):
        load_target("/nonexistent/dir/mod.py")
