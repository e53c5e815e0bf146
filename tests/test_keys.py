"""Two parameters that map to one eKuiper key, compared as eKuiper compares keys (ignoring case), are refused."""

from __future__ import annotations

import json
from typing import Annotated, Iterator

from ekdsl import Context, Param, Plugin, load_target
from ekdsl.checks import check_package
from ekdsl.cli import main as cli_main
from ekdsl.package import package_files, write_zip

from .conftest import PYSAM
from .test_reserved import problems_of


def test_a_renamed_parameter_beside_one_of_that_name_is_refused_naming_both():
    plugin = Plugin("twokeys")

    @plugin.source
    def poll(ctx: Context, interval: Annotated[float, Param(name="period")] = 1.0,
             period: float = 2.0) -> Iterator[dict]:
        yield {"interval": interval, "period": period}

    [problem] = problems_of(plugin)
    assert "parameters 'interval' (Param(name='period')) and 'period' map to one eKuiper key, 'period'" in problem
    assert "give 'interval' another key with Param(name=...)" in problem


def test_keys_are_compared_ignoring_case_as_ekuiper_does():
    plugin = Plugin("casekeys")

    @plugin.sink
    def out(data: dict, Level: str = "a", level: str = "b") -> None:
        pass

    @plugin.sink
    def out2(data: dict, mode: str = "a", kind: Annotated[str, Param(name="MODE")] = "b") -> None:
        pass

    problems = problems_of(plugin)
    assert len(problems) == 2
    assert "parameters 'Level' and 'level' map to one eKuiper key" in problems[0]
    assert "parameters 'mode' and 'kind' (Param(name='MODE')) map to one eKuiper key" in problems[1]


def test_a_property_keyed_like_the_datasource_parameter_names_both():
    plugin = Plugin("dskeys")

    @plugin.source
    def feed(datasource: str = "", topic: Annotated[str, Param(name="DataSource")] = "") -> Iterator[dict]:
        yield {}

    [problem] = problems_of(plugin)
    assert "parameters 'datasource' (the stream's DATASOURCE) and 'topic' (Param(name='DataSource'))" in problem
    assert "reserves" not in problem  # one problem, the clash, not a second one about the reserved name


def test_the_reserved_name_fix_never_suggests_a_key_already_taken():
    plugin = Plugin("advice")

    @plugin.source
    def poll(ctx: Context, interval: float = 1.0, period: float = 2.0) -> Iterator[dict]:
        yield {}

    [problem] = problems_of(plugin)
    assert "property 'interval' has a name eKuiper reserves" in problem
    assert "Param(name='period')" not in problem and "Param(name='interval_value')" in problem


def test_function_arguments_are_positional_and_may_share_a_label():
    plugin = Plugin("args")

    @plugin.function
    def f(x: float, y: Annotated[float, Param(name="x")]) -> float:
        return x + y

    assert [p.name for p in plugin.model().functions[0].params] == ["x", "x"]


def test_export_and_check_refuse_the_clash(tmp_path, capsys):
    module = tmp_path / "clash.py"
    module.write_text(
        "from typing import Annotated, Iterator\n"
        "from ekdsl import Param, Plugin\n"
        "plugin = Plugin('clash')\n"
        "@plugin.source\n"
        "def poll(interval: Annotated[float, Param(name='period')] = 1.0, period: float = 2.0) -> Iterator[dict]:\n"
        "    yield {}\n", encoding="utf-8")
    assert cli_main(["export", str(module), "-o", str(tmp_path / "dist")]) == 1
    assert "map to one eKuiper key, 'period'" in capsys.readouterr().err
    assert not (tmp_path / "dist").exists()


def test_check_warns_about_a_package_listing_one_key_twice(tmp_path):
    """A package made by hand or by an older ekdsl: check says what model() would have refused."""
    files = package_files(load_target(str(PYSAM)).model(), vendor=False)
    source = json.loads(files["sources/pyjson.json"][0])
    source["properties"]["default"] += [dict(source["properties"]["default"][0])]
    sink = json.loads(files["sinks/print.json"][0])
    sink["properties"] = [{"name": "Level", "default": ""}, {"name": "level", "default": ""}]
    files["sources/pyjson.json"] = (json.dumps(source).encode(), 0o644)
    files["sinks/print.json"] = (json.dumps(sink).encode(), 0o644)
    write_zip(files, str(tmp_path / "pysam.zip"))
    found = [str(f) for f in check_package(str(tmp_path / "pysam.zip")).findings]
    assert "warning: sources/pyjson.json: lists the property 'period' twice, one key to eKuiper" in found[0]
    assert "warning: sinks/print.json: lists the properties 'Level' and 'level', one key to eKuiper" in found[1]
