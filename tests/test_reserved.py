"""Names eKuiper takes over: reserved properties and built-in symbol names, at definition and in ``check``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Iterator

import pytest
import yaml

from ekdsl import DefinitionError, Param, Plugin, load_target
from ekdsl.checks import check_package
from ekdsl.host import InProcess
from ekdsl.metadata import metadata_files
from ekdsl.package import export
from ekdsl.reserved import (
    BUILTIN_FUNCTIONS,
    BUILTIN_LOOKUP_SOURCES,
    BUILTIN_SINKS,
    BUILTIN_SOURCES,
    SINK_PROPERTIES,
    SOURCE_PROPERTIES,
)

from .conftest import WEATHER

# a checkout of eKuiper's source (the commit in ekdsl.reserved), to derive the name lists again
EKUIPER = Path(os.environ.get("EKDSL_EKUIPER_SRC") or "/nonexistent")


def problems_of(plugin: Plugin) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        plugin.model()
    return [str(p) for p in info.value.problems]


def test_reserved_source_properties_are_refused_with_the_fix():
    plugin = Plugin("p")

    @plugin.source
    def src(interval: float = 1.0, FORMAT: str = "", other: Annotated[int, Param(name="retainSize")] = 0,
            ) -> Iterator[dict]:
        yield {}

    found = problems_of(plugin)
    assert len(found) == 3
    assert found[0].startswith("@source 'src' (test_reserved.py:")
    assert "property 'interval' has a name eKuiper reserves (internal/topo/planner/planner_source.go " \
           "SourcePropsForSplit): a value of 1 ms or more makes eKuiper insert a rate limiter" in found[0]
    assert found[0].endswith("rename the key eKuiper sees with Annotated[float, Param(name='period')], "
                             "or give the parameter another name")
    assert "property 'FORMAT' has a name eKuiper reserves (internal/topo/node/conf/source.go GetSourceConf): " \
           "overwritten with the stream's FORMAT" in found[1]
    assert "property 'retainSize'" in found[2]


def test_reserved_sink_properties_are_refused_ignoring_case():
    plugin = Plugin("p")

    @plugin.sink
    def snk(data: dict, requireack: bool = False, BatchSize: int = 1, tabledatafield: str = "") -> None:
        pass

    found = problems_of(plugin)
    assert [re.search(r"property '(\w+)'", f).group(1) for f in found] == ["requireack", "BatchSize",
                                                                             "tabledatafield"]
    assert "internal/plugin/portable/runtime/sink.go sinkConf" in found[0]
    assert found[0].endswith("remove it: the runtime acks every message whenever the rule action sets requireAck")
    assert "internal/topo/node/props.go SinkConf" in found[1]


def test_function_arguments_and_datasource_are_not_properties():
    plugin = Plugin("p")

    @plugin.source
    def src(datasource: str = "", period: float = 1.0) -> Iterator[dict]:
        yield {}

    @plugin.function
    def f(format: str, interval: int) -> str:
        return format

    assert [s.name for s in plugin.model().symbols] == ["src", "f"]


def test_builtin_symbol_names_are_refused():
    plugin = Plugin("p")

    @plugin.source
    def mqtt() -> Iterator[dict]:
        yield {}

    @plugin.sink(name="logToMemory")
    def log_it(data: dict) -> None:
        pass

    @plugin.function(name="Round")
    def my_round(x: float) -> float:
        return x

    found = problems_of(plugin)
    assert len(found) == 3
    assert "@source 'mqtt'" in found[0] and "built-in source 'mqtt' (internal/binder/io/builtin.go)" in found[0]
    assert found[1].endswith("so this sink is never reached: pass another name, e.g. @sink(name='my_logToMemory')")
    assert "has the name of eKuiper's built-in function 'round' (internal/binder/function/funcs_*.go)" in found[2]


def test_param_name_renames_the_property_everywhere():
    """``Annotated[float, Param(name="period")]``: metadata, yaml and the runtime's config binding use it."""
    plugin = Plugin("rename")

    @plugin.source(conf_keys={"fast": {"period": 0.5}})
    def src(interval: Annotated[float, Param(name="period")] = 2.0) -> Iterator[dict]:
        yield {"got": interval}

    model = plugin.model()
    files = metadata_files(model)
    props = json.loads(files["sources/src.json"])["properties"]
    assert [f["name"] for f in props["default"]] == ["period"] == [f["name"] for f in props["fast"]]
    assert yaml.safe_load(files["sources/src.yaml"]) == {"default": {"period": 2.0}, "fast": {"period": 0.5}}
    with InProcess(plugin) as ip:
        assert ip.source("src", {"period": 0.25}).rows(1) == [{"got": 0.25}]
        assert ip.source("src", {}).rows(1) == [{"got": 2.0}]


def test_list_defaults_stay_in_the_yaml(tmp_path):
    """An array of scalars as a metadata default breaks eKuiper's metadata loader: write [] as eKuiper does."""
    model = load_target(str(WEATHER)).model()
    files = metadata_files(model)
    props = {f["name"]: f for f in json.loads(files["sources/readings.json"])["properties"]["default"]}
    assert props["sensors"]["default"] == [] and props["channels"]["default"] == []
    assert props["limits"]["default"][0]["name"] == "low"  # an object's fields stay nested, as eKuiper reads them
    assert yaml.safe_load(files["sources/readings.yaml"])["default"]["sensors"] == ["t1", "t2"]
    report = check_package(export(model, str(tmp_path)).directory)
    assert report.ok, report.findings


def write_package(root: Path, files: dict) -> Path:
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return root


def about() -> dict:
    return {"trial": False, "author": {}, "helpUrl": {}, "description": {}}


def test_check_reports_any_package(tmp_path):
    """A package not made by ekdsl: built-in names, reserved properties and array-of-scalar defaults."""
    pkg = write_package(tmp_path / "other", {
        "other.json": {"name": "other", "language": "python", "executable": "main.py",
                       "sources": ["mqtt", "kafka", "ok"], "sinks": ["log"], "functions": ["Round"]},
        "main.py": "",
        "sources/mqtt.json": {"about": about(), "properties": {"default": []}},
        "sources/mqtt.yaml": "default: {}\n",
        "sources/kafka.json": {"about": about(), "properties": {"default": []}},
        "sources/kafka.yaml": "default: {}\n",
        "sources/ok.json": {"about": about(), "properties": {"default": [
            {"name": "interval", "default": 1000},
            {"name": "tags", "default": ["a", "b"]},
            {"name": "nested", "default": [{"name": "inner", "default": [1]}]},
        ]}},
        "sources/ok.yaml": "default:\n  interval: 1000\n  tags: [a, b]\nfast:\n  format: xml\n",
        "sinks/log.json": {"about": about(), "properties": [{"name": "batchSize", "default": 1}]},
        "functions/Round.json": {"about": about(), "functions": [{"name": "Round"}]},
    })
    report = check_package(str(pkg))
    texts = [str(f) for f in report.findings]
    errors = [t for t in texts if t.startswith("error")]
    warnings = [t for t in texts if t.startswith("warning")]
    assert not report.ok
    assert any("source 'mqtt' has the name of eKuiper's built-in source" in t for t in errors)
    assert any("sink 'log' has the name of eKuiper's built-in sink" in t for t in errors)
    assert any("function 'Round' has the name of eKuiper's built-in function" in t for t in errors)
    assert any("source 'kafka' has the name of a built-in source of eKuiper's full" in t for t in warnings)
    assert any("sources/ok.json properties.default: property 'tags' has the array default [\"a\", \"b\"]" in t
               for t in errors)
    assert any("property 'inner' has the array default [1]" in t for t in errors)
    assert any("sources/ok.json: property 'interval' has a name eKuiper reserves" in t for t in warnings)
    assert any("sources/ok.yaml section 'fast': property 'format' has a name eKuiper reserves" in t
               for t in warnings)
    assert any("sinks/log.json: property 'batchSize' has a name eKuiper reserves" in t for t in warnings)


# ---- the data lists, re-derived from eKuiper's Go source when it is at hand


def go_files(pattern: str) -> list[Path]:
    return [p for p in sorted(EKUIPER.glob(pattern)) if not p.name.endswith("_test.go")]


def go_struct_tags(path: str, struct: str) -> set[str]:
    text = (EKUIPER / path).read_text(encoding="utf-8")
    body = re.search(rf"type {struct} struct \{{(.*?)\n\}}", text, re.S)
    assert body is not None, (path, struct)
    return set(re.findall(r'json:"(\w+)"', body.group(1)))


needs_source = pytest.mark.skipif(not EKUIPER.is_dir(),
                                  reason="set EKDSL_EKUIPER_SRC to a checkout of eKuiper's source to derive the names")


@needs_source
def test_builtin_names_match_the_go_source():
    funcs: set[str] = set()
    for path in go_files("internal/binder/function/funcs_*.go"):
        funcs |= set(re.findall(r'(?:builtins|builtinStatfulFuncs)\["([^"]+)"\]\s*=', path.read_text()))
    assert funcs == BUILTIN_FUNCTIONS
    io = ""
    for name in ("builtin.go", "ext_redis.go"):
        io += (EKUIPER / "internal/binder/io" / name).read_text(encoding="utf-8")
    assert set(re.findall(r'modules\.RegisterSource\("(\w+)"', io)) == BUILTIN_SOURCES
    assert set(re.findall(r'modules\.RegisterSink\("(\w+)"', io)) == BUILTIN_SINKS
    assert set(re.findall(r'modules\.RegisterLookupSource\("(\w+)"', io)) == BUILTIN_LOOKUP_SOURCES
    assert "//go:build redisdb || !core" in (EKUIPER / "internal/binder/io/ext_redis.go").read_text()


@needs_source
def test_reserved_properties_match_the_go_source():
    split = go_struct_tags("internal/topo/planner/planner_source.go", "SourcePropsForSplit")
    conf = (EKUIPER / "internal/topo/node/conf/source.go").read_text(encoding="utf-8")
    overwritten = set(re.findall(r'props\["(\w+)"\] = (?:options\.|strings\.ToLower)', conf))
    assert {r.name for r in SOURCE_PROPERTIES.values()} == split | overwritten
    sink = go_struct_tags("internal/topo/node/props.go", "SinkConf") | go_struct_tags("pkg/model/conf.go", "SinkConf")
    sink |= go_struct_tags("internal/plugin/portable/runtime/sink.go", "sinkConf")
    sink |= set(re.findall(r'props\["(\w+)"\]', (EKUIPER / "internal/topo/node/props.go").read_text()))
    sink |= set(re.findall(r'ConnectionSelector\s*=\s*"(\w+)"',
                           (EKUIPER / "internal/topo/node/conf/sink.go").read_text()))
    assert {r.name for r in SINK_PROPERTIES.values()} == sink


RENAMED = '''
from typing import Annotated, Iterator
from ekdsl import Context, Param, Plugin

plugin = Plugin("renamed")

@plugin.source(conf_keys={"fast": {"period": 0.5}})
def src(ctx: Context, interval: Annotated[float, Param(name="period")] = 2.0) -> Iterator[dict]:
    yield {"got": interval}
    ctx.sleep(600)
'''


def test_param_name_reaches_the_plugin_process_through_the_yaml(make_module):
    """Exported, installed and run: the confKey section's 'period' arrives as the parameter 'interval'."""
    from ekdsl.host import Emulator

    with Emulator(str(make_module(RENAMED))) as emu:
        assert emu.start_source("src", conf_key="fast").rows(1) == [{"got": 0.5}]
        assert emu.start_source("src", rule="r2").rows(1) == [{"got": 2.0}]
        assert not any("ignoring unknown" in line for line in emu.output.splitlines())
