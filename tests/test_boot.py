"""The emulator's model of kuiperd's boot (``ekdsl.host.boot``): what a root registers, serves and imports, and
what eKuiper logs and skips."""

from __future__ import annotations

import json
from pathlib import Path

from ekdsl.host.boot import boot
from ekdsl.kinds import Kind

ABOUT = {"about": {"description": {"en_US": "x"}}}


def plugin(root: Path, name: str, /, **meta: object) -> Path:
    folder = root / "plugins" / "portable" / name
    folder.mkdir(parents=True)
    (folder / f"{name}.json").write_text(json.dumps({"language": "python", "executable": "main.py", **meta}))
    (folder / "main.py").write_text("")
    return folder


def put(root: Path, path: str, doc: object) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(doc if isinstance(doc, str) else json.dumps(doc))


def test_plugins_register_as_sync_registry_finds_them(tmp_path):
    plugin(tmp_path, "good", sources=["g_src"], functions=["twice"])
    plugin(tmp_path, "dup", functions=["twice"])
    (plugin(tmp_path, "noexe", sinks=["s"]) / "main.py").unlink()
    plugin(tmp_path, "misnamed", name="other", sinks=["s"])
    put(tmp_path, "plugins/portable/stray.txt", "")
    (tmp_path / "plugins" / "portable" / "linked").symlink_to(tmp_path / "plugins" / "portable" / "good")
    booted = boot(str(tmp_path))
    assert sorted(booted.plugins) == ["dup", "good"]
    assert booted.symbols(Kind.SOURCE) == {"g_src": "good"}
    text = "\n".join(booted.warnings)
    assert "function 'twice' is declared by plugins 'dup' and 'good': it goes to whichever registers last" in text
    assert "find file `linked`, portable plugin must be a directory" in text  # os.ReadDir: a link is no folder
    assert "find file `stray.txt`, portable plugin must be a directory" in text
    assert "invalid plugin, expect name 'misnamed' but got 'other'" in text
    assert f"cannot find executable `{tmp_path}/plugins/portable/noexe/main.py`" in text


def test_metadata_is_read_from_where_ekuiper_reads_it(tmp_path):
    plugin(tmp_path, "p", sources=["a_src", "z_src"], sinks=["k"], functions=["f"])
    put(tmp_path, "etc/mqtt_source.json", ABOUT)
    put(tmp_path, "etc/sources/a_src.json", {**ABOUT, "properties": {"default": [{"name": "v", "default": [1]}]}})
    put(tmp_path, "etc/sources/z_src.json", ABOUT)
    put(tmp_path, "data/sources/z_src.json", ABOUT)  # never read for sources
    put(tmp_path, "etc/sources/gone.json", ABOUT)
    put(tmp_path, "etc/sinks/k.json", {**ABOUT, "properties": {}})
    put(tmp_path, "data/functions/f.json", {})
    booted = boot(str(tmp_path))
    assert booted.sources == {} and booted.sinks == {}
    assert booted.functions == [str(tmp_path / "data" / "functions" / "f.json")]
    assert booted.warnings == [
        f"{tmp_path}/etc/sources/a_src.json: property 'v' has an array default that is not made of objects: the "
        "source metadata files after it are not loaded",  # z_src too: eKuiper stops at the first failure
        f"{tmp_path}/etc/sinks/k.json: 'properties' is not a list: the sink metadata files after it are not loaded",
    ]
    (tmp_path / "etc" / "mqtt_source.json").unlink()
    assert f"{tmp_path}/etc/mqtt_source.json: not a JSON object: no source metadata is loaded" in \
        boot(str(tmp_path)).warnings


def test_rulesets_are_imported_data_first_and_entry_by_entry(tmp_path):
    (tmp_path / "plugins" / "portable").mkdir(parents=True)
    put(tmp_path, "data/init.json", {"rules": {"r0": json.dumps({"id": "r0", "sql": "SELECT 1 FROM s",
                                                                   "actions": [{"log": {}}]})}})
    put(tmp_path, "etc/init.json", {"streams": {"s": "CREATE STREAM t () WITH ()", "u": "CREATE TABLE u () WITH ()"},
                                    "rules": {"r1": json.dumps({"id": "r2", "sql": "x", "actions": []}),
                                              "r3": json.dumps({"sql": "SELECT 1 FROM s"})}})
    booted = boot(str(tmp_path))
    assert [Path(p).parent.name for p, _ in booted.rulesets] == ["data", "etc"]
    assert [w for w in booted.warnings if "init.json" in w] == [
        f"{tmp_path}/etc/init.json: Fail to import stream s: the statement must be 'CREATE STREAM s ...'",
        f"{tmp_path}/etc/init.json: Fail to import stream u: the statement must be 'CREATE STREAM u ...'",
        f"{tmp_path}/etc/init.json: Fail to import rule r1: RuleId is not consistent",
        f"{tmp_path}/etc/init.json: Fail to import rule r3: rule 'r3' needs 'sql' and 'actions' (or a 'graph')",
    ]
    put(tmp_path, "etc/init.json", {"rules": {"r1": {"id": "r1"}}})
    assert any(w.startswith("fail to import ruleset: ") and "rules['r1'] is an object" in w
               for w in boot(str(tmp_path)).warnings)


def test_metadata_of_lookup_sources_is_read_like_any_registered_source(tmp_path):
    (tmp_path / "plugins" / "portable").mkdir(parents=True)
    put(tmp_path, "etc/mqtt_source.json", ABOUT)
    for name in ("redis", "memory", "edgex"):  # redis is a lookup source only; edgex is not in this build
        put(tmp_path, f"etc/sources/{name}.json", ABOUT)
    (tmp_path / "etc" / "sinks").mkdir()
    booted = boot(str(tmp_path))
    assert sorted(booted.sources) == ["memory", "redis"]
    assert booted.warnings == ["Find source metadata file but not installed : edgex.json"]  # as kuiperd logs
