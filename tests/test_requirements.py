"""Requirements in the package: parsing, requirements.txt + install.sh, conda, offline bundles, and their checks."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from ekdsl import DefinitionError, PackagingError, load_target
from ekdsl.checks import check_package
from ekdsl.cli import main
from ekdsl.deploy.bundle import Bundle, download, platform_fits, wheel_fits
from ekdsl.deploy.requirements import collect, parse_line
from ekdsl.package import main_script, package_files, zip_bytes

from .conftest import PYSAM
from .wheelkit import make_wheel, version_wheel

PLUGIN = """
from ekdsl import Plugin

plugin = Plugin("{name}", requirements={reqs!r}{extra})

@plugin.function
def {name}_version(x: str) -> str:
    import tinydep
    return tinydep.VERSION
"""


def plugin_module(make_module, name: str = "reqplug", reqs=("tinydep==1.0",), extra: str = "") -> Path:
    return make_module(PLUGIN.format(name=name, reqs=list(reqs), extra=extra), name=name)


def files_of(path: Path) -> dict:
    return package_files(load_target(str(path)).model())


@pytest.mark.parametrize("line, name", [
    ("requests", "requests"), ("Foo_Bar.baz >= 1.2, <2  # pinned", "foo-bar-baz"),
    ("numpy[extra]==1.26 ; python_version >= '3.9'", "numpy"), ("  # comment only", None), ("", None),
])
def test_parse_line(line, name):
    req = parse_line(line)
    assert (req.name if req else None) == name


@pytest.mark.parametrize("line, message", [
    ("--index-url https://x", "is a pip option"), ("-r other.txt", "is a pip option"),
    ("pkg @ https://example.com/pkg.whl", "direct URL or path reference"), ("./local/pkg", "direct URL"),
    ("pkg >= ", "not a requirement pip understands"), ("!!", "not a requirement pip understands"),
])
def test_parse_line_refuses(line, message):
    with pytest.raises(PackagingError, match=message):
        parse_line(line, "requirements.txt:3")


def test_collect_merges_option_and_requirements_txt(tmp_path):
    module = tmp_path / "mod.py"
    module.write_text("", encoding="utf-8")
    (tmp_path / "requirements.txt").write_text("# deps\nother>=2\ntinydep==1.0\n", encoding="utf-8")
    assert [r.text for r in collect(["tinydep==1.0"], str(module))] == ["tinydep==1.0", "other>=2"]
    with pytest.raises(PackagingError, match="'tinydep' is given twice, as 'tinydep==2.0' and 'tinydep==1.0'"):
        collect(["tinydep==2.0"], str(module))
    (tmp_path / "requirements.txt").write_text("ok\n-e .\n", encoding="utf-8")
    with pytest.raises(PackagingError, match=r"requirements.txt:2\)"):
        collect([], str(module))


def test_no_requirements_no_install_files(tmp_path):
    """Zero-install stays the default: the package holds nothing new and main.py is the plain script."""
    model = load_target(str(PYSAM)).model()
    files = package_files(model)
    assert not {"install.sh", "requirements.txt"} & set(files) and not any(f.startswith("wheels/") for f in files)
    assert files["main.py"][0].decode() == main_script(model)
    assert "_enter_venv" not in main_script(model)
    assert "virtualEnvType" not in json.loads(files["pysam.json"][0])
    assert not any(f.startswith("ekdsl/deploy") for f in files)  # export-time code is not carried


def test_requirements_bring_install_sh_and_venv_prelude(make_module, tmp_path):
    files = files_of(plugin_module(make_module))
    assert files["requirements.txt"] == (b"tinydep==1.0\n", 0o644)
    script, mode = files["install.sh"]
    assert mode == 0o755 and script.startswith(b"#!/bin/sh\n") and b"plugin='reqplug'" in script
    main_py = files["main.py"][0].decode()
    assert main_py.index("_enter_venv()\n") < main_py.index("from ekdsl.runtime import main")
    assert "os.execv(python, [python, \"-u\", os.path.abspath(__file__)] + sys.argv[1:])" in main_py
    report = check_package_of(files, "reqplug", tmp_path)
    assert report.ok and not report.findings


def check_package_of(files: dict, name: str, folder: Path):
    path = folder / f"{name}.zip"
    path.write_bytes(zip_bytes(files))
    return check_package(str(path))


def test_conda_env_goes_to_the_plugin_json(make_module):
    files = files_of(plugin_module(make_module, "condaplug", extra=", conda_env='ml-env'"))
    meta = json.loads(files["condaplug.json"][0])
    assert (meta["virtualEnvType"], meta["env"], meta["executable"]) == ("conda", "ml-env", "main.py")
    assert b"env='ml-env'" in files["install.sh"][0] and b"conda run -n \"$env\"" in files["install.sh"][0]
    assert "_enter_venv" not in files["main.py"][0].decode()  # eKuiper's conda run picks the interpreter
    with pytest.raises(DefinitionError, match="conda_env 'a b'"):
        load_target(str(plugin_module(make_module, "badconda", extra=", conda_env='a b'"))).model()


def test_vendor_without_requirements_is_refused(tmp_path, capsys):
    assert main(["export", str(PYSAM), "-o", str(tmp_path), "--vendor", "--no-index"]) == 1
    assert "declares no requirements" in capsys.readouterr().err
    assert main(["export", str(PYSAM), "-o", str(tmp_path), "--platform", "x"]) == 2
    assert "add --vendor" in capsys.readouterr().err


@pytest.mark.parametrize("wheel, platform, version, fits", [
    ("a-1-py3-none-any.whl", "musllinux_1_2_aarch64", "3.12", True),
    ("a-1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "manylinux2014_x86_64", "3.12", True),
    ("a-1-cp312-cp312-manylinux2014_x86_64.whl", "manylinux_2_28_x86_64", "3.12", True),
    ("a-1-cp312-cp312-manylinux_2_28_x86_64.whl", "manylinux2014_x86_64", "3.12", False),
    ("a-1-cp312-cp312-manylinux2014_x86_64.whl", "manylinux2014_aarch64", "3.12", False),
    ("a-1-cp312-cp312-manylinux2014_x86_64.whl", "musllinux_1_2_x86_64", "3.12", False),
    ("a-1-cp311-cp311-musllinux_1_1_x86_64.whl", "musllinux_1_2_x86_64", "3.12", False),
    ("a-1-cp38-abi3-musllinux_1_1_x86_64.whl", "musllinux_1_2_x86_64", "3.12", True),
    ("a-1-py2.py3-none-any.whl", "win_amd64", "3.9", True),
    ("a-1-cp312-cp312-win_amd64.whl", "native", "3.12", True),
])
def test_wheel_fits(wheel, platform, version, fits):
    assert wheel_fits(wheel, platform, version) is fits


def test_platform_fits_is_not_fooled_by_names():
    assert not platform_fits("linux_x86_64", "manylinux2014_x86_64")
    assert platform_fits("any", "whatever")


def test_vendor_downloads_per_platform_offline(tmp_path, make_module, capsys):
    links = tmp_path / "links"
    version_wheel(links, "tinydep", "1.0")
    version_wheel(links, "tinydep", "2.0")
    out = tmp_path / "out"
    path = plugin_module(make_module, "vendplug")
    code = main(["export", str(path), "-o", str(out), "--zip", "--vendor", "--platform", "manylinux2014_x86_64",
                 "--platform", "musllinux_1_2_aarch64", "--python-version", "3.12", "--find-links", str(links),
                 "--no-index"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "wheels for musllinux_1_2_aarch64, Python 3.12: tinydep-1.0-py3-none-any.whl" in text
    with zipfile.ZipFile(out / "vendplug.zip") as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("wheels/bundle.json"))
    assert "wheels/tinydep-1.0-py3-none-any.whl" in names and "wheels/tinydep-2.0-py3-none-any.whl" not in names
    assert manifest == {"python_version": "3.12", "platforms": {
        "manylinux2014_x86_64": ["tinydep-1.0-py3-none-any.whl"],
        "musllinux_1_2_aarch64": ["tinydep-1.0-py3-none-any.whl"]}}
    assert main(["check", str(out / "vendplug.zip")]) == 0
    assert main(["export", str(path), "-o", str(out), "--zip", "--vendor", "--platform", "manylinux2014_x86_64",
                 "--python-version", "3.12", "--find-links", str(links), "--no-index", "--check"]) == 1  # platforms


def test_vendor_refuses_a_requirement_without_wheel_for_a_target(tmp_path, make_module, capsys):
    links = tmp_path / "links"
    make_wheel(links, "tinydep", "1.0", {"tinydep.py": "VERSION = '1.0'\n"}, tags="cp312-cp312-manylinux2014_x86_64")
    path = plugin_module(make_module, "nowheel")
    argv = ["export", str(path), "-o", str(tmp_path / "out"), "--vendor", "--python-version", "3.12",
            "--find-links", str(links), "--no-index", "--platform", "manylinux2014_x86_64"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, "--platform", "musllinux_1_2_x86_64"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "requirement 'tinydep==1.0' has no wheel for platform musllinux_1_2_x86_64, Python 3.12" in err
    assert "pip wheel <requirement> -w wheels" in err


def _rezip(src: Path, dst: Path, edit) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = edit(info, zin.read(info))
            if data is not None:
                zout.writestr(info, data)


def test_check_install_sh_and_bundle(tmp_path, make_module):
    links = tmp_path / "links"
    make_wheel(links, "tinydep", "1.0", {"tinydep.py": ""}, tags="cp312-cp312-manylinux2014_x86_64")
    model = load_target(str(plugin_module(make_module, "chk"))).model()
    bundle = download(collect(model.requirements), ["manylinux2014_x86_64"], "3.12", find_links=[str(links)],
                      no_index=True)
    good = tmp_path / "chk.zip"
    good.write_bytes(zip_bytes(package_files(model, bundle=bundle)))
    assert check_package(str(good)).ok

    def findings(edit) -> list:
        bad = tmp_path / "x" / "chk.zip"
        bad.parent.mkdir(exist_ok=True)
        _rezip(good, bad, edit)
        return [str(f) for f in check_package(str(bad)).findings]

    def manifest_adds_arm(info, data):
        if info.filename == "wheels/bundle.json":
            m = json.loads(data)
            m["platforms"]["manylinux2014_aarch64"] = []
            return json.dumps(m).encode()
        return data

    assert findings(manifest_adds_arm) == [
        "error: requirement 'tinydep' has no wheel for manylinux2014_aarch64, Python 3.12: install.sh fails there "
        "without network; export again with --vendor --platform manylinux2014_aarch64 --python-version 3.12"]
    assert findings(lambda i, d: None if i.filename == "install.sh" else d)[0].startswith(
        "error: the package has requirements.txt but no install.sh")
    assert findings(lambda i, d: d.replace(b"\nfi\n", b"\n", 1) if i.filename == "install.sh" else d)[0].startswith(
        "error: install.sh has a shell syntax error, so eKuiper's install fails: install.sh:")
    assert findings(lambda i, d: d.replace(b"\n", b"\r\n") if i.filename == "install.sh" else d) == [
        "error: install.sh has Windows line ends (CRLF): /bin/sh fails on them; save it with LF line ends"]

    def not_executable(info, data):
        if info.filename == "install.sh":
            info.external_attr = 0o100644 << 16
        return data

    assert findings(not_executable)[0].startswith("warning: install.sh is not executable (mode 0o644)")
    assert findings(lambda i, d: None if i.filename == "wheels/tinydep-1.0-cp312-cp312-manylinux2014_x86_64.whl"
                    else d)[0].startswith("error: wheels/bundle.json lists tinydep-1.0-cp312")


def test_install_sh_parses_as_posix_sh(tmp_path):
    import subprocess

    from ekdsl.deploy.installer import install_sh

    for text in (install_sh("p"), install_sh("p", "env1")):
        path = tmp_path / "install.sh"
        path.write_text(text, encoding="utf-8")
        assert subprocess.run(["/bin/sh", "-n", str(path)], capture_output=True).returncode == 0


def test_vendor_pins_one_version_for_every_platform(tmp_path, make_module, capsys):
    links = tmp_path / "links"
    version_wheel(links, "tinydep", "1.0")  # any platform
    make_wheel(links, "tinydep", "2.0", {"tinydep.py": ""}, tags="cp312-cp312-musllinux_1_2_x86_64")
    path = plugin_module(make_module, "onever", reqs=("tinydep>=1.0",))
    argv = ["export", str(path), "-o", str(tmp_path / "out"), "--zip", "--vendor", "--python-version", "3.12",
            "--find-links", str(links), "--no-index", "--platform", "manylinux2014_x86_64",
            "--platform", "musllinux_1_2_x86_64"]
    assert main(argv) == 0, capsys.readouterr().err
    with zipfile.ZipFile(tmp_path / "out" / "onever.zip") as zf:
        manifest = json.loads(zf.read("wheels/bundle.json"))
    assert manifest["platforms"] == {"manylinux2014_x86_64": ["tinydep-1.0-py3-none-any.whl"],
                                     "musllinux_1_2_x86_64": ["tinydep-1.0-py3-none-any.whl"]}
    assert main(["check", str(tmp_path / "out" / "onever.zip")]) == 0
    assert "warning" not in capsys.readouterr().out


def test_vendor_refuses_versions_that_cannot_be_one(tmp_path, make_module, capsys):
    links = tmp_path / "links"
    make_wheel(links, "tinydep", "1.0", {"tinydep.py": ""}, tags="cp312-cp312-manylinux2014_x86_64")
    make_wheel(links, "tinydep", "2.0", {"tinydep.py": ""}, tags="cp312-cp312-musllinux_1_2_x86_64")
    path = plugin_module(make_module, "twover", reqs=("tinydep>=1.0",))
    argv = ["export", str(path), "-o", str(tmp_path / "out"), "--vendor", "--python-version", "3.12",
            "--find-links", str(links), "--no-index", "--platform", "manylinux2014_x86_64",
            "--platform", "musllinux_1_2_x86_64"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert ("requirement 'tinydep' resolves to different versions per platform (1.0 for manylinux2014_x86_64, 2.0 "
            "for musllinux_1_2_x86_64), and no one version of it has wheels for every platform, Python 3.12") in err
    assert "('tinydep==...')" in err


def test_check_warns_about_a_bundle_of_split_versions(tmp_path, make_module, capsys):
    links = tmp_path / "links"
    make_wheel(links, "tinydep", "1.0", {"tinydep.py": ""}, tags="cp312-cp312-manylinux2014_x86_64")
    make_wheel(links, "tinydep", "2.0", {"tinydep.py": ""}, tags="cp312-cp312-musllinux_1_2_x86_64")
    model = load_target(str(plugin_module(make_module, "split", reqs=("tinydep>=1.0",)))).model()
    old = Bundle("3.12", {"manylinux2014_x86_64": ("tinydep-1.0-cp312-cp312-manylinux2014_x86_64.whl",),
                          "musllinux_1_2_x86_64": ("tinydep-2.0-cp312-cp312-musllinux_1_2_x86_64.whl",)},
                 {p.name: p.read_bytes() for p in links.iterdir()})
    pkg = tmp_path / "split.zip"
    pkg.write_bytes(zip_bytes(package_files(model, bundle=old)))
    assert main(["check", str(pkg)]) == 0
    assert ("split: warning: wheels/bundle.json: 'tinydep' is 1.0 for manylinux2014_x86_64, 2.0 for "
            "musllinux_1_2_x86_64: hosts of different platforms would run different code") in capsys.readouterr().out
