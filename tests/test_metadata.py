"""Generated metadata, pinned by golden files (refresh with EKDSL_UPDATE_GOLDEN=1)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from ekdsl import load_target
from ekdsl.lint import property_names as _names
from ekdsl.metadata import metadata_files

from .conftest import PYSAM, WEATHER

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("target", [PYSAM, WEATHER], ids=["pysam", "weather"])
def test_golden(target):
    model = load_target(str(target)).model()
    files = metadata_files(model)
    root = GOLDEN / model.name
    if os.environ.get("EKDSL_UPDATE_GOLDEN"):
        for path, text in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text, encoding="utf-8")
    expected = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert set(files) == expected
    for path, text in files.items():
        assert text == (root / path).read_text(encoding="utf-8"), path


def test_source_yaml_matches_json():
    """Every yaml key is a property named in properties.default, with the same default."""
    model = load_target(str(WEATHER)).model()
    files = metadata_files(model)
    for sym in model.sources:
        js = json.loads(files[f"sources/{sym.name}.json"])
        ym = yaml.safe_load(files[f"sources/{sym.name}.yaml"])
        assert isinstance(js["properties"], dict)
        fields = {f["name"]: f for f in js["properties"]["default"]}
        names = set(_names(js["properties"])) | set(fields)
        for section, values in ym.items():
            assert section == "default" or section in js["properties"]
            for key, value in values.items():
                assert key in names
                if section == "default" and not isinstance(fields[key]["default"], list):
                    assert fields[key]["default"] == value
                if section != "default":
                    overridden = {f["name"]: f["default"] for f in js["properties"][section]}
                    assert overridden[key] == value


def test_sink_properties_are_a_list_and_functions_named():
    model = load_target(str(PYSAM)).model()
    files = metadata_files(model)
    assert json.loads(files["sinks/print.json"])["properties"] == []
    fn = json.loads(files["functions/revert.json"])
    assert fn["functions"][0]["name"] == "revert"
    assert fn["functions"][0]["args"][0] == {
        "name": "field", "optional": False, "control": "field", "type": "string",
        "hint": {"en_US": "The field to revert.", "zh_CN": "The field to revert."},
        "label": {"en_US": "field", "zh_CN": "field"},
    }
    assert json.loads(files["pysam.json"]) == {
        "name": "pysam", "version": "v1.0.0", "language": "python", "executable": "main.py",
        "sources": ["pyjson"], "sinks": ["print"], "functions": ["revert"],
    }


def test_about_is_what_the_plugin_declares_or_empty():
    """eKuiper's manager UI shows about.author and about.helpUrl: never ekdsl's or eKuiper's own."""
    from ekdsl import Plugin
    from ekdsl.metadata import function_json

    bare = Plugin("bare")
    declared = Plugin("declared", author="Ann", email="ann@example.com", help_url="https://example.com/doc")
    for p in (bare, declared):
        @p.function
        def twice(x: int) -> int:
            return 2 * x

    about = function_json(bare.model(), bare.model().functions[0])["about"]
    assert about["author"] == {"name": "", "email": "", "company": "", "website": ""}
    assert about["helpUrl"] == {"en_US": "", "zh_CN": ""}
    about = function_json(declared.model(), declared.model().functions[0])["about"]
    assert about["author"]["name"] == "Ann" and about["author"]["email"] == "ann@example.com"
    assert about["helpUrl"]["en_US"] == "https://example.com/doc"
