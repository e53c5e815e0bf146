"""Where state lives: EKDSL_STATE, else eKuiper's store settings and data folder, found as eKuiper finds them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ekdsl import StoreError
from ekdsl.goconf import env_value, go_duration, overlay_env
from ekdsl.state import find_location, locate
from ekdsl.state.locate import sqlite_folder


def layout(base: Path, yaml: str = "") -> Path:
    """eKuiper's relative layout (a release folder) with plugin 'p' installed; its plugin folder."""
    plugin = base / "plugins" / "portable" / "p"
    plugin.mkdir(parents=True)
    (base / "data").mkdir()
    (base / "etc").mkdir()
    if yaml:
        (base / "etc" / "kuiper.yaml").write_text(yaml)
    return plugin


@pytest.fixture(autouse=True)
def no_absolute_layout(monkeypatch, tmp_path):
    """The absolute layout's folders, as this machine may have them, play no part unless a test makes them."""
    monkeypatch.setattr(locate, "ABSOLUTE_DATA", str(tmp_path / "no-var-lib-kuiper-data"))
    monkeypatch.setattr(locate, "ABSOLUTE_ETC", str(tmp_path / "no-etc-kuiper"))


def test_ekdsl_state_names_a_folder_or_a_redis_url(tmp_path):
    where = find_location({"EKDSL_STATE": "~/st"}, [str(tmp_path)])
    assert (where.kind, where.folder, where.origin) == ("sqlite", str(Path.home() / "st"), "EKDSL_STATE")
    url = "redis://:pw@10.0.0.5:6380/2"
    where = find_location({"EKDSL_STATE": url, "KUIPER__STORE__TYPE": "sqlite"}, [str(tmp_path)])
    assert (where.kind, where.redis, where.address) == ("redis", {"url": url}, "redis://10.0.0.5:6380/2")
    assert "pw" not in where.describe()


def test_a_plugin_finds_the_data_folder_beside_plugins(tmp_path):
    plugin = layout(tmp_path / "kuiper")
    (plugin / "data").mkdir()  # a folder the plugin ships: eKuiper deletes it with the plugin, never used
    where = find_location({}, [str(plugin)])
    assert where.folder == sqlite_folder(str(tmp_path / "kuiper" / "data")) == str(
        tmp_path / "kuiper" / "data" / "ekdsl" / "state")
    assert where.origin == f"eKuiper's data folder {tmp_path / 'kuiper' / 'data'}"


def test_the_absolute_layout(tmp_path, monkeypatch):
    """The Debian package: plugins in /var/lib/kuiper/plugins, data beside them, kuiper.yaml in /etc/kuiper."""
    var = tmp_path / "var" / "lib" / "kuiper"
    plugin = var / "plugins" / "portable" / "p"
    plugin.mkdir(parents=True)
    (var / "data").mkdir()
    etc = tmp_path / "etc" / "kuiper"
    etc.mkdir(parents=True)
    (etc / "kuiper.yaml").write_text("store:\n  type: redis\n  redis:\n    host: db\n")
    monkeypatch.setattr(locate, "ABSOLUTE_ETC", str(etc))
    monkeypatch.setattr(locate, "ABSOLUTE_DATA", str(var / "data"))
    assert find_location({}, [str(plugin)]).redis["host"] == "db"
    (etc / "kuiper.yaml").write_text("store:\n  type: sqlite\n")
    assert find_location({}, [str(plugin)]).folder == str(var / "data" / "ekdsl" / "state")
    assert find_location({}, [str(tmp_path / "elsewhere")]).folder == str(var / "data" / "ekdsl" / "state")


def test_kuiper_base_key_is_followed_up_as_ekuiper_does(tmp_path):
    base = tmp_path / "kuiper"
    layout(base)
    (base / "bin").mkdir()
    where = find_location({"KuiperBaseKey": str(base / "bin")}, [str(tmp_path / "elsewhere")])
    assert where.folder == str(base / "data" / "ekdsl" / "state")


def test_walking_up_from_here_only_when_asked(tmp_path):
    base = tmp_path / "kuiper"
    layout(base)
    deep = base / "log" / "x"
    deep.mkdir(parents=True)
    assert find_location({}, [str(deep)], walk=True).folder == str(base / "data" / "ekdsl" / "state")
    with pytest.raises(StoreError, match=r"cannot find eKuiper's data folder .*set EKDSL_STATE to a folder or a "
                                         r"redis:// URL"):
        find_location({}, [str(deep)])


REDIS_YAML = """
basic:
  port: 20498
store:
  type: redis
  extStateType: sqlite
  redis:
    host: 10.1.2.3
    port: 6380
    password: pw
    timeout: 1500ms
  sqlite:
    name:
"""


def test_ekuipers_store_type_redis_is_followed(tmp_path):
    plugin = layout(tmp_path / "k", REDIS_YAML)
    where = find_location({}, [str(plugin)])
    assert where.kind == "redis"
    assert dict(where.redis) == {"host": "10.1.2.3", "port": 6380, "password": "pw", "timeout": 1.5}
    assert where.origin == f"eKuiper's store.type redis, {tmp_path / 'k' / 'etc' / 'kuiper.yaml'}"
    assert where.describe() == f"Redis 10.1.2.3:6380 ({where.origin})"


def test_kuiper_environment_variables_override_the_yaml(tmp_path):
    plugin = layout(tmp_path / "k", REDIS_YAML)
    env = {"KUIPER__STORE__REDIS__PORT": "7000", "KUIPER__STORE__REDIS__PASSWORD": "123",
           "KUIPER__STORE__REDIS__TIMEOUT": "250", "KUIPER__BASIC__DEBUG": "true"}
    assert dict(find_location(env, [str(plugin)]).redis) == {"host": "10.1.2.3", "port": 7000, "password": "123",
                                                              "timeout": 0.25}
    assert find_location({"KUIPER__STORE__TYPE": "sqlite"}, [str(plugin)]).kind == "sqlite"
    plugin2 = layout(tmp_path / "k2")  # no kuiper.yaml at all: the variables alone decide
    where = find_location({"KUIPER__STORE__TYPE": "redis"}, [str(plugin2)])
    assert dict(where.redis) == {"host": "localhost", "port": 6379, "password": None, "timeout": 5.0}


def test_an_unreadable_kuiper_yaml_is_a_warning_and_sqlite(tmp_path, caplog):
    plugin = layout(tmp_path / "k", "store: [unclosed")
    with caplog.at_level(logging.WARNING):
        assert find_location({}, [str(plugin)]).kind == "sqlite"
    assert "cannot read eKuiper's settings" in caplog.text
    layout(tmp_path / "k2", "store:\n  type: redis\n  redis:\n    timeout: soon\n")
    with pytest.raises(StoreError, match='store.redis.timeout .*time: invalid duration "soon"'):
        find_location({}, [str(tmp_path / "k2" / "plugins" / "portable" / "p")])


def test_environment_values_are_typed_as_ekuiper_types_them():
    assert [env_value(v) for v in ("12", "-3", "true", "T", "0", "1.5", "1s", " x ", "[1,a,true]")] == [
        12, -3, True, True, 0, 1.5, "1s", "x", [1, "a", True]]
    conf = overlay_env({"Store": {"Type": "sqlite", "redis": "not a map"}},
                       {"KUIPER__STORE__REDIS__HOST": "h", "KUIPERX": "1", "OTHER__STORE__TYPE": "x"})
    assert conf == {"store": {"type": "sqlite", "redis": {"host": "h"}}}


@given(st.dictionaries(st.text(), st.text()), st.text())
def test_any_environment_overlays_without_raising(env, value):
    conf = overlay_env({"store": {"type": "sqlite"}}, {**env, "KUIPER__STORE__TYPE": value})
    assert repr(conf["store"]["type"]) == repr(env_value(value))


@given(st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none()))
def test_a_duration_is_seconds_or_a_value_error(value):
    try:
        assert isinstance(go_duration(value), float)
    except ValueError:
        pass
