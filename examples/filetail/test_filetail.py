"""The file-tailing source: in process for the logic, under the emulator with its yaml and confKeys."""

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
