"""The ekdsl a package carries: the modules the plugin process can import, and no others."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ekdsl import load_target
from ekdsl.package import export, package_files
from ekdsl.vendor import ROOTS, TABLE, import_table, imported_modules, module_sources, runtime_modules, write_table

from .conftest import LAB, PYSAM

LEFT_OUT = ("ekdsl/cli.py", "ekdsl/__main__.py", "ekdsl/lint.py", "ekdsl/package.py", "ekdsl/archive.py",
            "ekdsl/metadata.py", "ekdsl/service/__init__.py", "ekdsl/state/cli.py", "ekdsl/host/__init__.py",
            "ekdsl/deploy/__init__.py")


def _carried(files) -> list:
    return sorted(p for p in files if p.startswith("ekdsl/"))


def test_the_package_leaves_out_what_the_plugin_process_never_imports():
    carried = _carried(package_files(load_target(str(PYSAM)).model()))
    assert not set(LEFT_OUT) & set(carried)
    for needed in ("ekdsl/__init__.py", "ekdsl/runtime/server.py", "ekdsl/runtime/source.py", "ekdsl/wire.py",
                   "ekdsl/transport/native.py", "ekdsl/transport/nng.py", "ekdsl/state/store.py",
                   "ekdsl/template.py", "ekdsl/docstrings.py"):
        assert needed in carried


def test_every_carried_module_imports_from_the_package_alone(tmp_path):
    """Each module the package carries imports (at module level) with nothing of ekdsl but the package's
    copy; the ones imported inside functions are found by reading the sources (the next test)."""
    folder = export(load_target(str(LAB)).model(), str(tmp_path)).directory
    paths = [os.path.relpath(os.path.join(d, f), folder).replace(os.sep, "/")
             for d, _, fs in os.walk(folder) for f in fs if f.endswith(".py")]
    modules = [p[:-3].replace("/", ".").replace(".__init__", "") for p in _carried(paths)]
    code = ("import importlib, sys; sys.path.insert(0, sys.argv[1]); import ekdsl; "
            "assert ekdsl.__file__.startswith(sys.argv[1]), ekdsl.__file__; "
            "[importlib.import_module(m) for m in sys.argv[2:]]; "
            "print(sorted(m for m in sys.modules if m.startswith('ekdsl') and "
            "not (getattr(sys.modules[m], '__file__', '') or '').startswith(sys.argv[1])))")
    proc = subprocess.run([sys.executable, "-c", code, folder, *modules], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_imports_are_read_from_every_form():
    source = b"""
import ekdsl.errors
from . import codec
from .runtime import server as _server
from ..x import y
RUNNER = "ekdsl.runtime.sink:SinkRunner"

def later():
    from .state.store import open_store
"""
    got = imported_modules(source, "ekdsl")
    assert {"ekdsl", "ekdsl.errors", "ekdsl.codec", "ekdsl.runtime", "ekdsl.runtime.server",
            "ekdsl.runtime.sink", "ekdsl.state", "ekdsl.state.store"} <= got
    assert imported_modules(b"def broken(:\n") == set()
    sources = {"__init__.py": b"", "a.py": b"def f():\n    from .b import x\n", "b.py": b"import os\n",
               "c.py": b"from ekdsl import a\n", "runtime/__init__.py": b"import ekdsl.a\n"}
    assert runtime_modules(sources) == {"__init__.py", "runtime/__init__.py", "a.py", "b.py"}
    assert runtime_modules(sources, ["ekdsl.c"]) == {"__init__.py", "runtime/__init__.py", "a.py", "b.py",
                                                     "c.py"}
    assert "ekdsl.runtime" in ROOTS and "ekdsl.plugin" in ROOTS and "ekdsl.template" in ROOTS


def test_the_import_table_is_up_to_date():
    """ekdsl/imports.json spares each export reading every module's syntax tree; after editing any module of
    ekdsl, write it again: python -c 'from ekdsl.vendor import write_table; write_table()'."""
    with open(TABLE, encoding="utf-8") as fh:
        assert json.load(fh) == import_table(module_sources(os.path.dirname(TABLE))), write_table.__doc__


def test_the_import_table_stands_only_for_the_sources_and_rules_it_was_read_by(tmp_path):
    """An entry whose CRC is not its module's source's is read again; a table read by other rules (another
    ekdsl/vendor.py), or missing, broken or odd, is read around, never trusted."""
    sources = {"__init__.py": b"", "a.py": b"from .b import x\n", "b.py": b"import os\n",
               "c.py": b"import os\n", "runtime/__init__.py": b"import ekdsl.a\n"}
    root = tmp_path / "pkg"
    for rel, data in sources.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    table = tmp_path / "imports.json"
    write_table(str(root), str(table))
    want = {"__init__.py", "runtime/__init__.py", "a.py", "b.py"}
    assert runtime_modules(sources, table=str(table)) == want
    changed = {**sources, "a.py": b"from .c import y\n"}  # the table's entry for a.py is now stale
    assert runtime_modules(changed, table=str(table)) == {"__init__.py", "runtime/__init__.py", "a.py", "c.py"}

    def written(table_value: object) -> str:
        table.write_text(json.dumps(table_value))
        return str(table)

    good = json.loads(table.read_text())
    lying = json.loads(table.read_text())
    lying["modules"]["a.py"]["imports"] = []  # an entry with its source's CRC is believed: the CRC is the key
    assert runtime_modules(sources, table=written(lying)) == {"__init__.py", "runtime/__init__.py", "a.py"}
    lying["rules"] += 1  # read by other rules: not used at all
    assert runtime_modules(sources, table=written(lying)) == want
    for imports in ("ekdsl.b", [["ekdsl.b"]], [1], None):
        odd = json.loads(json.dumps(good))
        odd["modules"]["a.py"]["imports"] = imports
        assert runtime_modules(sources, table=written(odd)) == want, imports
    for text in ("", "{", "[]", '{"rules": 1}', json.dumps({"rules": good["rules"], "modules": []}),
                 json.dumps({"rules": good["rules"], "modules": {"a.py": 5}}),
                 json.dumps({"rules": good["rules"], "modules": {"a.py": {"crc": "x"}}})):
        table.write_text(text)
        assert runtime_modules(sources, table=str(table)) == want, text
    assert runtime_modules(sources, table=str(tmp_path / "missing.json")) == want


def test_an_ekdsl_module_the_plugin_imports_is_carried_with_what_it_needs(make_module):
    path = make_module("""
        from ekdsl import Plugin
        from ekdsl.lint import json_kind

        plugin = Plugin("linted")

        @plugin.function
        def f(x: int) -> int:
            return x
    """)
    carried = _carried(package_files(load_target(str(path)).model()))
    assert "ekdsl/lint.py" in carried
    assert "ekdsl/cli.py" not in carried


def test_imports_under_main_and_the_development_tools_are_not_carried(make_module):
    """What a module imports to try itself out (``if __name__ == "__main__":``) never runs in the plugin process,
    and the emulator and deploy tools are never carried (the emulator would take the package for one of the
    official SDK's: its sources mention that SDK's imports)."""
    path = make_module("""
        from ekdsl import Plugin
        import ekdsl.deploy.rest

        plugin = Plugin("tried")

        @plugin.function
        def f(x: int) -> int:
            return x

        if __name__ == "__main__":
            from ekdsl.host import InProcess
            from ekdsl.lint import json_kind
    """)
    carried = _carried(package_files(load_target(str(path)).model()))
    assert not [p for p in carried if p.startswith(("ekdsl/host/", "ekdsl/deploy/")) or p == "ekdsl/lint.py"]
