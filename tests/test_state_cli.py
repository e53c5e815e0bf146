"""python -m ekdsl state: list, show, export, import and drop, per plugin and per rule, SQLite and Redis."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ekdsl import Context
from ekdsl.cli import main
from ekdsl.state import Stores, parse_location


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path) -> str:
    where = str(tmp_path / "state") if request.param == "sqlite" else request.getfixturevalue("redis_server").url
    stores = Stores(parse_location(where))
    for rule in ("r1", "r/2"):
        ctx = Context(plugin="filetail", symbol="jsonl_tail", rule_id=rule, op_id="meters", kind="source",
                      stores=stores)
        ctx.state.put("cursor", {"offset": 10, "line": 2})
    fn = Context(plugin="filetail", symbol="baseline", rule_id="r1", op_id="op", func_id=1, kind="function",
                 stores=stores)
    fn.state.put("mean", 2.5)
    fn.state.shared.put("owner", "ünï")
    Context(plugin="other", symbol="s", rule_id="r1", op_id="o", kind="sink", stores=stores).state.put("k", 1)
    stores.close()
    return where


def cli(capsys, *args: str) -> str:
    assert main(list(args)) == 0
    return str(capsys.readouterr().out)


def test_list_and_show(store, capsys):
    out = cli(capsys, "state", "--store", store, "list")
    assert out.splitlines()[1:] == [
        "filetail: 4 keys",
        "  function baseline rule=r1 op=op instance=0 funcId=1: 1 key",
        "  shared: 1 key",
        "  source jsonl_tail rule=r/2 op=meters instance=0: 1 key",
        "  source jsonl_tail rule=r1 op=meters instance=0: 1 key",
        "other: 1 key",
        "  sink s rule=r1 op=o instance=0: 1 key",
    ]
    assert out.startswith("state: SQLite files in " if "://" not in store else "state: Redis redis://127.0.0.1:")
    out = cli(capsys, "state", "--store", store, "show", "filetail", "--rule", "r1")
    assert out.splitlines()[1:] == [
        "function baseline rule=r1 op=op instance=0 funcId=1",
        "  mean = 2.5",
        "source jsonl_tail rule=r1 op=meters instance=0",
        '  cursor = {"offset": 10, "line": 2}',
    ]


def test_export_import_and_drop(store, capsys, tmp_path):
    exported = cli(capsys, "state", "--store", store, "export", "filetail")
    items = [json.loads(line) for line in exported.splitlines()]
    assert {"plugin": "filetail", "scope": {"kind": "shared"}, "key": "owner", "value": "ünï"} in items
    assert {"plugin": "filetail", "key": "cursor", "value": {"offset": 10, "line": 2},
            "scope": {"kind": "source", "symbol": "jsonl_tail", "rule": "r/2", "op": "meters", "instance": 0}} in items
    (tmp_path / "backup.jsonl").write_text(exported, encoding="utf-8")
    out = cli(capsys, "state", "--store", store, "drop", "filetail", "--rule", "r1")
    assert out.splitlines()[1] == "filetail: dropped 2 keys of rule r1 (2 scopes)"
    assert "rule=r1" not in cli(capsys, "state", "--store", store, "show", "filetail")
    out = cli(capsys, "state", "--store", store, "drop", "filetail")
    assert out.splitlines()[1] == "filetail: dropped 2 keys (2 scopes)"
    assert cli(capsys, "state", "--store", store, "list", "filetail").splitlines()[1] == "filetail: 0 keys"
    assert cli(capsys, "state", "--store", store, "import", str(tmp_path / "backup.jsonl")).splitlines()[1] == \
        "filetail: imported 4 keys"
    assert cli(capsys, "state", "--store", store, "export", "filetail") == exported
    assert cli(capsys, "state", "--store", store, "list", "other").splitlines()[1] == "other: 1 key"  # untouched


def test_a_bad_import_line_says_which(tmp_path, capsys):
    (tmp_path / "bad.jsonl").write_text('{"plugin": "p", "key": "k", "value": 1}\n{"plugin": "p"}\n')
    assert main(["state", "--store", str(tmp_path / "s"), "import", str(tmp_path / "bad.jsonl")]) == 2
    assert "line 2 is not what 'state export' writes (KeyError" in capsys.readouterr().err


def test_the_store_of_an_ekuiper_folder(tmp_path):
    """--ekuiper names eKuiper's folder; without it the command looks from here up, as eKuiper does."""
    base = tmp_path / "kuiper"
    (base / "plugins" / "portable").mkdir(parents=True)
    (base / "etc").mkdir()
    (base / "data").mkdir()
    Context(plugin="p", symbol="s", kind="source",
            stores=Stores(parse_location(str(base / "data" / "ekdsl" / "state")))).state.put("k", 1)
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("EKDSL_STATE", "KuiperBaseKey")}
    for args, cwd in ((["--ekuiper", str(base)], tmp_path), ([], base / "plugins")):
        proc = subprocess.run([sys.executable, "-m", "ekdsl", "state", *args, "list"], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == [
            f"state: SQLite files in {base / 'data' / 'ekdsl' / 'state'} (eKuiper's data folder {base / 'data'})",
            "p: 1 key", "  source s rule= op= instance=0: 1 key"]


def test_no_store_found_says_how_to_name_one(tmp_path, monkeypatch, capsys):
    from ekdsl.state import locate

    monkeypatch.setattr(locate, "ABSOLUTE_DATA", str(tmp_path / "none"))
    monkeypatch.setattr(locate, "ABSOLUTE_ETC", str(tmp_path / "none"))
    monkeypatch.delenv("EKDSL_STATE", raising=False)
    monkeypatch.delenv("KuiperBaseKey", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["state", "list"]) == 2
    err = capsys.readouterr().err
    assert "cannot find eKuiper's data folder" in err and "give --ekuiper DIR (eKuiper's folder) or --store" in err
