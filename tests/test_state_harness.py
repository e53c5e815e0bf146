"""ctx.state in the test harnesses: InProcess, the Emulator, the pytest fixtures and dev, restarts that keep it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ekdsl.host import Emulator, InProcess

from .conftest import wait_for

STATEFUL = Path(__file__).resolve().parent / "plugins" / "stateful.py"


def test_in_process_restart_keeps_the_state(tmp_path):
    with InProcess(str(STATEFUL)) as symbols:
        src = symbols.source("numbered", {"period": 0, "limit": 5})
        assert [r["n"] for r in src.rows(5)] == [0, 1, 2, 3, 4]
        assert src.runner.done.wait(5) and src.state.get("next") == 5
        src.state.put("next", 2)  # a test may set the state it wants to resume from
        src = symbols.restart(src)
        assert [r["n"] for r in src.rows(3)] == [2, 3, 4]
        fn = symbols.function("running_mean")
        assert fn.exec(4.0, rule="r7", func_id=2) == (True, 4.0)
        assert fn.state(rule="r7", func_id=2).get("count") == 1 and fn.state().items() == []
        assert symbols.function("hits").exec() == (True, 1) and symbols.shared_state.get("hits") == 1
        scratch = symbols.stores.location.folder
        assert os.path.exists(os.path.join(scratch, "stateful.db"))
    assert not os.path.exists(scratch)  # the private store goes with close()


def test_in_process_with_a_folder_resumes_in_the_next_one(tmp_path):
    with InProcess(str(STATEFUL), state=tmp_path) as symbols:
        assert [r["n"] for r in symbols.source("numbered", {"limit": 3}).rows(3)] == [0, 1, 2]
    with InProcess(str(STATEFUL), state=tmp_path) as symbols:
        assert symbols.source("numbered", {"limit": 5}).rows(2) == [{"n": 3, "pid": os.getpid()},
                                                                     {"n": 4, "pid": os.getpid()}]


def test_the_fixtures_take_a_state_folder(ekdsl_symbols, ekuiper, tmp_path):
    assert ekdsl_symbols(STATEFUL, state=tmp_path).function("hits").exec() == (True, 1)
    emu = ekuiper(STATEFUL, state=tmp_path)
    assert emu.function("hits").exec() == (True, 2)
    assert emu.state().get("hits") == 2


def test_the_emulator_keeps_state_where_ekuiper_would(tmp_path):
    """By default the plugin finds the emulated eKuiper's data folder beside its plugins folder, as under
    eKuiper; the whole of it goes with close()."""
    with Emulator(str(STATEFUL)) as emu:
        assert emu.function("hits").exec() == (True, 1)
        db = Path(emu.root, "data", "ekdsl", "state", "stateful.db")
        assert db.exists() and emu.state_location.folder == str(db.parent)
        src = emu.start_source("numbered", extra={"limit": 3})
        assert [r["n"] for r in src.rows(3)] == [0, 1, 2]
        assert wait_for(lambda: emu.state(src).get("next") == 3)  # the put after the last row's yield
        emu.restart_plugin()  # eKuiper's update: the start is replayed, the source resumes
        emu.stop(src)
        src = emu.start_source("numbered", extra={"limit": 5})
        assert [r["n"] for r in src.rows(2)] == [3, 4]
    assert not db.exists()


def test_dev_resumes_from_a_state_folder(tmp_path):
    state = tmp_path / "st"
    runs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "ekdsl", "dev", str(STATEFUL), "--state", str(state), "source",
                               "numbered", "-n", "3", "--conf", "period=0.01"], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        runs.append([line for line in proc.stdout.splitlines() if '"n":' in line])
    assert [line.split('"n": ')[1].split(",")[0] for line in runs[0] + runs[1]][:3] == ["0", "1", "2"]
    assert int(runs[1][0].split('"n": ')[1].split(",")[0]) >= 3
