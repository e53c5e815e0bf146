"""export writes into its output folder through private temporary names and atomic renames: a symbolic link
planted at any output name is replaced, never written through, and nothing is written outside."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from ekdsl import PackagingError, load_target
from ekdsl.cli import main
from ekdsl.package import export
from ekdsl.service.export import export_service

from .conftest import PYSAM

SVC = Path(__file__).resolve().parent / "plugins" / "svcfuncs.py"


@pytest.fixture
def outside(tmp_path):
    """Files and a folder outside the output folder, as a stranger's links point to them."""
    folder = tmp_path / "outside"
    (folder / "dir").mkdir(parents=True)
    for name in ("victim.zip", "victim.tmp", "victim.json", "victim.proto"):
        (folder / name).write_bytes(b"keep")
    return folder


def untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["dir", "victim.json", "victim.proto", "victim.tmp",
                                                         "victim.zip"]
    assert all((outside / n).read_bytes() == b"keep" for n in os.listdir(outside) if n != "dir")
    assert list((outside / "dir").iterdir()) == []


def regular(path: Path) -> bool:
    return stat.S_ISREG(os.lstat(path).st_mode)


def test_links_planted_at_every_plugin_output_name(tmp_path, outside):
    out = tmp_path / "dist"
    out.mkdir()
    (out / "pysam").symlink_to(outside / "dir")
    (out / "pysam.zip").symlink_to(outside / "victim.zip")
    (out / "pysam.zip.tmp").symlink_to(outside / "victim.tmp")
    assert main(["export", str(PYSAM), "-o", str(out), "--zip"]) == 0
    untouched(outside)
    assert stat.S_ISDIR(os.lstat(out / "pysam").st_mode) and regular(out / "pysam" / "pysam.json")
    assert regular(out / "pysam.zip") and "pysam.json" in zipfile.ZipFile(out / "pysam.zip").namelist()
    assert sorted(os.listdir(out)) == ["pysam", "pysam.zip", "pysam.zip.tmp"]  # no temporary name left behind


def test_links_planted_at_every_service_output_name(tmp_path, outside):
    model = load_target(str(SVC)).model()
    out = tmp_path / "dist"
    (out / "schemas").mkdir(parents=True)
    (out / "svcfuncs.json").symlink_to(outside / "victim.json")
    (out / "schemas" / "svcfuncs.proto").symlink_to(outside / "victim.proto")
    (out / "svcfuncs.service.zip").symlink_to(outside / "victim.zip")
    (out / "svcfuncs.service.zip.tmp").symlink_to(outside / "victim.tmp")
    export_service(model, str(out), "127.0.0.1:8000", "rest")
    untouched(outside)
    for name in ("svcfuncs.json", "schemas/svcfuncs.proto", "svcfuncs.service.zip"):
        assert regular(out / name), name


def test_a_linked_schemas_folder_is_refused(tmp_path, outside):
    out = tmp_path / "dist"
    out.mkdir()
    (out / "schemas").symlink_to(outside / "dir")
    with pytest.raises(PackagingError, match=r"refusing to write into .*schemas: it is a symbolic link; remove it"):
        export_service(load_target(str(SVC)).model(), str(out), "127.0.0.1:8000", "rest")
    untouched(outside)


def test_what_must_not_be_replaced_is_refused(tmp_path):
    model = load_target(str(PYSAM)).model()
    out = tmp_path / "dist"
    (out / "pysam.zip").mkdir(parents=True)
    with pytest.raises(PackagingError, match=r"refusing to replace the folder .*pysam\.zip with a file"):
        export(model, str(out), make_zip=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "pysam").write_text("mine")
    with pytest.raises(PackagingError, match=r"refusing to replace .*pysam: it is a file, not a folder from an "
                                             r"earlier export"):
        export(model, str(other))
    assert (other / "pysam").read_text() == "mine" and os.listdir(other) == ["pysam"]


def test_check_mode_does_not_read_through_links(tmp_path, capsys):
    model = load_target(str(PYSAM)).model()
    out = tmp_path / "dist"
    export(model, str(out))
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-LINE\n")
    os.unlink(out / "pysam" / "main.py")
    (out / "pysam" / "main.py").symlink_to(secret)
    assert main(["export", str(PYSAM), "-o", str(out), "--check"]) == 1
    printed = capsys.readouterr()
    assert f"differs: {out / 'pysam' / 'main.py'} is a symbolic link (not read)" in printed.out
    assert "TOP-SECRET" not in printed.out + printed.err


def test_read_file_refuses_links_fifos_and_large_files(tmp_path, outside):
    from ekdsl.outfiles import read_file

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "small.json").write_bytes(b"0123456789")
    assert read_file(str(tmp_path), "etc/small.json", 10) == b"0123456789"
    assert read_file(str(tmp_path), "etc/missing.json", 10) is None
    assert read_file(str(tmp_path), "nofolder/missing.json", 10) is None
    with pytest.raises(PackagingError, match="etc/small.json: it is over 9 bytes"):
        read_file(str(tmp_path), "etc/small.json", 9)
    (tmp_path / "etc" / "link.json").symlink_to(outside / "victim.json")
    with pytest.raises(PackagingError, match="refusing to read .*link.json: it is a symbolic link"):
        read_file(str(tmp_path), "etc/link.json", 10)
    os.mkfifo(tmp_path / "etc" / "fifo.json")  # opening it to read must not wait for a writer
    with pytest.raises(PackagingError, match="fifo.json: it is not a regular file"):
        read_file(str(tmp_path), "etc/fifo.json", 10)
    (tmp_path / "linked").symlink_to(outside / "dir")
    with pytest.raises(PackagingError, match="refusing to use .*linked: it is a symbolic link"):
        read_file(str(tmp_path), "linked/x.json", 10)


def test_remove_file_removes_a_link_never_its_target(tmp_path, outside):
    from ekdsl.outfiles import remove_file

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "link.json").symlink_to(outside / "victim.json")
    assert remove_file(str(tmp_path), "etc/link.json") is True
    assert remove_file(str(tmp_path), "etc/link.json") is False
    untouched(outside)
    (tmp_path / "etc" / "dir.json").mkdir()
    with pytest.raises(PackagingError, match="it is a folder, where a file belongs"):
        remove_file(str(tmp_path), "etc/dir.json")


def test_replace_tree_puts_the_old_folder_back_when_then_fails(tmp_path):
    from ekdsl.outfiles import replace_tree

    replace_tree(str(tmp_path), "p", {"p.json": (b"old", 0o644)})

    def fail(path: str) -> None:
        assert Path(path, f"{Path(path).name}.json").read_bytes() == b"new"  # the new folder is in place
        raise PackagingError("install failed")

    with pytest.raises(PackagingError, match="install failed"):
        replace_tree(str(tmp_path), "p", {"p.json": (b"new", 0o644)}, then=fail)
    assert (tmp_path / "p" / "p.json").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["p"]
    with pytest.raises(PackagingError, match="install failed"):
        replace_tree(str(tmp_path), "q", {"q.json": (b"new", 0o644)}, then=fail)
    assert sorted(os.listdir(tmp_path)) == ["p"]
