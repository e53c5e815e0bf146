"""The emulator does to properties what eKuiper's rule planner does: stream options, the rate limiter, sink props."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ekdsl import load_target
from ekdsl.host import Emulator
from ekdsl.host.planner import RateLimitedSource, RuleError, go_duration, plan_sink, plan_source
from ekdsl.package import export

from .conftest import wait_for

BURST = '''
from typing import Iterator
from ekdsl import Context, Plugin

plugin = Plugin("burst")

@plugin.source
def rows(ctx: Context, count: int = 5) -> Iterator[dict]:
    for i in range(count):
        yield {"i": i}
    ctx.sleep(600)

@plugin.sink
def keep(data: dict) -> None:
    pass
'''


@pytest.fixture
def burst_package(make_module, tmp_path):
    """The exported plugin, its yaml edited as a hand-written (or SDK) package could have it."""
    directory = export(load_target(str(make_module(BURST))).model(), str(tmp_path / "out")).directory
    with open(f"{directory}/sources/rows.yaml", "a", encoding="utf-8") as fh:
        fh.write("slow:\n  interval: 1000\n  format: xml\n  Key: mine\n")
    return directory


def test_stream_options_overwrite_props_and_interval_keeps_the_latest_row(burst_package):
    with Emulator(burst_package) as emu:
        config = emu.source_config("rows", "slow", "topic", options={"FORMAT": "JSON", "KEY": "id"})
        assert (config["format"], config["key"], config["datasource"]) == ("json", "id", "topic")
        assert config["interval"] == 1000 and config["retainSize"] == 0
        src = emu.start_source("rows", "slow", options={"KEY": "id"})
        assert isinstance(src, RateLimitedSource) and src.interval == 1.0
        assert wait_for(lambda: (src.poll(0.1), src.dropped)[1] == 4, timeout=10)
        msg, _ = src.tick()
        assert msg == {"i": 4}  # rows 0-3 came in the same tick: eKuiper drops them silently
        assert src.tick() is None
        emu.stop(src)
        found = "\n".join(emu.findings)
        assert "property 'interval' has a name eKuiper reserves" in found
        assert "interval 1000 makes eKuiper keep only the latest row every 1000 ms" in found
        assert "property 'format' has a name eKuiper reserves" in found
        assert "property 'key' has a name eKuiper reserves" in found  # lower-cased: not named in the json


def test_without_interval_every_row_arrives(burst_package):
    with Emulator(burst_package) as emu:
        src = emu.start_source("rows")
        assert not isinstance(src, RateLimitedSource)
        assert [m["i"] for m in src.rows(5)] == [0, 1, 2, 3, 4]
        assert not any(f.startswith("source 'rows'") for f in emu.findings)


def test_sink_props_eKuiper_cannot_decode_fail_rule_creation(burst_package):
    with Emulator(burst_package) as emu:
        with pytest.raises(RuleError, match="fail to parse sink configuration: .*'batchSize' expected type 'int'"):
            emu.start_sink("keep", {"batchSize": "ten"})
        snk = emu.start_sink("keep", {"requireAck": True, "compression": "gzip"})
        assert snk.send(b'{"a":1}') is None
        emu.stop(snk)
        assert any("property 'compression' is read by eKuiper" in f for f in emu.findings)
        assert not any("'requireAck'" in f for f in emu.findings)


@pytest.mark.parametrize(("interval", "period"), [(1000, 1.0), (1.9, 0.001), ("2s", 2.0), ("1m30s", 90.0),
                                                  (0.5, 0.0), (0, 0.0)])
def test_interval_decodes_as_eKuiper_does(interval, period):
    assert plan_source("s", {}, {"Interval": interval})[0] == period


@pytest.mark.parametrize(("interval", "reason"), [
    ("fast", 'time: invalid duration "fast"'), ("500us", "interval should be larger than 1ms"),
    (True, "unconvertible type 'bool'"),
])
def test_bad_interval_fails_rule_creation(interval, reason):
    with pytest.raises(RuleError, match=reason):
        plan_source("s", {"interval": interval}, {"interval": interval})


def test_merger_without_rate_limit_fails():
    with pytest.raises(RuleError, match="merger is set but rate limit is not required"):
        plan_source("s", {}, {"merger": "m"})


def test_sink_findings_and_types():
    assert plan_sink("k", {"requireAck": False, "path": "x"}) == []
    for props in ({"fields": "a"}, {"sendSingle": "yes"}, {"lingerInterval": "soon"}, {"encProps": []}):
        with pytest.raises(RuleError):
            plan_sink("k", props)
    # rule options are not the plugin's properties: reported only when the sink declares one of that name
    options = {"fields": ["a"], "sendSingle": True, "lingerInterval": "1s", "batchSize": 10, "requireack": True}
    assert plan_sink("k", options) == []
    [found] = plan_sink("k", options, declared=["Fields", "path"])
    assert found.startswith("sink 'k': its property 'fields' is read by eKuiper")
    assert "the emulator sends the payload as given" in plan_sink("k", {"encryption": "aes"})[0]


units = st.sampled_from([("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0),
                         ("h", 3600.0)])


@given(st.lists(st.tuples(st.integers(0, 10_000), units), min_size=1, max_size=4), st.booleans())
def test_go_duration_strings(parts, negative):
    text = ("-" if negative else "") + "".join(f"{n}{u}" for n, (u, _) in parts)
    expected = sum(n * scale for n, (_, scale) in parts) * (-1 if negative else 1)
    assert go_duration(text) == pytest.approx(expected)


@given(st.floats(0, 1e9, allow_nan=False))
def test_go_duration_numbers_are_whole_milliseconds(ms):
    assert go_duration(ms) == int(ms) / 1000.0
