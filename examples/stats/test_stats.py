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
