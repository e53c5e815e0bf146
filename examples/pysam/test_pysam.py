"""How to test a plugin: fast in-process unit tests, and the real thing against the eKuiper emulator.

Run with ``python -m pytest examples/pysam``; the ``ekdsl_symbols`` and ``ekuiper`` fixtures come with ekdsl.
"""

from pathlib import Path

from pysam import revert

PLUGIN = Path(__file__).with_name("pysam.py")


def test_revert_is_a_plain_function():
    assert revert("abc") == "cba"


def test_symbols_in_process(ekdsl_symbols):
    symbols = ekdsl_symbols(PLUGIN)
    assert symbols.source("pyjson", {"period": 0}).rows(2) == [{"name": "pyjson", "value": 2021}] * 2
    assert symbols.sink("print", {"requireAck": True}).send([{"name": "pyjson"}]) is None
    assert symbols.function("revert").exec("pyjson") == (True, "nosjyp")


def test_plugin_under_the_emulator(ekuiper):
    emu = ekuiper(PLUGIN)
    rows = emu.start_source("pyjson", datasource="demo").rows(2)
    assert rows == [{"name": "pyjson", "value": 2021}] * 2
    assert emu.start_sink("print", {"requireAck": True}).send(b'[{"name":"pyjson"}]') is None
    assert emu.function("revert").exec("pyjson") == (True, "nosjyp")
    assert emu.findings == []
