"""Hostile packages: zip bombs, lying sizes, unreadable methods, malformed plugin json; check and the
emulator's unzip read them in bounded memory and report, never crash."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib

import pytest

from ekdsl import PackagingError
from ekdsl.checks import check_package
from ekdsl.cli import main
from ekdsl.host.install import install

META = {"name": "bomb", "version": "1", "language": "python", "executable": "main.py", "functions": ["f"]}


def plugin_zip(path, extra=(), meta=META, method=zipfile.ZIP_DEFLATED):
    """A plugin zip that eKuiper installs, plus ``extra`` (name, bytes or chunk iterator) members."""
    with zipfile.ZipFile(path, "w", method) as zf:
        zf.writestr(f"{path.stem}.json", json.dumps(meta) if isinstance(meta, (dict, list, int)) else meta)
        zf.writestr("main.py", "print('hi')\n")
        for name, data in extra:
            if isinstance(data, bytes):
                zf.writestr(name, data)
                continue
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            with zf.open(info, "w", force_zip64=True) as fh:
                for chunk in data:
                    fh.write(chunk)
    return path


def zeros(mib):
    block = bytes(1 << 20)
    return (block for _ in range(mib))


def errors(report):
    return [f.message for f in report.findings if f.level == "error"]


def patch_member(path, name, **fields):
    """Rewrite ``name``'s CRC and/or size in the central directory and its local header."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
        local = info.header_offset
    cd = struct.unpack("<I", data[data.rindex(b"PK\x05\x06") + 16:][:4])[0]  # the directory's offset
    while True:
        name_len = struct.unpack("<H", data[cd + 28:cd + 30])[0]
        if data[cd + 46:cd + 46 + name_len] == name.encode():
            break
        cd += 46 + name_len + sum(struct.unpack("<HH", data[cd + 30:cd + 34]))
    for key, (cd_at, local_at) in {"crc": (16, 14), "size": (24, 22)}.items():
        if key in fields:
            struct.pack_into("<I", data, cd + cd_at, fields[key])
            struct.pack_into("<I", data, local + local_at, fields[key])
    path.write_bytes(bytes(data))


def test_a_high_ratio_entry_is_refused_at_once(tmp_path):
    path = plugin_zip(tmp_path / "bomb.zip", [("data/zeros.bin", zeros(64))])
    assert path.stat().st_size < 200_000
    report = check_package(str(path))
    assert any("entry 'data/zeros.bin' decompresses to more than 100 times its" in m for m in errors(report))
    assert main(["check", str(path)]) == 1


def test_entry_and_total_limits_count_decompressed_bytes(tmp_path):
    from ekdsl.archive import Limits

    path = plugin_zip(tmp_path / "bomb.zip", [("a.bin", zeros(3)), ("b.bin", zeros(3))])
    loose = Limits(ratio=10_000, entry_bytes=2 << 20)
    assert any("entry 'a.bin' holds more than 2097152 bytes" in m for m in errors(check_package(str(path),
                                                                                              limits=loose)))
    total = Limits(ratio=10_000, total_bytes=5 << 20)
    assert any("holds more than 5242880 bytes once decompressed" in m
               for m in errors(check_package(str(path), limits=total)))


def test_a_size_declared_smaller_than_the_data_is_caught(tmp_path):
    """The zip says 16 bytes (with the CRC of those 16): zipfile would stop there; eKuiper's unzip fails."""
    data = bytes(range(256)) * 4096
    path = plugin_zip(tmp_path / "bomb.zip", [("liar.bin", data)])
    patch_member(path, "liar.bin", crc=zlib.crc32(data[:16]), size=16)
    with zipfile.ZipFile(path) as zf:
        assert zf.read("liar.bin") == data[:16]  # what a declared-size reader sees
    assert any("entry 'liar.bin' holds more than the 16 bytes it declares" in m
               for m in errors(check_package(str(path))))


def test_a_size_declared_larger_than_the_data_is_caught(tmp_path):
    path = plugin_zip(tmp_path / "bomb.zip", [("short.bin", b"x" * 100)])
    patch_member(path, "short.bin", size=1 << 20)
    assert any("entry 'short.bin' declares 1048576 bytes but holds 100" in m for m in errors(check_package(str(path))))


def test_many_entries_are_refused_before_they_are_parsed(tmp_path):
    from ekdsl.archive import Limits

    path = plugin_zip(tmp_path / "bomb.zip", [(f"f{i}", b"") for i in range(300)])
    with pytest.raises(PackagingError, match="holds more than 100 entries"):
        check_package(str(path), limits=Limits(entries=100))
    data = bytearray(path.read_bytes())  # a count in the end record that lies: the records are counted
    end = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 3, 3)
    path.write_bytes(bytes(data))
    with pytest.raises(PackagingError, match="holds more than 100 entries"):
        check_package(str(path), limits=Limits(entries=100))


def test_methods_eKuiper_cannot_unzip_are_not_decompressed(tmp_path):
    path = plugin_zip(tmp_path / "bomb.zip", [("z.bin", zeros(64))], method=zipfile.ZIP_BZIP2)
    found = errors(check_package(str(path)))
    assert "is bzip2, which eKuiper's unzip cannot read (zip: unsupported compression algorithm)" in found[0]


def test_the_emulators_unzip_uses_the_same_reader(tmp_path):
    path = plugin_zip(tmp_path / "bomb.zip", [("data/zeros.bin", zeros(64))])
    root = tmp_path / "root"
    with pytest.raises(PackagingError, match="decompresses to more than 100 times"):
        install(str(path), str(root))
    assert not (root / "plugins" / "portable" / "bomb" / "data" / "zeros.bin").exists()
    (tmp_path / "ok").mkdir()
    ok = plugin_zip(tmp_path / "ok" / "bomb.zip", [("data/", b""), ("data/x.txt", b"x" * 5000)])
    inst = install(str(ok), str(tmp_path / "root2"))
    assert (tmp_path / "root2" / "plugins" / "portable" / "bomb" / "data" / "x.txt").read_bytes() == b"x" * 5000
    assert inst.meta["functions"] == ["f"]


def test_reads_stop_at_their_limit(tmp_path):
    from ekdsl.archive import Limits, open_package

    path = plugin_zip(tmp_path / "bomb.zip", [("big.txt", b"y" * 100_000)])
    with open_package(str(path), Limits(text_bytes=1000)) as pkg:
        entry = next(e for e in pkg.entries if e.name == "big.txt")
        assert pkg.head(entry, 10) == b"y" * 10
        with pytest.raises(PackagingError, match="holds more than 1000 bytes, the most ekdsl reads for a file it "
                                                 "reads whole"):
            pkg.read(entry)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({**META, "sources": 5}, "'sources' is number, not a list of names (eKuiper: json: cannot unmarshal "
                                 "number into Go struct field PluginInfo.sources of type []string)"),
        ({**META, "functions": ["f", 1]}, "'functions[1]' is number, not a name (eKuiper: json: cannot unmarshal "
                                          "number into Go struct field PluginInfo.functions of type string)"),
        ({**META, "sinks": {"a": 1}}, "'sinks' is object, not a list of names"),
        ({**META, "language": ["python"]}, "'language' is array, not a string (eKuiper: json: cannot unmarshal "
                                           "array into Go struct field PluginInfo.PluginMeta.language of type "
                                           "string)"),
        ([1], "the top level is array, not an object (eKuiper: json: cannot unmarshal array into Go value of "
              "type portable.PluginInfo)"),
        (5, "the top level is number, not an object"),
        ("[" * 100_000 + "]" * 100_000, "invalid json file bomb.json: nested deeper than ekdsl reads"),
    ],
    ids=["sources-number", "function-number", "sinks-object", "language-array", "array", "number", "nesting"],
)
def test_malformed_plugin_json_is_a_finding(tmp_path, meta, message):
    path = plugin_zip(tmp_path / "bomb.zip", meta=meta)
    found = errors(check_package(str(path)))
    assert any(message in m for m in found), found


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("functions/f.json", b'{"about": {}, "functions": 5}', "functions/f.json: 'functions' is number, not a list"),
        ("functions/f.json", b"[" * 50_000, "functions/f.json: invalid JSON (nested deeper than ekdsl reads)"),
        ("sources/s.yaml", b"default: " + b"[" * 1000, "sources/s.yaml: invalid YAML"),
    ],
    ids=["functions-number", "nesting", "yaml-nesting"],
)
def test_malformed_metadata_at_any_depth_is_a_finding(tmp_path, name, data, message):
    meta = {**META, "functions": ["f"], "sinks": ["s"], "sources": ["s"]}
    extra = [(d, b"") for d in ("functions/", "sinks/", "sources/")] + [(name, data)]
    if name != "sources/s.yaml":
        extra.append(("sources/s.yaml", b"default:\n"))
    report = check_package(str(plugin_zip(tmp_path / "bomb.zip", extra, meta=meta)))
    found = [f.message for f in report.findings]
    assert any(message in m for m in found), found


def test_symbol_names_that_cannot_name_a_file_are_reported(tmp_path):
    meta = {**META, "functions": ["f", "../../etc/x", "a\nb"]}
    found = errors(check_package(str(plugin_zip(tmp_path / "bomb.zip", meta=meta))))
    assert any("function name '../../etc/x' cannot name a file" in m for m in found)
    assert any("function name 'a\\nb' cannot name a file" in m for m in found)
