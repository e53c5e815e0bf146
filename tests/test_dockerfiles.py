"""The Dockerfiles in the docs: parsed, checked against eKuiper's images, and their ekdsl commands run against a
scratch root (no image is built: no container daemon is needed), the final stage's ``COPY`` done by hand, and
the result read as kuiperd boots it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from ekdsl.host.boot import boot

from .conftest import ROOT
from .test_docs import DOCS, FENCE, FILE
from .wheelkit import make_wheel, offline_env

Instruction = Tuple[str, str]  # (keyword, arguments)
BLOCKS = [(doc, body) for doc in DOCS for kind, body in FENCE.findall(doc.read_text(encoding="utf-8"))
          if kind == "dockerfile"]
IMAGE = re.compile(r"lfedge/ekuiper:[\w.]+-(slim|alpine)-python")


def instructions(text: str) -> List[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments left out."""
    out, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, args = pending.strip().partition(" ")
        out.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    assert not pending, f"a continued line is never finished: {pending}"
    return out


def stages(steps: List[Instruction]) -> Tuple[Dict[str, str], List[List[Instruction]]]:
    args = {k: v for kw, a in steps if kw == "ARG" for k, _, v in [a.partition("=")]}
    out: List[List[Instruction]] = []
    for kw, a in steps:
        if kw == "FROM":
            out.append([])
        if out:
            out[-1].append((kw, a))
    return args, out


def ekdsl_commands(stage: List[Instruction]) -> List[List[str]]:
    """The ``python -m ekdsl`` commands of the stage's ``RUN``s."""
    found = []
    for kw, a in stage:
        if kw == "RUN":
            for part in a.split("&&"):
                argv = shlex.split(part)
                if argv[1:3] == ["-m", "ekdsl"]:
                    found.append(argv)
    return found


def test_the_docs_have_both_dockerfiles():
    images = sorted(IMAGE.search(body).group(1) for _, body in BLOCKS if IMAGE.search(body))
    assert images == ["alpine", "slim"]


@pytest.mark.parametrize("block", BLOCKS, ids=[FILE.match(b).group(1) if FILE.match(b) else d.name
                                               for d, b in BLOCKS])
def test_dockerfile_parses_and_fits_ekuipers_image(block):
    _, body = block
    args, (bake, final) = stages(instructions(body))
    image = IMAGE.fullmatch(args["EKUIPER"])
    assert image, args
    assert bake[0] == ("FROM", "${EKUIPER} AS bake") and final[0] == ("FROM", "${EKUIPER}")  # the same Python
    commands = ekdsl_commands(bake)
    assert commands and all(c[0] == "/opt/ekdsl/bin/python" and "--layout" in c for c in commands)
    assert all(c[c.index("--layout") + 1] == "/bake" for c in commands)  # not under /kuiper: its VOLUMEs
    copies = [a for kw, a in final if kw == "COPY"]
    if image.group(1) == "alpine":  # runs as kuiper: the bake stage needs root, the files kuiper's ownership
        assert ("USER", "root") in bake
        assert copies == ["--from=bake --chown=kuiper:kuiper /bake/ /kuiper/"]
    else:
        assert copies == ["--from=bake /bake/ /kuiper/"]
    assert [kw for kw, _ in final] == ["FROM", "COPY"]


def test_dockerfiles_ekdsl_commands_lay_out_a_root_kuiperd_boots(tmp_path, monkeypatch):
    doc = ROOT / "docs" / "deployment.md"
    text = doc.read_text(encoding="utf-8")
    src = tmp_path / "src"
    src.mkdir()
    plugin = "".join(b + "\n" for kind, b in FENCE.findall(text) if kind == "python" and not FILE.match(b))
    (src / "plugin.py").write_text(plugin, encoding="utf-8")
    for kind, body in FENCE.findall(text):
        named = FILE.match(body)
        if named and kind != "dockerfile":
            (src / named.group(1)).write_text(body, encoding="utf-8")
    links = tmp_path / "links"  # the plugin's requirement, as pip's index would give it
    make_wheel(links, "PyYAML", "6.0", {"yaml/__init__.py": "from json import loads as safe_load\n"})
    for key, value in {**offline_env(), "PIP_FIND_LINKS": str(links)}.items():
        monkeypatch.setenv(key, value)
    done: Dict[str, Path] = {}
    for _, body in (b for b in BLOCKS if b[0] == doc):
        for argv in ekdsl_commands(stages(instructions(body))[1][0]):
            bake = tmp_path / f"bake{len(done)}"
            line = " ".join(argv)
            if line in done:
                continue
            argv = [sys.executable] + [
                a.replace("/src/", f"{src}/").replace("/bake", str(bake)).replace(
                    "/usr/local/bin/python3", sys.executable) for a in argv[1:]]
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            done[line] = bake
    assert done
    for bake in done.values():
        kuiper = tmp_path / "kuiper"
        shutil.copytree(bake, kuiper, symlinks=True)  # COPY --from=bake /bake/ /kuiper/
        booted = boot(str(kuiper))
        assert list(booted.plugins) == ["geo"]
        assert [os.path.basename(p) for p, _ in booted.rulesets] == ["init.json"]
        assert set(booted.rulesets[0][1]["rules"]) == {"shape_area"}
        venv = kuiper / "plugins" / "portable" / "geo" / ".venv"
        found = subprocess.run([str(venv / "bin" / "python"), "-c", "import yaml, sys; print(yaml.__file__)"],
                               capture_output=True, text=True, timeout=60)
        assert found.stdout.startswith(str(venv)), found  # the requirement, in the .venv install.sh built
        shutil.rmtree(kuiper)
