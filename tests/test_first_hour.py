"""The rough edges a plugin author meets in the first hour: definitions, the emulator, `dev` and the CLI."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
from typing import Any, Iterator, Optional

import pytest

from ekdsl import Context, DefinitionError, Plugin, function, sink, source
from ekdsl.cli import main as cli_main
from ekdsl.errors import ProtocolError
from ekdsl.host import Emulator, InProcess
from ekdsl.host.channels import HostError
from ekdsl.host.host import Host
from ekdsl.host.inprocess import MemorySocket
from ekdsl.transport import Closed

from .conftest import PYSAM, ROOT

# ---- definitions


def test_optional_argument_without_default_may_be_left_out():
    plugin = Plugin("opt")

    @plugin.function
    def scale(x: float, factor: Optional[float]) -> float:
        return x * (2.0 if factor is None else factor)

    with InProcess(plugin) as symbols:
        fn = symbols.function("scale")
        assert fn.validate({"Val": 3}) == (True, "")
        assert fn.exec(3) == (True, 6)
        assert fn.exec(3, 4) == (True, 12)
        assert fn.validate() == (False, "scale() takes 1 to 2 arguments, got 0")


def test_numeric_text_default_is_a_definition_error():
    plugin = Plugin("textdefault")

    @plugin.function
    def times(x: float, factor: float = "2") -> float:  # type: ignore[assignment]
        return x * factor

    with pytest.raises(DefinitionError, match=r"parameter 'factor' has default '2', a str where float is "
                                              r"declared .*'factor: float = 2\.0'"):
        plugin.model()


def test_function_errors_say_argument_at_validate_and_exec():
    plugin = Plugin("wording")

    @plugin.function
    def twice(x: int) -> int:
        return 2 * x

    with InProcess(plugin) as symbols:
        fn = symbols.function("twice")
        assert fn.validate({"Val": "a"}) == (False, "twice: argument 'x' expects int, got 'a'")
        assert fn.exec("a") == (False, "twice: argument 'x' expects int, got 'a'")


def test_stacked_decorators_are_a_definition_error_naming_both():
    with pytest.raises(DefinitionError, match=r"@function 'both' .* is decorated with both @sink and @function"):
        @function
        @sink
        def both(data: dict) -> None:
            pass

    plugin = Plugin("stack")
    with pytest.raises(DefinitionError, match="both @source and @sink"):
        @plugin.sink
        @plugin.source
        def gen(ctx: Context) -> Iterator[dict]:
            yield {}


def test_same_decorator_twice_is_still_one_symbol():
    @source
    def ticks() -> Iterator[dict]:
        yield {}

    plugin = Plugin("again").add(ticks)
    assert plugin.source(ticks) is ticks
    assert [s.name for s in plugin.model().symbols] == ["ticks"]


def test_sdk_style_class_gets_the_migration_hint():
    class Source:  # the official SDK's base class, as a migrating author still has it
        pass

    plugin = Plugin("sdkstyle")

    @plugin.source
    class Counter(Source):
        def open(self, ctx: Any) -> None:
            pass

    with pytest.raises(DefinitionError, match=r"is a class \(Counter\).*docs/migration\.md"):
        plugin.model()


# ---- require_ack


def _acked_plugin() -> Plugin:
    plugin = Plugin("acked")

    @plugin.sink(require_ack=True)
    def store(data: dict) -> None:
        pass

    return plugin


def test_require_ack_sink_warns_when_the_rule_does_not_set_it(caplog):
    plugin = _acked_plugin()
    assert plugin.model().sinks[0].require_ack is True
    with caplog.at_level(logging.WARNING), InProcess(plugin) as symbols:
        assert symbols.sink("store", {}).send([{"a": 1}]) is None
    assert "the rule does not set requireAck" in caplog.text


def test_require_ack_matches_any_case(caplog):
    with caplog.at_level(logging.WARNING), InProcess(_acked_plugin()) as symbols:
        snk = symbols.sink("store", {"requireack": True})
        assert snk.runner.require_ack
        assert snk.send([{"a": 1}]) is None
    assert "requireAck" not in caplog.text


def test_require_ack_is_for_sinks_only():
    plugin = Plugin("notsink")

    @plugin.function(require_ack=True)
    def f(x: int) -> int:
        return x

    with pytest.raises(DefinitionError, match="require_ack=True, which only sinks support"):
        plugin.model()


# ---- emulator and in-process runner


def test_emulator_function_twice_and_sink_values():
    with Emulator(str(PYSAM)) as emu:
        assert emu.function("revert") is emu.function("revert")
        assert emu.function("revert").exec("ab") == (True, "ba")
        snk = emu.start_sink("print", {"requireAck": True})
        assert snk.send([{"name": "x", "value": 1}]) is None
        assert snk.send(b'[{"name": "y"}]') is None
        emu.stop(snk)


def test_memory_socket_close_wakes_a_waiting_receive():
    sock = MemorySocket("memory://t")
    sock.recv_timeout = 60.0
    raised: list = []

    def receive() -> None:
        try:
            sock.recv()
        except Closed as exc:
            raised.append(exc)

    t = threading.Thread(target=receive)
    t.start()
    sock.close()
    t.join(10.0)
    assert not t.is_alive() and raised


def test_a_plugin_that_exits_at_once_is_reported_without_waiting_for_the_handshake(tmp_path):
    script = tmp_path / "main.py"
    script.write_text("import sys\nprint('cannot start: no config')\nsys.exit(3)\n")
    host = Host("quits", str(script), socket_dir=str(tmp_path), init_timeout=600)
    try:
        with pytest.raises(HostError, match="exited with code 3 before its handshake; its last output: cannot start"):
            host.start()
    finally:
        host.close()


# ---- dev and the command line


def test_dev_stops_waiting_when_the_source_failed():
    from ekdsl.host.dev import source_failed

    failed = ProtocolError("Invalid data format", b'"source \'bad\' failed: ValueError: boom"')
    assert source_failed(failed, "bad")
    assert not source_failed(failed, "other")
    assert not source_failed(ProtocolError("x", b'"source \'bad\' yielded a int: ..."'), "bad")
    assert not source_failed(ProtocolError("x", b"\xff"), "bad")


def test_dev_counts_rows_not_input_lines():
    from ekdsl.host.dev import count_rows

    assert count_rows([{"a": 1}, [{"a": 2}, {"a": 3}]]) == 3


def dev(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ekdsl", "dev", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def test_dev_tour_takes_a_datasource_and_a_failing_source_ends_it(make_module):
    path = make_module('''
        from typing import Iterator
        from ekdsl import Plugin

        plugin = Plugin("dstour")

        @plugin.source
        def topic(datasource: str = "") -> Iterator[dict]:
            for i in range(3):
                yield {"topic": datasource, "i": i}

        @plugin.source
        def broken() -> Iterator[dict]:
            raise ValueError("no device")
            yield {}
    ''')
    proc = dev(str(path), "--datasource", "plant/7")
    assert '"topic": "plant/7"' in proc.stdout, proc.stdout + proc.stderr
    assert "source broken: 0 rows in" in proc.stdout and "ValueError: no device" in proc.stdout
    assert "summary: 3 rows" in proc.stdout
    proc = dev(str(path), "source", "topic", "-n", "1", "--datasource", "a/b")
    assert '"topic": "a/b"' in proc.stdout, proc.stderr


def test_dev_with_a_missing_python_prints_one_line(capsys):
    assert cli_main(["dev", "--python", "/nonexistent/python", str(PYSAM)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ekdsl: error: cannot start the plugin: python '/nonexistent/python'")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_dev_mode_help_is_the_modes_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["dev", "source", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--rows" in out and "--conf-key" in out


def test_version(capsys):
    from ekdsl import __version__

    with pytest.raises(SystemExit):
        cli_main(["--version"])
    assert capsys.readouterr().out.strip() == f"ekdsl {__version__}"


def test_export_check_hint_quotes_the_whole_command(tmp_path, capsys):
    assert cli_main(["export", str(PYSAM), "-o", str(tmp_path), "--zip", "--check"]) == 1
    err = capsys.readouterr().err
    assert re.search(r"run 'python -m ekdsl export \S+ -o \S+ --zip'$", err.strip()), err


def test_dev_says_why_it_counts_each_error(make_module):
    """Every error the summary counts has its line: a source short of rows, a start the plugin refused."""
    path = make_module('''
        from typing import Iterator
        from ekdsl import Context, Plugin

        plugin = Plugin("whyerrors")

        @plugin.source
        def once() -> Iterator[dict]:
            yield {"n": 1}

        @plugin.source
        def slow(ctx: Context, period: float = 60.0) -> Iterator[dict]:
            while True:
                yield {"n": 2}
                ctx.sleep(period)

        @plugin.sink
        def needs(data: dict, path: str) -> None:
            pass

        @plugin.function
        def shout(word: str) -> str:
            return word.upper()
    ''')
    proc = dev(str(path), "source", "slow", "-n", "2", "--timeout", "1")
    assert proc.returncode == 1
    assert "  error: source slow sent 1 of the 2 rows asked for within 1 s: if it waits longer" in proc.stdout
    assert "source slow: 1 rows in" in proc.stdout and ", 1 errors" in proc.stdout
    path.write_text(path.read_text().replace("@plugin.source\ndef slow", "def slow"))  # the tour waits 10 s
    proc = dev(str(path))
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "  note: source once ended after 1 rows (its generator returned)" in out
    assert "  error: needs: property 'path' expects str, got None (the property is required" in out
    assert "sink needs: not started" in out
    assert 'function shout("ekdsl") = "EKDSL"' in out  # the tour went on after the refused start
    errors = int(re.search(r"summary: .*, (\d+) errors", out).group(1))  # type: ignore[union-attr]
    assert errors == out.count("  error: ") == 1


def test_a_refusal_starting_with_h_gets_the_kind_not_a_second_error(make_module):
    """eKuiper takes a reply starting with 'h' for a keepalive: such a text gets the symbol's kind before it."""
    path = make_module('''
        from typing import Iterator
        from ekdsl import Plugin

        plugin = Plugin("hpoll")

        @plugin.source
        def httppoll(period: float = 1.0) -> Iterator[dict]:
            yield {}
    ''')
    proc = dev(str(path), "source", "httppoll", "--conf", "period=fast")
    assert proc.stderr.strip() == "ekdsl: error: source httppoll: property 'period' expects float, got 'fast'"
    with Emulator(str(path)) as emu, pytest.raises(HostError) as info:
        emu.start_source("httppoll", extra={"period": "fast"})
    assert str(info.value) == "receive error: source httppoll: property 'period' expects float, got 'fast'"


def test_dev_on_a_folder_named_unlike_its_plugin_json_says_why(tmp_path):
    from ekdsl import load_target
    from ekdsl.package import export

    folder = tmp_path / "my-plugin"
    export(load_target(str(PYSAM)).model(), str(tmp_path / "dist"))
    (tmp_path / "dist" / "pysam").rename(folder)
    proc = dev(str(folder))
    assert proc.returncode == 1
    assert "no such file" not in proc.stderr
    assert "missing or invalid json file my-plugin.json" in proc.stderr
    assert "it holds pysam.json: eKuiper installs a plugin under its zip's (or folder's) name" in proc.stderr
    assert "name the package pysam.zip (or the folder pysam)" in proc.stderr
