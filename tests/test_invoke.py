"""ekdsl.invoke: the call layer shared by the function channel and the service protocols."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ekdsl.errors import ConfigError
from ekdsl.invoke import ArityError, Invoker, ResultError
from ekdsl.plugin import load_target

from .service_clients import jsonpb
from .test_service import PLUGIN


@pytest.fixture
def invokers(make_module):
    path = make_module("""
        import asyncio
        from typing import List, Optional
        from ekdsl import function

        @function
        def scale(x: float, factor: float = 2.0) -> float:
            return x * factor

        @function(aggregate=True)
        def spread(values: List[float], unit: str) -> str:
            return f"{max(values) - min(values)}{unit}"

        @function
        async def later(x: int) -> int:
            await asyncio.sleep(0)
            return x + 1

        @function
        def odd(kind: str) -> object:
            return {"a": [1, object()]} if kind == "object" else {"s": "\\ud800"}
        """)
    return {s.name: Invoker(s) for s in load_target(str(path)).model().functions}


def test_bind_coerces_counts_and_defaults(invokers):
    scale = invokers["scale"]
    assert scale.bind(["3", None]) == [3.0, 2.0]  # text to float, null to the default
    with pytest.raises(ArityError, match=r"^scale\(\) takes 1 to 2 arguments, got 3$"):
        scale.bind([1, 2, 3])
    with pytest.raises(ConfigError, match="expects float"):
        scale.bind(["three"])


def test_an_aggregate_scalar_parameter_takes_its_columns_first_value(invokers):
    spread = invokers["spread"]
    assert spread.invoke([[1.0, 4.0], [None, "m", "m"]]) == "3.0m"


def test_async_functions_run_on_any_thread(invokers):
    later = invokers["later"]
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(later.invoke([i]))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == [1, 2, 3, 4]
    later.close()


def test_a_result_json_cannot_hold_names_its_path(invokers):
    odd = invokers["odd"]
    with pytest.raises(ResultError) as err:
        odd.invoke(["object"])
    assert (err.value.path, err.value.what) == ('result["a"][1]', "an object")
    with pytest.raises(ResultError, match=r'result\["s"\]'):
        odd.invoke(["surrogate"])


_SHAPE = None


def _add_shape():
    global _SHAPE
    if _SHAPE is None:
        from ekdsl.service.schema import shape_of

        _SHAPE = shape_of(load_target(str(PLUGIN)).model().get("function", "add"))
    return _SHAPE


@given(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1))
def test_jsonpb_requests_bind_back_to_the_same_ints(a, b):
    import json

    shape = _add_shape()
    invoker = Invoker(shape.symbol)
    assert invoker.bind(shape.args_from_json(json.loads(jsonpb("add", (a, b))))) == [a, b]


def test_the_context_parameter_may_come_anywhere(make_module):
    """A function's ``Context`` is passed where it is declared: first (as for sources), between arguments,
    before ``*args``, last with defaults before it, or keyword-only."""
    from ekdsl import Context

    path = make_module("""
        from ekdsl import Context, function

        @function
        def first(ctx: Context, x: float) -> str:
            return f"{ctx.rule_id}:{x}"

        @function
        def middle(a: str, ctx: Context, b: str = "-") -> str:
            return f"{a}{ctx.rule_id}{b}"

        @function
        def before_rest(ctx: Context, *parts: str) -> str:
            return ctx.rule_id + "".join(parts)

        @function
        def last(x: int, y: int = 1, ctx: Context = None) -> str:
            return f"{x}{y}{ctx.rule_id}"

        @function
        def keyword(x: int, *, ctx: Context) -> str:
            return f"{x}{ctx.rule_id}"
    """)
    model = load_target(str(path)).model()
    ctx = Context(rule_id="r")
    calls = {"first": [1.5], "middle": ["a"], "before_rest": ["x", "y"], "last": [3], "keyword": [4]}
    got = {name: Invoker(model.get("function", name)).invoke(args, ctx) for name, args in calls.items()}
    assert got == {"first": "r:1.5", "middle": "ar-", "before_rest": "rxy", "last": "31r", "keyword": "4r"}
    assert Invoker(model.get("function", "middle")).invoke(["a", "b"], ctx) == "arb"
