"""`ekdsl check`: eKuiper's installer checks (with its texts) and metadata lint."""

from __future__ import annotations

import json
import zipfile

import pytest

from ekdsl import PackagingError, load_target
from ekdsl.checks import check_package
from ekdsl.cli import main
from ekdsl.package import export, package_files, write_zip

from .conftest import PYSAM, WEATHER


@pytest.fixture(scope="module")
def pysam_files():
    return package_files(load_target(str(PYSAM)).model(), vendor=False)


def raw_zip(path, entries):
    """A zip with exactly these (name, data, mode) entries, in this order, no directory entries added."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return str(path)


def errors(report):
    return [f.message for f in report.findings if f.level == "error"]


@pytest.mark.parametrize("target", [PYSAM, WEATHER], ids=["pysam", "weather"])
def test_exported_examples_pass(tmp_path, target, capsys):
    model = load_target(str(target)).model()
    result = export(model, str(tmp_path), make_zip=True)
    for pkg in (result.zip_path, result.directory):
        report = check_package(pkg)
        assert report.ok, report.findings
        assert report.findings == []
        assert main(["check", pkg]) == 0
    assert f"{model.name}: ok (" in capsys.readouterr().out


def test_missing_json(tmp_path, pysam_files):
    files = dict(pysam_files)
    del files["pysam.json"]
    path = tmp_path / "pysam.zip"
    write_zip(files, str(path))
    n = len(zipfile.ZipFile(path).infolist())
    assert errors(check_package(str(path))) == [f"missing or invalid json file pysam.json, found {n} files in total"]


def test_json_in_a_folder_is_not_found(tmp_path, pysam_files):
    files = {f"pysam/{k}": v for k, v in pysam_files.items()}
    path = tmp_path / "pysam.zip"
    write_zip(files, str(path))
    assert errors(check_package(str(path)))[0].startswith("missing or invalid json file pysam.json, found")


def test_name_mismatch(tmp_path, pysam_files):
    path = tmp_path / "pysam.zip"
    write_zip(pysam_files, str(path))
    renamed = tmp_path / "other.zip"
    files = dict(pysam_files)
    files["other.json"] = files.pop("pysam.json")
    write_zip(files, str(renamed))
    assert errors(check_package(str(renamed))) == ["invalid plugin, expect name 'other' but got 'pysam'"]
    assert errors(check_package(str(path), name="other"))[0].startswith("missing or invalid json file other.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"language": ""}, "invalid plugin, missing language"),
        ({"executable": ""}, "invalid plugin, missing executable"),
        ({"sources": [], "sinks": [], "functions": []},
         "invalid plugin, must define at lease one source, sink or function"),
        ({"language": "java"}, "invalid plugin, language 'java' is not supported"),
    ],
)
def test_plugin_json_validation(tmp_path, pysam_files, change, message):
    files = dict(pysam_files)
    meta = json.loads(files["pysam.json"][0])
    meta.update(change)
    files["pysam.json"] = (json.dumps(meta).encode(), 0o644)
    path = tmp_path / "pysam.zip"
    write_zip(files, str(path))
    assert errors(check_package(str(path))) == [message]


@pytest.mark.parametrize(("drop", "message"), [("main.py", "missing main.py"),
                                                ("sources/pyjson.yaml", "missing sources/pyjson.yaml")])
def test_missing_required_file(tmp_path, pysam_files, drop, message):
    files = dict(pysam_files)
    del files[drop]
    path = tmp_path / "pysam.zip"
    write_zip(files, str(path))
    assert errors(check_package(str(path))) == [message]


def test_nested_file_without_directory_entries(tmp_path, pysam_files):
    entries = [(name, data, 0o100644) for name, (data, _) in pysam_files.items() if "/" not in name]
    entries += [("sources/pyjson.yaml", pysam_files["sources/pyjson.yaml"][0], 0o100644),
                ("lib/runtime/plugin.py", b"x = 1\n", 0o100644)]
    report = check_package(raw_zip(tmp_path / "pysam.zip", entries))
    assert errors(report) == [
        "entry 'lib/runtime/plugin.py': mkdirat lib/runtime: no such file or directory (eKuiper creates one "
        "folder level per entry: add a directory entry 'lib/' before it, as 'zip -r' does)"]


def test_non_executable_go_binary(tmp_path):
    meta = {"version": "v1", "language": "go", "executable": "mirror", "sources": [], "sinks": [],
            "functions": ["echo"]}
    base = [("mirror.json", json.dumps(meta).encode(), 0o100644)]
    bad = raw_zip(tmp_path / "mirror.zip", [*base, ("mirror", b"\x7fELF", 0o100644)])
    assert errors(check_package(bad)) == [
        "plugin executable <plugins>/portable/mirror/mirror stops with error fork/exec "
        "<plugins>/portable/mirror/mirror: permission denied (the zip entry's mode is 0o644: set it to 0o755)"]
    (tmp_path / "good").mkdir()
    good = raw_zip(tmp_path / "good" / "mirror.zip", [*base, ("mirror", b"\x7fELF", 0o100755)])
    assert check_package(good).ok


def test_source_json_with_list_properties(tmp_path, pysam_files):
    files = dict(pysam_files)
    sj = json.loads(files["sources/pyjson.json"][0])
    sj["properties"] = sj["properties"]["default"]
    files["sources/pyjson.json"] = (json.dumps(sj).encode(), 0o644)
    path = tmp_path / "pysam.zip"
    write_zip(files, str(path))
    assert errors(check_package(str(path))) == [
        "sources/pyjson.json: 'properties' must be a map like {\"default\": [...]}; eKuiper fails with "
        "'failed to cast to list of properties' and silently ignores sources/pyjson.yaml"]
    del sj["properties"]
    files["sources/pyjson.json"] = (json.dumps(sj).encode(), 0o644)
    write_zip(files, str(path))
    assert "json map does not have properties value" in errors(check_package(str(path)))[0]


def test_metadata_lint(tmp_path, pysam_files):
    files = dict(pysam_files)
    files["sinks/print.json"] = (b'{"properties": {}}', 0o644)
    files["functions/revert.json"] = (b'{"about": {}, "functions": [{"name": "other"}]}', 0o644)
    files["sources/pyjson.yaml"] = (b"default:\n  camelKey: 1\n", 0o644)
    files["sinks/ghost.json"] = (b"{}", 0o644)
    path = tmp_path / "pysam.zip"
    write_zip(files, str(path))
    report = check_package(str(path))
    msgs = [str(f) for f in report.findings]
    assert "error: not found about of sinks/print.json" in msgs
    assert any("'properties' must be a list for a sink" in m for m in msgs)
    assert any("functions/revert.json describes ['other'], not 'revert'" in m for m in msgs)
    assert any(m.startswith("warning: sources/pyjson.yaml: key 'default.camelKey'") for m in msgs)
    assert "warning: sinks/ghost.json belongs to no symbol declared in the plugin json" in msgs


def test_path_traversal_rejected(tmp_path, pysam_files):
    entries = [(n, d, 0o100644) for n, (d, _) in pysam_files.items() if "/" not in n]
    entries += [("sources/", b"", 0o40755), ("sources/pyjson.yaml", b"default:\n", 0o100644),
                ("../evil.sh", b"x", 0o100755)]
    report = check_package(raw_zip(tmp_path / "pysam.zip", entries))
    assert "entry '../evil.sh': path escapes from parent (eKuiper rejects it)" in errors(report)


def test_unreadable_and_missing_packages(tmp_path, capsys):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(PackagingError, match="is not a readable zip file"):
        check_package(str(bad))
    assert main(["check", str(bad)]) == 1
    assert main(["check", str(tmp_path / "nope.zip")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("ekdsl: error: ") and "is not a readable zip file" in err[0]
    nope = tmp_path / "nope.zip"
    assert err[1] == f"ekdsl: error: no such package: {nope} (give a plugin .zip or an exported folder)"
