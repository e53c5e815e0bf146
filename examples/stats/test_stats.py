"""Aggregate functions: plain Python, in process, and called as eKuiper calls them."""

from pathlib import Path

import pytest
from stats import ewma, mean_of, pctl

PLUGIN = Path(__file__).with_name("stats.py")


def test_plain_functions():
    assert mean_of([1.0, None, 3.0]) == 2.0
    assert mean_of([]) is None
    assert ewma([10.0, 20.0], 0.5) == 15.0
    assert pctl([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    with pytest.raises(ValueError):
        pctl([1.0], 101)


def test_in_process(ekdsl_symbols):
    symbols = ekdsl_symbols(PLUGIN)
    assert symbols.function("mean_of").is_aggregate() == (True, True)
    assert symbols.function("mean_of").exec([1, 2, None, 6]) == (True, 3)
    assert symbols.function("pctl").exec([4, 1, 3, 2], 0) == (True, 1)


def test_as_ekuiper_calls_them(ekuiper):
    emu = ekuiper(PLUGIN)
    # A constant argument arrives once per row of the group; a float parameter takes the first.
    assert emu.function("ewma").exec([10, 20, None], [0.5, 0.5, 0.5]) == (True, 15)
    assert emu.function("pctl").exec([1, 2, 3, 4], [100, 100, 100, 100]) == (True, 4)
    ok, error = emu.function("pctl").exec([1, 2], [250, 250])
    assert not ok and "q must be between 0 and 100" in error
    assert emu.function("mean_of").validate({"Col": "kwh"}) == (True, "")


def test_each_rule_keeps_its_own_baseline(ekdsl_symbols):
    fn = ekdsl_symbols(PLUGIN).function("baseline_delta")
    assert [fn.exec(v, 0.5, rule="r1")[1] for v in (10.0, 20.0, 15.0)] == [None, 10.0, 0.0]
    assert fn.exec(100.0, 0.5, rule="r2") == (True, None)  # another rule: its own baseline
    assert fn.exec(15.0, 0.5, rule="r1", func_id=1) == (True, None)  # another call site of the same rule
    assert fn.state(rule="r1").get("baseline") == 15.0


def test_the_baseline_survives_a_plugin_restart(ekuiper):
    emu = ekuiper(PLUGIN)
    fn = emu.function("baseline_delta")
    assert [fn.exec(v, 0.5, rule="r1")[1] for v in (10.0, 20.0)] == [None, 10.0]
    emu.restart_plugin()  # SIGKILL and a new process, as eKuiper's update does
    assert fn.exec(21.0, 0.5, rule="r1") == (True, 6.0)
