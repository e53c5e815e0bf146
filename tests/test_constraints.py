"""Constraints and definitions: value constraints (Param keywords, annotated-types markers), sources that return
instead of yield, unannotated parameters, and secret properties."""

from __future__ import annotations

import datetime as dt
import io
import logging
import subprocess
import sys
import textwrap
from typing import Annotated, Any, Dict, Iterator, List, Optional, TypedDict

import annotated_types as at
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ekdsl import ConfigError, Context, DefinitionError, Param, Plugin
from ekdsl.constraints import Constraints
from ekdsl.errors import ProtocolError
from ekdsl.host import Emulator, InProcess
from ekdsl.metadata import source_json, source_yaml
from ekdsl.secrets import MASK, RedactFilter, register

from .conftest import ROOT
from .plugins import limits

# ---- constraints


@pytest.mark.parametrize(("config", "message"), [
    ({"rate": 0}, "ticks: property 'rate' expects float > 0 and <= 1000, got 0"),
    ({"rate": "2000"}, "ticks: property 'rate' expects float > 0 and <= 1000, got '2000'"),
    ({"tag": "Bad tag"}, "ticks: property 'tag' expects str of length <= 16, matching '^[a-z][a-z0-9_]*$', "
                         "got 'Bad tag'"),
    ({"tag": "a" * 17}, "ticks: property 'tag' expects str of length <= 16, matching '^[a-z][a-z0-9_]*$', got "
                        f"'{'a' * 17}' (its length is 17)"),
    ({"burst": 0}, "ticks: property 'burst' expects int >= 1 and < 100, a multiple of 5, got 0"),
    ({"burst": 7}, "ticks: property 'burst' expects int >= 1 and < 100, a multiple of 5, got 7"),
    ({"sensors": []}, "ticks: property 'sensors' expects list of str of length >= 1 of length 1 to 3, got [] "
                      "(its length is 0)"),
    ({"sensors": ["a", ""]}, "ticks: property 'sensors[1]' expects str of length >= 1, got '' (its length is 0)"),
])
def test_a_start_breaking_a_constraint_is_refused_with_what_it_expects(config, message):
    with InProcess(limits.plugin) as symbols:
        with pytest.raises(ConfigError) as info:
            symbols.source("ticks", config)
        assert str(info.value) == message
        assert symbols.source("ticks", {"rate": 1000, "tag": "a_1", "burst": 95, "sensors": ["x"] * 3}).rows(1) == [
            {"rate": 1000.0, "tag": "a_1", "burst": 95, "sensors": ["x", "x", "x"]}]


def test_a_call_breaking_a_constraint_fails_with_what_it_expects():
    with InProcess(limits.plugin) as symbols:
        fn = symbols.function("clamp")
        assert fn.exec(5, -1) == (False, "clamp: argument 'low' expects float >= 0, got -1")
        assert fn.exec(5, 0, 1e7) == (False, "clamp: argument 'high' expects float < 1000000.0, got 10000000")
        assert fn.exec(500, 0) == (True, 100.0)
        snk = symbols.sink("shout", {"requireAck": True, "level": "WARN"})
        assert snk.send([{"a": 1}]) is None
        with pytest.raises(ConfigError, match=r"shout: property 'level' expects str for which str.isupper is true, "
                                              r"got 'warn'"):
            symbols.sink("shout", {"level": "warn"})


def test_the_plugin_process_refuses_the_start_as_eKuiper_would_show_it(tmp_path):
    emu = Emulator(limits.__file__, socket_dir=str(tmp_path))
    try:
        emu.start()
        with pytest.raises(Exception, match=r"ticks: property 'rate' expects float > 0 and <= 1000, got 0"):
            emu.start_source("ticks", extra={"rate": 0})
        assert emu.function("clamp").exec(1, -5) == (False, "clamp: argument 'low' expects float >= 0, got -5")
    finally:
        emu.close()


def test_a_sources_datasource_is_checked_like_a_property():
    plugin = Plugin("dsc")

    @plugin.source
    def api(datasource: Annotated[str, Param(pattern=r"^/api/")] = "/api/x") -> Iterator[dict]:
        yield {"ds": datasource}

    with InProcess(plugin) as symbols:
        assert symbols.source("api", datasource="/api/v1").rows(1) == [{"ds": "/api/v1"}]
        with pytest.raises(ConfigError, match=r"api: property 'datasource' expects str matching '\^/api/', "
                                              r"got '../../etc/passwd'"):
            symbols.source("api", datasource="../../etc/passwd")


@pytest.mark.parametrize("annotation", [Annotated[str, Param(max_length=3)], Annotated[bytes, at.MaxLen(3)],
                                        Annotated[List[dict], Param(max_length=1)],
                                        List[Annotated[dict, Param(min_length=1)]]])
def test_constraints_on_a_sinks_data_are_a_definition_error(annotation):
    plugin = Plugin("datac")

    def out(data: Any) -> None:
        pass

    out.__annotations__["data"] = annotation
    plugin.sink(out)
    with pytest.raises(DefinitionError, match="constraints on a sink's data are not checked"):
        plugin.model()


def _positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and x > 0


def test_constraints_on_any_values_are_checked():
    """A Predicate on an Any argument or on the Any items of a list or dict, at each call and at start."""
    plugin = Plugin("anyc")

    @plugin.function
    def anyp(x: Annotated[Any, at.Predicate(_positive)]) -> Any:
        return x

    @plugin.function
    def inlist(xs: list[Annotated[Any, at.Predicate(_positive)]],
               d: dict[str, Annotated[Any, at.Predicate(_positive)]]) -> int:
        return len(xs) + len(d)

    @plugin.sink
    def out(data: dict, xs: list[Annotated[Any, at.Predicate(_positive)]] = [1]) -> None:  # noqa: B006
        pass

    with InProcess(plugin) as symbols:
        assert symbols.function("anyp").exec(1) == (True, 1)
        assert symbols.function("anyp").exec(-1) == (False, "anyp: argument 'x' expects any for which _positive is "
                                                           "true, got -1")
        assert symbols.function("inlist").exec([1, 2], {"a": 1}) == (True, 3)
        ok, text = symbols.function("inlist").exec([1, -2], {"a": 1})
        assert not ok and "argument 'xs[1]'" in text
        ok, text = symbols.function("inlist").exec([1], {"a": 0})
        assert not ok and "argument 'd.a'" in text
        with pytest.raises(ConfigError, match=r"property 'xs\[0\]'"):
            symbols.sink("out", {"xs": [-1]})


@pytest.mark.parametrize(("annotation", "message"), [
    (Annotated[str, Param(gt=0)], "parameter 'x': gt applies to numbers (gt, ge, lt and le to datetimes too), not a "
                                  "str: remove it or change the type"),
    (Annotated[int, Param(pattern="^a")], "parameter 'x': pattern applies to str, not a int"),
    (Annotated[float, Param(max_length=3)], "parameter 'x': max_length applies to str, bytes, lists and dicts, not "
                                            "a float"),
    (Annotated[str, Param(pattern="(")], "parameter 'x': pattern '(' is not a regular expression Python reads"),
    (Annotated[int, Param(gt="0")], "parameter 'x': gt='0' cannot bound a int: give a number"),
    (Annotated[int, Param(gt=0), at.Gt(1)], "parameter 'x': gt is given twice (0 and 1 in Gt(...)): keep one"),
    (Annotated[str, at.Timezone(None)], "parameter 'x': annotated_types.Timezone is not a constraint ekdsl checks"),
    (Annotated[int, Param(min_length=1)], "parameter 'x': min_length applies to str, bytes, lists and dicts, not a "
                                          "int"),
    (Annotated[str, Param(min_length=-1)], "parameter 'x': min_length=-1 is not a length: give an int >= 0"),
    (Annotated[int, Param(multiple_of=0)], "parameter 'x': multiple_of=0 is not a step: give a number > 0"),
    (Annotated[float, at.MultipleOf(-0.5)], "parameter 'x': multiple_of=-0.5 is not a step: give a number > 0"),
    (Annotated[dt.datetime, Param(gt=dt.datetime(2020, 1, 1))],
     "parameter 'x': gt=datetime.datetime(2020, 1, 1, 0, 0) has no time zone, and the times eKuiper sends have one: "
     "give it tzinfo=datetime.timezone.utc"),
])
def test_a_constraint_that_cannot_apply_is_a_definition_error(annotation, message):
    plugin = Plugin("unfit")

    def sink_x(data: dict, x: Any = None) -> None:
        pass

    sink_x.__annotations__["x"] = Optional[annotation]
    plugin.sink(sink_x)
    with pytest.raises(DefinitionError) as info:
        plugin.model()
    assert message in str(info.value)


def test_defaults_and_conf_keys_must_fit_the_constraints():
    plugin = Plugin("fits")

    @plugin.source
    def src(tag: Annotated[str, at.MinLen(2)] = "") -> Iterator[dict]:
        yield {}

    with pytest.raises(DefinitionError, match="parameter 'tag' has default '', which is not str of length >= 2"):
        plugin.model()

    plugin = Plugin("fits2")

    @plugin.source(conf_keys={"fast": {"rate": 0.0}})
    def src2(rate: Annotated[float, at.Gt(0)] = 1.0) -> Iterator[dict]:
        yield {}

    with pytest.raises(DefinitionError, match="confKey 'fast' sets 'rate' to 0.0, which is not float > 0"):
        plugin.model()


def test_constraints_leave_metadata_types_alone():
    model = limits.plugin.model()
    props = {p["name"]: p for p in source_json(model, model.sources[0])["properties"]["default"]}
    assert (props["rate"]["type"], props["burst"]["type"], props["sensors"]["type"]) == ("float", "int", "list_string")


@given(st.integers(-50, 50), st.integers(-50, 50), st.sampled_from(["gt", "ge", "lt", "le"]))
def test_bounds_agree_with_python_comparisons(value, bound, key):
    ok = {"gt": value > bound, "ge": value >= bound, "lt": value < bound, "le": value <= bound}[key]
    assert (Constraints(**{key: bound}).violation(value) is None) == ok


@given(st.integers(1, 40), st.integers(-200, 200))
def test_multiple_of_agrees_for_ints_and_their_tenths(step, n):
    assert (Constraints(multiple_of=step).violation(n) is None) == (n % step == 0)
    assert Constraints(multiple_of=step / 10).violation(n * step / 10) is None


# ---- sources that return


def test_a_source_returning_a_dict_is_refused_with_the_fix(caplog):
    plugin = Plugin("snap")

    @plugin.source
    def snapshot() -> Iterator[dict]:
        return {"a": 1, "b": 2}  # type: ignore[return-value]

    @plugin.source
    def listed() -> Iterator[dict]:
        return iter([{"a": 1}])

    expected = ("source 'snapshot' returned a dict, not an iterator of rows: make it a generator ('yield' each row) "
                "or return an iterator ('return iter(rows)')")
    with InProcess(plugin) as symbols:
        with pytest.raises(ProtocolError) as info:
            symbols.source("snapshot").recv(timeout=5)
        assert "source \\'snapshot\\' returned a dict, not an iterator of rows" in str(info.value)
        assert symbols.source("listed").rows(1) == [{"a": 1}]
    assert expected in caplog.text


# ---- unannotated parameters


def test_export_says_which_parameters_have_no_annotation(tmp_path):
    module = tmp_path / "loose.py"
    module.write_text(textwrap.dedent("""
        from typing import Iterator
        from ekdsl import Plugin

        plugin = Plugin("loose")

        @plugin.source
        def src(ctx, datasource="", limit=None, period=1.0, fmt=None) -> Iterator[dict]:
            yield {}

        @plugin.function
        def add(a, b: int) -> int:
            return a + b
    """))
    proc = subprocess.run([sys.executable, "-m", "ekdsl", "export", str(module), "-o", str(tmp_path / "dist")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stdout.splitlines() if line.startswith("note: ")]
    assert notes == [
        "note: @source 'src' (loose.py:7) property 'limit' has no annotation, so eKuiper's metadata says 'any' and "
        "the value reaches your code as eKuiper sends it, unchecked: annotate it ('limit: str', 'float', ...; 'Any' "
        "to keep it so)",
        "note: @source 'src' (loose.py:7) property 'fmt' has no annotation, so eKuiper's metadata says 'any' and "
        "the value reaches your code as eKuiper sends it, unchecked: annotate it ('fmt: str', 'float', ...; 'Any' "
        "to keep it so)",
        "note: @function 'add' (loose.py:11) argument 'a' has no annotation, so eKuiper's metadata says 'any' and "
        "the value reaches your code as eKuiper sends it, unchecked: annotate it ('a: str', 'float', ...; 'Any' to "
        "keep it so)",
    ]


# ---- secrets


def _vault() -> Plugin:
    plugin = Plugin("vault")

    @plugin.source
    def poll(ctx: Context, token: Annotated[str, Param(secret=True, min_length=8)],
             url: str = "http://127.0.0.1/") -> Iterator[dict]:
        ctx.logger.info("polling %s with token %s", url, token)
        yield {"ok": True}
        raise RuntimeError(f"401 for {url}?access_token={token}")

    @plugin.sink
    def push(data: dict, ctx: Context, api_key: Annotated[Optional[str], Param(secret=True)] = None) -> None:
        ctx.logger.warning("sending with %s", api_key)
        raise ValueError(f"refused key {api_key}")

    return plugin


SECRET = "s3cr3t-t0ken-4711"


def test_a_secret_is_never_shown_in_errors_acks_or_log_lines(caplog):
    caplog.set_level(logging.INFO)
    with InProcess(_vault()) as symbols:
        with pytest.raises(ConfigError) as info:
            symbols.source("poll", {"token": "short"})
        assert str(info.value) == ("poll: property 'token' expects str of length >= 8, got a value not shown "
                                   "(secret)")
        assert info.value.got is not None and "short" not in repr(info.value.got)
        with pytest.raises(ConfigError, match=r"expects str of length >= 8, got a value not shown \(secret\)$"):
            symbols.source("poll", {"token": 12345678})
        src = symbols.source("poll", {"token": SECRET})
        assert src.rows(1) == [{"ok": True}]
        with pytest.raises(ProtocolError) as failed:
            src.recv(timeout=5)
        assert "access_token=***" in str(failed.value) and SECRET not in str(failed.value)
        snk = symbols.sink("push", {"requireAck": True, "api_key": SECRET})
        ack = snk.send([{"a": 1}])
        assert ack == f"ValueError: refused key {MASK}"
    assert f"with token {MASK}" in caplog.text and f"sending with {MASK}" in caplog.text
    assert SECRET not in caplog.text


class _Auth(TypedDict):
    user: str
    password: Annotated[str, Param(secret=True)]


def test_secrets_inside_lists_and_objects_are_redacted(caplog):
    plugin = Plugin("nested")

    @plugin.sink
    def push(ctx: Context, data: dict, keys: Annotated[List[str], Param(secret=True)], auth: _Auth) -> None:
        ctx.logger.warning("sending with %s as %s", keys[0], auth["user"])
        raise ValueError(f"refused key {keys[1]} / {auth['password']}")

    with InProcess(plugin) as symbols:
        snk = symbols.sink("push", {"requireAck": True, "keys": ["alpha-secret-1", "beta-secret-2"],
                                    "auth": {"user": "operator", "password": "hunter22xx"}})
        assert snk.send([{"a": 1}]) == f"ValueError: refused key {MASK} / {MASK}"
    assert f"sending with {MASK} as operator" in caplog.text
    assert not any(s in caplog.text for s in ("alpha-secret-1", "beta-secret-2", "hunter22xx"))


def test_a_bad_log_call_is_reported_by_logging_not_raised_at_the_caller(capsys):
    """With a secret registered, the filter formats each record: a bad one is left to the handler's handleError."""
    register(["abcd-1234-xyz"])
    logger = logging.Logger("badlog")
    logger.addHandler(logging.StreamHandler(io.StringIO()))
    logger.addFilter(RedactFilter())
    logger.warning("count %d", "n/a")  # raised TypeError here
    assert "--- Logging error ---" in capsys.readouterr().err


def test_a_secret_stays_out_of_the_generated_files_and_a_default_is_refused():
    model = _vault().model()
    src = model.sources[0]
    assert "token" not in source_yaml(src)["default"]
    token = next(p for p in source_json(model, src)["properties"]["default"] if p["name"] == "token")
    assert token["default"] == "" and token["optional"] is False

    plugin = Plugin("leaky")

    @plugin.source
    def src2(token: Annotated[str, Param(secret=True)] = "abc123") -> Iterator[dict]:
        yield {}

    with pytest.raises(DefinitionError) as info:
        plugin.model()
    assert "parameter 'token' is secret but has a default" in str(info.value) and "abc123" not in str(info.value)

    plugin = Plugin("leaky2")

    @plugin.source(conf_keys={"prod": {"password": "hunter22"}})
    def src3(password: Annotated[str, Param(secret=True)] = "") -> Iterator[dict]:
        yield {}

    with pytest.raises(DefinitionError) as info:
        plugin.model()
    assert "confKey 'prod' sets the secret property 'password'" in str(info.value)
    assert "hunter22" not in str(info.value)


def test_a_missing_secret_says_how_to_keep_it_out_of_the_yaml():
    with InProcess(_vault()) as symbols, pytest.raises(ConfigError) as info:
        symbols.source("poll", {})
    assert "eKuiper's environment: POLL__DEFAULT__TOKEN=..." in str(info.value)


def test_dev_shows_no_secret_in_its_output_or_the_plugin_log(tmp_path):
    module = tmp_path / "vaultplug.py"
    module.write_text(textwrap.dedent('''
        from typing import Annotated, Optional
        from ekdsl import Context, Param, Plugin

        plugin = Plugin("vaultplug")

        @plugin.sink
        def push(data: dict, ctx: Context, api_key: Annotated[Optional[str], Param(secret=True)] = None) -> None:
            ctx.logger.warning("sending with %s", api_key)
            raise ValueError(f"refused key {api_key}")
    '''))
    proc = subprocess.run([sys.executable, "-m", "ekdsl", "dev", str(module), "-v", "--socket-dir", str(tmp_path),
                           "sink", "push", "--require-ack", "--conf", f"api_key={SECRET}"],
                          input='{"a": 1}\n', capture_output=True, text=True, cwd=ROOT, timeout=120)
    out = proc.stdout + proc.stderr
    assert f"sending with {MASK}" in out and f"refused key {MASK}" in out, out
    assert SECRET not in out


def test_the_secret_marker_reaches_every_type():
    plugin = Plugin("kinds")
    seen: Dict[str, Any] = {}

    @plugin.function
    def check(pin: Annotated[int, Param(secret=True, ge=1000)]) -> bool:
        seen["pin"] = pin
        return True

    with InProcess(plugin) as symbols:
        assert symbols.function("check").exec(12) == (False, "check: argument 'pin' expects int >= 1000, got a "
                                                             "value not shown (secret)")
        assert symbols.function("check").exec(4711) == (True, True)
