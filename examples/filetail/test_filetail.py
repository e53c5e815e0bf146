"""The file-tailing source: in process for the logic, under the emulator with its yaml and confKeys."""

import time
from pathlib import Path

PLUGIN = Path(__file__).with_name("filetail.py")


def test_lines_become_rows(ekdsl_symbols, tmp_path):
    data = tmp_path / "m.jsonl"
    data.write_text('{"kwh": 1.5}\nnot json\n{"kwh": 2.5}\n{"kwh": 3')  # the last line is not finished
    src = ekdsl_symbols(PLUGIN).source("jsonl_tail", {"folder": str(tmp_path), "period": 0.01,
                                                      "fromStart": True}, datasource="m.jsonl")
    assert src.recv() == ({"kwh": 1.5}, {"file": str(data), "line": 1})
    assert src.recv()[0] == {"kwh": 2.5}  # line 2 is skipped with a warning
    with data.open("a") as fh:
        fh.write('.5}\n')
    assert src.recv() == ({"kwh": 3.5}, {"file": str(data), "line": 4})


def test_conf_keys_under_the_emulator(ekuiper, tmp_path):
    (tmp_path / "m.jsonl").write_text('{"n": 1}\n{"n": 2}\n')
    emu = ekuiper(PLUGIN)
    # The yaml's "replay" section sets fromStart; EXTRA overrides the folder as a stream option would.
    src = emu.start_source("jsonl_tail", conf_key="replay", datasource="m.jsonl", extra={"folder": str(tmp_path)})
    assert src.rows(2) == [{"n": 1}, {"n": 2}]
    emu.stop(src)
    assert emu.findings == []


def test_a_restart_goes_on_after_the_last_line(ekdsl_symbols, tmp_path):
    """The position is kept in ctx.state: a restarted rule emits the next line, not the first nor the last again."""
    data = tmp_path / "m.jsonl"
    data.write_text('{"n": 1}\n{"n": 2}\n')
    symbols = ekdsl_symbols(PLUGIN)
    conf = {"folder": str(tmp_path), "period": 0.01, "fromStart": True}
    src = symbols.source("jsonl_tail", conf, datasource="m.jsonl")
    assert src.rows(2) == [{"n": 1}, {"n": 2}]
    src = symbols.restart(src)
    with data.open("a") as fh:
        fh.write('{"n": 3}\n')
    assert src.recv() == ({"n": 3}, {"file": str(data), "line": 3})
    assert src.state.get("position")["line"] == 3


def test_the_plugin_killed_and_updated_resumes(ekuiper, tmp_path):
    """Under the emulator: the plugin SIGKILLed and started again with its start replayed, as eKuiper's update
    does; the rows go on from the kept position."""
    data = tmp_path / "m.jsonl"
    data.write_text("".join(f'{{"n": {i}}}\n' for i in range(5)))
    emu = ekuiper(PLUGIN)
    src = emu.start_source("jsonl_tail", conf_key="replay", datasource="m.jsonl",
                           extra={"folder": str(tmp_path), "period": 0.01})
    assert [r["n"] for r in src.rows(5)] == [0, 1, 2, 3, 4]
    deadline = time.monotonic() + 10  # the position after the last row is saved just after it is sent
    while emu.state(src).get("position", {}).get("line") != 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    emu.restart_plugin()
    with data.open("a") as fh:
        fh.write('{"n": 5}\n{"n": 6}\n')
    assert [r["n"] for r in src.rows(2)] == [5, 6]


def test_a_replaced_file_is_read_from_its_start(ekdsl_symbols, tmp_path):
    data = tmp_path / "m.jsonl"
    data.write_text('{"n": 1}\n')
    src = ekdsl_symbols(PLUGIN).source("jsonl_tail", {"folder": str(tmp_path), "period": 0.01, "fromStart": True},
                                       datasource="m.jsonl")
    assert src.rows(1) == [{"n": 1}]
    (tmp_path / "new.jsonl").write_text('{"n": 10}\n{"n": 11}\n')
    (tmp_path / "new.jsonl").replace(data)  # log rotation: another file under the same name
    assert src.rows(2) == [{"n": 10}, {"n": 11}]
