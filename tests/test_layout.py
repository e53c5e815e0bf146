"""``export --layout``: plugins, their environments and their streams and rules laid out in an eKuiper root as
kuiperd loads them at boot (``ekdsl.host.boot`` models what it reads), and what the layout refuses to touch."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from ekdsl.cli import main
from ekdsl.deploy.layout import PROVISIONED
from ekdsl.host import Emulator
from ekdsl.host.boot import boot
from ekdsl.package import package_files
from ekdsl.plugin import load_target

from .conftest import PYSAM
from .wheelkit import offline_env, plain_python, version_wheel

FEED = '''
import json
from typing import Iterator
from ekdsl import Context, Plugin

plugin = Plugin("bfeed", version="1.0.0")

@plugin.source
def bf_rows(ctx: Context, period: float = 0.01, start: int = 0) -> Iterator[dict]:
    """Numbered rows."""
    n = start
    while True:
        n += 1
        yield {"n": n}
        ctx.sleep(period)

@plugin.sink
def bf_file(data: dict, path: str = "") -> None:
    """Append each row to a file."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(data) + "\\n")
'''
GEO = '''
from ekdsl import Plugin

plugin = Plugin("bgeo", version="2.0.0", requirements=["bakedep==1.0"])

@plugin.function
def bg_where(x: str) -> str:
    """The requirement's version and the file it was imported from."""
    import bakedep
    return bakedep.VERSION + "|" + bakedep.__file__
'''
FEED_PROVISION = """
streams:
  - CREATE STREAM bf_in () WITH (TYPE="bf_rows", FORMAT="json")
  - CREATE TABLE bf_table () WITH (TYPE="memory", DATASOURCE="t", FORMAT="json", KIND="lookup")
rules:
  - id: bf_raw
    sql: SELECT n FROM bf_in
    actions:
      - bf_file: {path: /tmp/raw.jsonl}
"""
GEO_PROVISION = """
rules:
  - id: bg_rule
    sql: SELECT n, bg_where(n) AS where_from FROM bf_in
    actions:
      - log: {}
"""
MQTT_SOURCE = {"about": {"trial": False, "description": {"en_US": "eKuiper's own"}}, "properties": {"default": []}}


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    return plain_python(tmp_path_factory, ("ekdsl", "bakedep"))


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


def ekdsl(*argv: str) -> None:
    """``python -m ekdsl export ARGV`` in this process; the plugin's module is imported afresh next time."""
    try:
        assert main(["export", *argv]) == 0
    finally:
        sys.modules.pop(Path(argv[0]).stem, None)


def tree(root: Path) -> set:
    """Every file below ``root`` but the vendored ekdsl package and the plugins' .venv."""
    out = set()
    for folder, dirs, names in os.walk(root):
        rel = Path(folder).relative_to(root)
        dirs[:] = [d for d in dirs if not (rel.parent == Path("plugins/portable") and d in ("ekdsl", ".venv"))]
        out.update(str(rel / n) for n in names)
    return out


def package(source: Path) -> dict:
    try:
        return package_files(load_target(str(source)).model())
    finally:
        sys.modules.pop(source.stem, None)


def test_two_plugins_laid_out_as_ekuiper_boots_them(tmp_path, bare_python, monkeypatch):
    """The layout's files are those kuiperd's boot path reads; moved elsewhere (as an image build's COPY does),
    the plugins run from it, one importing its requirement from the .venv built from an offline bundle."""
    src, links = tmp_path / "src", tmp_path / "links"
    version_wheel(links, "bakedep", "1.0")
    feed, geo = write(src, "bfeed.py", FEED), write(src, "bgeo.py", GEO)
    write(src, "feed.yaml", FEED_PROVISION)
    write(src, "geo.yaml", GEO_PROVISION)
    for key, value in offline_env().items():
        monkeypatch.setenv(key, value)
    stage = tmp_path / "stage"
    ekdsl(str(feed), "--layout", str(stage), "--provision", str(src / "feed.yaml"))
    ekdsl(str(geo), "--layout", str(stage), "--provision", str(src / "geo.yaml"), "--vendor", "--find-links",
          str(links), "--no-index", "--python", bare_python)
    root = tmp_path / "kuiper"
    stage.rename(root)
    (root / "etc" / "mqtt_source.json").write_text(json.dumps(MQTT_SOURCE))  # what eKuiper's own etc holds

    assert tree(root) == {
        "etc/mqtt_source.json", "etc/init.json",
        "etc/sources/bf_rows.json", "etc/sources/bf_rows.yaml", "etc/sinks/bf_file.json",
        "etc/functions/bg_where.json",
        "plugins/portable/bfeed/bfeed.json", "plugins/portable/bfeed/main.py", "plugins/portable/bfeed/bfeed.py",
        "plugins/portable/bfeed/typing_extensions.py", f"plugins/portable/bfeed/{PROVISIONED}",
        "plugins/portable/bgeo/bgeo.json", "plugins/portable/bgeo/main.py", "plugins/portable/bgeo/bgeo.py",
        "plugins/portable/bgeo/typing_extensions.py", f"plugins/portable/bgeo/{PROVISIONED}",
        "plugins/portable/bgeo/install.sh", "plugins/portable/bgeo/requirements.txt",
        "plugins/portable/bgeo/wheels/bakedep-1.0-py3-none-any.whl", "plugins/portable/bgeo/wheels/bundle.json",
    }
    for source, name in ((feed, "bfeed"), (geo, "bgeo")):
        for path, (data, mode) in package(source).items():
            if path.endswith(".whl") or path == "wheels/bundle.json":
                continue  # the bundle was made by export --vendor, not by package_files
            where = root / "etc" / path if path.startswith(("sources/", "sinks/", "functions/")) else \
                root / "plugins" / "portable" / name / path
            assert where.read_bytes() == data, where
            assert where.stat().st_mode & 0o777 == mode, where

    booted = boot(str(root))
    assert booted.warnings == []
    assert [t.split(":")[0] for t in booted.timing] == ["source 'bf_rows'"]  # missed in 2 of 22 starts of kuiperd
    assert {n: (p.meta["sources"], p.meta["sinks"], p.meta["functions"], p.meta["version"])
            for n, p in booted.plugins.items()} == {"bfeed": (["bf_rows"], ["bf_file"], [], "1.0.0"),
                                                     "bgeo": ([], [], ["bg_where"], "2.0.0")}
    assert booted.plugins["bgeo"].executable == str(root / "plugins" / "portable" / "bgeo" / "main.py")
    assert [p["name"] for p in booted.sources["bf_rows"]["properties"]["default"]] == ["period", "start"]
    assert [p["name"] for p in booted.sinks["bf_file"]["properties"]] == ["path"]
    assert [json.loads(Path(f).read_text())["functions"][0]["name"] for f in booted.functions] == ["bg_where"]
    assert yaml.safe_load((root / "etc" / "sources" / "bf_rows.yaml").read_text()) == {
        "default": {"period": 0.01, "start": 0}}
    assert booted.rulesets == [(str(root / "etc" / "init.json"), {
        "streams": {"bf_in": 'CREATE STREAM bf_in () WITH (TYPE="bf_rows", FORMAT="json")'},
        "tables": {"bf_table": 'CREATE TABLE bf_table () WITH (TYPE="memory", DATASOURCE="t", FORMAT="json", '
                               'KIND="lookup")'},
        "rules": {
            "bf_raw": '{"actions":[{"bf_file":{"path":"/tmp/raw.jsonl"}}],"id":"bf_raw","sql":"SELECT n FROM bf_in"}',
            "bg_rule": '{"actions":[{"log":{}}],"id":"bg_rule","sql":"SELECT n, bg_where(n) AS where_from FROM '
                       'bf_in"}'}})]

    with Emulator.from_root(str(root), "bgeo", python=bare_python) as emu:
        ok, value = emu.function("bg_where").exec("x")
    venv = root / "plugins" / "portable" / "bgeo" / ".venv"
    assert ok and value.startswith("1.0|") and Path(value[4:]).resolve().is_relative_to(venv.resolve()), value
    with Emulator.from_root(str(root), "bfeed", python=bare_python) as emu:
        handle = emu.start_source("bf_rows", conf_key="", options={"FORMAT": "json"})
        assert [m["n"] for m in handle.rows(2)] == [1, 2]  # the config came from etc/sources/bf_rows.yaml
    assert os.path.isdir(root)  # the emulator leaves the root it booted from


def test_layout_is_deterministic_and_a_second_run_changes_nothing(tmp_path, monkeypatch):
    prov = write(tmp_path, "prov.yaml", "rules:\n  - {id: r1, sql: SELECT * FROM s, actions: [{log: {}}]}\n")
    one, two = tmp_path / "one", tmp_path / "two"
    ekdsl(str(PYSAM), "--layout", str(one), "--provision", str(prov))
    ekdsl(str(PYSAM), "--layout", str(two), "--provision", str(prov))
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)
    init = one / "etc" / "init.json"
    before = os.stat(init)
    ekdsl(str(PYSAM), "--layout", str(one), "--provision", str(prov))
    after = os.stat(init)  # eKuiper imports init.json again when its modification time changes
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_symbols_the_plugin_dropped_are_removed_with_their_copies_in_data(tmp_path, make_module):
    two = make_module("""
        from ekdsl import Plugin
        plugin = Plugin("shrink")
        @plugin.function
        def sh_a(x: int) -> int:
            return x
        @plugin.function
        def sh_b(x: int) -> int:
            return x
    """, name="shrink")
    root = tmp_path / "kuiper"
    ekdsl(str(two), "--layout", str(root))
    (root / "data" / "functions").mkdir(parents=True)
    (root / "data" / "functions" / "sh_a.json").write_text("{}")  # as eKuiper's REST install leaves it
    two.write_text(two.read_text().split("@plugin.function\ndef sh_b")[0])
    ekdsl(str(two), "--layout", str(root))
    assert sorted(os.listdir(root / "etc" / "functions")) == ["sh_a.json"]
    assert os.listdir(root / "data" / "functions") == []  # eKuiper would serve both copies of the metadata


def test_what_belongs_to_others_is_refused_and_nothing_is_written(tmp_path, capsys):
    root = tmp_path / "kuiper"
    other = root / "plugins" / "portable" / "other"
    other.mkdir(parents=True)
    (other / "other.json").write_text(json.dumps({"language": "python", "executable": "main.py",
                                                  "functions": ["revert"]}))
    before = tree(root)
    assert main(["export", str(PYSAM), "--layout", str(root)]) == 1
    assert "function 'revert' is already plugin 'other''s (plugins/portable/other/other.json)" in \
        capsys.readouterr().err
    assert tree(root) == before
    shutil.rmtree(other)
    (root / "etc" / "sinks").mkdir(parents=True)
    (root / "etc" / "sinks" / "print.json").write_text("{}")  # eKuiper's own, or a plugin installed by hand
    assert main(["export", str(PYSAM), "--layout", str(root)]) == 1
    assert f"{root}/etc/sinks/print.json is already there, and no earlier layout of plugin 'pysam' wrote it" in \
        capsys.readouterr().err
    (root / "etc" / "sinks" / "print.json").unlink()
    (root / "plugins" / "portable" / "pysam").mkdir()
    (root / "plugins" / "portable" / "pysam" / "notes.txt").write_text("mine")
    assert main(["export", str(PYSAM), "--layout", str(root)]) == 1
    assert "it is not empty and holds no pysam.json from an earlier layout; remove it or lay out into another " \
        "root" in capsys.readouterr().err
    assert (root / "plugins" / "portable" / "pysam" / "notes.txt").read_text() == "mine"
    assert not (root / "etc" / "sources").exists()
    sys.modules.pop("pysam", None)


def test_links_in_the_root_are_refused_or_replaced_never_followed(tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.json").write_text("keep")
    root = tmp_path / "kuiper"
    (root / "etc" / "sources").mkdir(parents=True)
    (root / "etc" / "sources" / "pyjson.json").symlink_to(outside / "victim.json")
    assert main(["export", str(PYSAM), "--layout", str(root)]) == 1  # a link is not the plugin's own file
    assert "etc/sources/pyjson.json is already there" in capsys.readouterr().err
    (root / "etc" / "sources" / "pyjson.json").unlink()
    (root / "etc" / "sources").rmdir()
    (root / "etc" / "sources").symlink_to(outside)
    assert main(["export", str(PYSAM), "--layout", str(root)]) == 1
    assert "etc/sources: it is a symbolic link" in capsys.readouterr().err
    (root / "etc" / "sources").unlink()
    (root / "plugins").symlink_to(outside)
    assert main(["export", str(PYSAM), "--layout", str(root)]) == 1
    assert f"refusing to use {root}/plugins: it is a symbolic link" in capsys.readouterr().err
    (root / "plugins").unlink()
    (root / "etc" / "init.json").symlink_to(outside / "victim.json")
    prov = write(tmp_path, "prov.yaml", "rules:\n  - {id: r1, sql: SELECT * FROM s, actions: [{log: {}}]}\n")
    assert main(["export", str(PYSAM), "--layout", str(root), "--provision", str(prov)]) == 1
    assert "etc/init.json: it is a symbolic link" in capsys.readouterr().err
    assert sorted(os.listdir(outside)) == ["victim.json"] and (outside / "victim.json").read_text() == "keep"
    sys.modules.pop("pysam", None)


def test_a_failed_install_puts_the_earlier_layout_back(tmp_path, capsys, make_module):
    source = make_module("""
        from ekdsl import Plugin
        plugin = Plugin("upd", version="1")
        @plugin.function
        def upd_v(x: str) -> str:
            return x
    """, name="upd")
    root = tmp_path / "kuiper"
    prov = write(tmp_path, "prov.yaml", "rules:\n  - {id: r1, sql: SELECT upd_v(a) FROM s, actions: [{log: {}}]}\n")
    ekdsl(str(source), "--layout", str(root), "--provision", str(prov))
    before = {p: (root / p).read_bytes() for p in tree(root)}
    source.write_text(source.read_text().replace('version="1"', 'version="2", requirements=["nodep"]'))
    write(tmp_path, "prov.yaml", "rules:\n  - {id: r2, sql: SELECT upd_v(a) FROM s, actions: [{log: {}}]}\n")
    missing = str(tmp_path / "no" / "python")
    assert main(["export", str(source), "--layout", str(root), "--provision", str(prov), "--python", missing]) == 1
    err = capsys.readouterr().err
    assert f"install.sh of plugin 'upd' failed, so {root} was left as it was (lay out with --no-install" in err
    assert "fail to install plugin: err:exit status 1" in err and missing in err
    assert {p: (root / p).read_bytes() for p in tree(root)} == before
    assert [p for p in os.listdir(root / "plugins" / "portable")] == ["upd"]  # no temporary folder left
    sys.modules.pop("upd", None)


def test_no_install_leaves_the_script_to_run_later(tmp_path, capsys, make_module):
    source = make_module("""
        from ekdsl import Plugin
        plugin = Plugin("later", requirements=["nodep"])
        @plugin.function
        def later_v(x: str) -> str:
            return x
    """, name="later")
    ekdsl(str(source), "--layout", str(tmp_path / "kuiper"), "--no-install")
    folder = tmp_path / "kuiper" / "plugins" / "portable" / "later"
    assert (folder / "install.sh").is_file() and not (folder / ".venv").exists()
    assert f"install.sh not run (--no-install): run 'sh {folder}/install.sh'" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--layout", "r", "--zip"], "--layout writes the plugin into an eKuiper root instead of an export folder, so "
                                 "--zip does not apply"),
    (["--layout", "r", "-o", "x"], "so -o does not apply"),
    (["--provision", "p.yaml"], "--provision is an option of --layout ROOT: add --layout"),
    (["--python", "python3"], "--python is an option of --layout ROOT"),
    (["--no-install"], "--no-install is an option of --layout ROOT"),
])
def test_options_that_do_not_go_together(tmp_path, capsys, argv, message):
    assert main(["export", str(PYSAM), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_python_is_refused_for_a_conda_plugin(tmp_path, capsys, make_module):
    source = make_module("""
        from ekdsl import Plugin
        plugin = Plugin("cond", requirements=["x"], conda_env="env1")
        @plugin.function
        def cond_v(x: str) -> str:
            return x
    """, name="cond")
    assert main(["export", str(source), "--layout", str(tmp_path / "k"), "--python", "python3"]) == 2
    assert "runs in conda environment 'env1', which install.sh installs into: it builds no .venv" in \
        capsys.readouterr().err
    sys.modules.pop("cond", None)


def test_a_package_file_named_like_the_layouts_record_is_refused(tmp_path, capsys, make_module):
    source = make_module("""
        from ekdsl import Plugin
        plugin = Plugin("rec", include=["provisioned.json"])
        @plugin.function
        def rec_v(x: str) -> str:
            return x
    """, name="rec")
    (source.parent / "provisioned.json").write_text("{}")
    assert main(["export", str(source), "--layout", str(tmp_path / "kuiper")]) == 1
    assert "the package holds a file 'provisioned.json', a name the layout keeps" in capsys.readouterr().err
    assert not (tmp_path / "kuiper").exists()
    sys.modules.pop("rec", None)


def test_layouts_of_two_plugins_merge_into_one_init_json(tmp_path, capsys):
    root = tmp_path / "kuiper"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "init.json").write_text(json.dumps({"streams": {"own": "CREATE STREAM own () WITH ()"}}))
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text('streams: [CREATE STREAM s1 () WITH (TYPE="pyjson")]\n'
                 "rules: [{id: r1, sql: SELECT * FROM s1, actions: [{log: {}}]}]\n")
    b.write_text("rules: [{id: r1, sql: SELECT n FROM s1, actions: [{log: {}}]}]\n")
    try:
        assert main(["export", str(PYSAM), "--layout", str(root), "--provision", str(a)]) == 0
        other = tmp_path / "other.py"
        other.write_text("from ekdsl import Plugin\nplugin = Plugin('other')\n\n@plugin.function\n"
                         "def other_f(x: int) -> int:\n    return x\n")
        assert main(["export", str(other), "--layout", str(root), "--provision", str(b)]) == 1
        assert "already defines rule 'r1' otherwise, and not as an earlier layout of plugin 'other' left it" in \
            capsys.readouterr().err
        assert not (root / "plugins" / "portable" / "other").exists()
        b.write_text("rules: [{id: r2, sql: SELECT n FROM s1, actions: [{log: {}}]}]\n")
        assert main(["export", str(other), "--layout", str(root), "--provision", str(b)]) == 0
        doc = json.loads((root / "etc" / "init.json").read_text())
        assert set(doc["streams"]) == {"own", "s1"} and set(doc["rules"]) == {"r1", "r2"}
        assert main(["export", str(PYSAM), "--layout", str(root)]) == 0  # no provisioning any more
        assert "etc/init.json: removed stream s1" in capsys.readouterr().out
        doc = json.loads((root / "etc" / "init.json").read_text())
        assert set(doc["streams"]) == {"own"} and set(doc["rules"]) == {"r2"}
    finally:
        for name in ("pysam", "other"):
            sys.modules.pop(name, None)
