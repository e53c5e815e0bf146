"""Names are matched whole: a trailing newline (which ``$`` lets through) is refused everywhere a name is checked."""

from __future__ import annotations

import json
import re
from typing import Annotated

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ekdsl import DefinitionError, DeployError, PackagingError, Param, Plugin
from ekdsl.deploy import provision
from ekdsl.deploy.bundle import download
from ekdsl.deploy.requirements import parse_line
from ekdsl.wheels import read_wheel

NAME = re.compile(r"[A-Za-z0-9_-]+")


def one_function(plugin: Plugin, **options) -> Plugin:
    def f(x: str) -> str:
        return x

    plugin.function(**options)(f)
    return plugin


def problems(plugin: Plugin) -> str:
    try:
        plugin.model()
    except DefinitionError as exc:
        return str(exc)
    return ""


@pytest.mark.parametrize(("make", "message"), [
    (lambda: one_function(Plugin("pysam\n")), "plugin 'pysam\n' has a name eKuiper rejects"),
    (lambda: one_function(Plugin("ml", conda_env="ml-env\n")), "has conda_env 'ml-env\\n'"),
    (lambda: one_function(Plugin("ml"), name="f\n"), "has a name eKuiper rejects"),
])
def test_newline_names_are_refused(make, message):
    assert message in problems(make())


def test_newline_property_and_conf_key_names_are_refused():
    plugin = Plugin("ml")

    @plugin.source
    def src(ctx, period: Annotated[float, Param(name="period\n")] = 1.0):
        yield {}

    assert "parameter name 'period\n' is not a valid eKuiper property name" in problems(plugin)
    plugin = Plugin("ml")

    @plugin.source(conf_keys={"fast\n": {}})
    def src2(ctx, period: float = 1.0):
        yield {}

    assert "confKey 'fast\n' is not a valid confKey name" in problems(plugin)


@given(st.text(max_size=12))
@example("pysam\n")
@settings(max_examples=300, deadline=None)
def test_plugin_and_conda_names_are_accepted_exactly_when_whole(name):
    whole = NAME.fullmatch(name) is not None
    assert (problems(one_function(Plugin(name))) == "") == whole
    assert ("conda_env" in problems(one_function(Plugin("ok", conda_env=name)))) == (bool(name) and not whole)


def test_rule_ids_are_matched_whole(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"rules": [{"id": "r1\n", "sql": "SELECT 1", "actions": []}]}), encoding="utf-8")
    with pytest.raises(DeployError, match="rules\\[0\\] must be a rule object with an 'id' of letters"):
        provision.load(str(path))


def test_python_version_platform_and_wheel_names_are_matched_whole(tmp_path):
    reqs = [parse_line("tinydep==1.0")]
    with pytest.raises(PackagingError, match="--python-version '3.12\\\\n' is not of the form 3.X"):
        download(reqs, ["manylinux2014_x86_64"], "3.12\n", no_index=True)
    with pytest.raises(PackagingError, match="--platform 'manylinux2014_x86_64\\\\n' is not a platform tag"):
        download(reqs, ["manylinux2014_x86_64\n"], "3.12", no_index=True)
    wheel = tmp_path / "tinylib-1.0-py3-none-any.whl\n"
    import zipfile

    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("tinylib/__init__.py", "")
    with pytest.raises(PackagingError, match="is not a wheel file name"):
        read_wheel(str(wheel))
