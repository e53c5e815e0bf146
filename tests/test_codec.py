"""JSON on the wire: values made JSON-safe, and decoding that is the same with orjson and without."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import struct
from typing import Any, Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ekdsl import codec
from ekdsl.codec import json_backend, json_safe, loads, select_json, stdlib_loads
from ekdsl.errors import UsageError


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class P:
    x: int
    when: dt.date


def test_json_safe():
    assert json_safe({"d": decimal.Decimal("1.5"), "i": decimal.Decimal("2"), "b": b"\x00\x01", "t": (1, 2),
                      "s": {3}, "e": Colour.RED, "p": P(1, dt.date(2024, 1, 2)), "n": float("nan"),
                      "tz": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)}) == {
        "d": 1.5, "i": 2, "b": "AAE=", "t": [1, 2], "s": [3], "e": "red", "p": {"x": 1, "when": "2024-01-02"},
        "n": None, "tz": "2024-01-01T00:00:00+00:00"}
    np = pytest.importorskip("numpy")
    assert json_safe({"a": np.arange(3), "f": np.float32(1.5), "i": np.int64(7)}) == {"a": [0, 1, 2], "f": 1.5,
                                                                                       "i": 7}
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        json_safe(object())


# ---- choosing the decoder


@pytest.fixture
def restore_json() -> Iterator[None]:
    before = json_backend()
    yield
    select_json(before)


def test_select_json(restore_json, monkeypatch):
    assert select_json("stdlib") == "stdlib" == json_backend()
    assert loads(b'{"a":[1,2.5]}') == {"a": [1, 2.5]}
    monkeypatch.setenv(codec.JSON_ENV, "simdjson")
    with pytest.raises(UsageError, match=r"EKDSL_JSON='simdjson' is not a JSON codec: use auto, orjson or stdlib"):
        select_json()
    assert json_backend() == "stdlib"  # unchanged by a refused choice
    monkeypatch.setenv(codec.JSON_ENV, " STDLIB ")
    assert select_json() == "stdlib"


def test_orjson_required_but_missing(restore_json, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_orjson(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "orjson":
            raise ImportError("No module named 'orjson'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_orjson)
    assert select_json("auto") == "stdlib"
    with pytest.raises(UsageError, match=r"orjson is not installed for .*pip install 'ekdsl\[fast\]'"):
        select_json("orjson")


# ---- the same results with orjson as without


@pytest.fixture(scope="module")
def with_orjson() -> Iterator[None]:
    pytest.importorskip("orjson")
    before = json_backend()
    select_json("orjson")
    yield
    select_json(before)


def _outcome(decode: Any, data: bytes) -> Any:
    try:
        return ("value", _typed(decode(data)))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return ("error", type(exc).__name__)


def _typed(value: Any) -> Any:
    """A structure that tells 1 from 1.0 from True and -0.0 from 0.0, and compares NaN equal to itself."""
    if isinstance(value, float):
        return ("float", struct.pack(">d", value) if not math.isnan(value) else "nan")
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, dict):
        return [(k, _typed(v)) for k, v in value.items()]
    return (type(value).__name__, value)


def _go_range(value: Any) -> Any:
    """What orjson gives for stdlib's value: integers beyond 64 bits become floats (Go's float64)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return float(value)
    if isinstance(value, list):
        return [_go_range(v) for v in value]
    if isinstance(value, dict):
        return {k: _go_range(v) for k, v in value.items()}
    return value


def _expected(data: bytes) -> Any:
    """The stdlib's outcome; for a document orjson reads, with its 64-bit rule (the others go to the stdlib)."""
    import orjson

    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return _outcome(stdlib_loads, data)
    return _outcome(lambda d: _go_range(stdlib_loads(d)), data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=6), children, max_size=5),
    max_leaves=30,
)
number_literals = st.from_regex(r"-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)


@settings(max_examples=300)
@given(json_values, st.booleans())
def test_documents_decode_alike(with_orjson, value, ascii_only):
    try:
        data = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate written raw: not UTF-8
        data = json.dumps(value).encode("utf-8")
    assert _outcome(loads, data) == _expected(data)


@settings(max_examples=500)
@given(number_literals)
@example("1e999")
@example("-1e999")
@example("2.2250738585072011e-308")
@example("9007199254740993")
@example("0.30000000000000004")
@example("18446744073709551616")
@example("-9223372036854775809")
@example("100000000000000000000")
def test_numbers_decode_alike(with_orjson, literal):
    for doc in (literal, f"[{literal}]", f'{{"v":{literal}}}'):
        data = doc.encode()
        assert _outcome(loads, data) == _expected(data), doc


@given(st.binary(max_size=200))
@example(b"\xef\xbb\xbf{}")
@example(b"NaN")
@example(b'"\\ud800"')
@example(b"[" * 5000 + b"]" * 5000)
@example(b" [1] ")
@example(b"")
def test_any_bytes_decode_alike(with_orjson, data):
    assert _outcome(loads, data) == _expected(data)


def test_orjson_is_used(with_orjson):
    assert json_backend() == "orjson"
    assert loads(b"[18446744073709551616]") == [1.8446744073709552e19]  # only orjson gives a float here


# ---- encoding: the same JSON with orjson as without


@settings(max_examples=300)
@given(json_values)
def test_plain_values_encode_alike(with_orjson, value):
    try:
        want = _outcome(stdlib_loads, codec.stdlib_dumps(value))
    except UnicodeEncodeError:  # a lone surrogate: both refuse it
        with pytest.raises(UnicodeEncodeError):
            codec.dumps(value)
        return
    assert _outcome(stdlib_loads, codec.dumps(value)) == want


class Level(enum.IntEnum):
    LOW = 1


class Label(str):
    pass


class Ratio(float):
    pass


ODD_VALUES = [
    {"naive": dt.datetime(2024, 1, 2, 3, 4, 5), "aware": dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc),
     "date": dt.date(2024, 1, 2), "time": dt.time(1, 2, 3)},
    {"p": P(1, dt.date(2024, 1, 2)), "nested": [P(2, dt.date(2024, 2, 3))]},
    {"b": b"\x00\x01", "ba": bytearray(b"\xff"), "d": decimal.Decimal("2.50"), "dn": decimal.Decimal("NaN"),
     "s": {3}, "fs": frozenset([4]), "t": (1, (2, 3))},
    {"e": Colour.RED, "ie": Level.LOW, "label": Label("x"), "ratio": Ratio(0.5)},
    {1: "int key", None: "none key", False: "bool key", 2.5: "float key"},
    {"nan": math.nan, "inf": [math.inf, -math.inf], "neg0": -0.0, "tiny": 1e-7, "huge": 1e300},
    {"big": 2**70, "neg": -(2**64)},
    "text \u2028 \x00 \"quoted\" é 😀",
]


@pytest.mark.parametrize("value", ODD_VALUES, ids=range(len(ODD_VALUES)))
def test_odd_values_encode_alike(with_orjson, value):
    assert _typed(stdlib_loads(codec.dumps(value))) == _typed(stdlib_loads(codec.stdlib_dumps(value)))


def test_deep_and_unserializable_values(with_orjson):
    deep: Any = 1
    for _ in range(300):  # deeper than orjson writes
        deep = [deep]
    assert codec.dumps(deep) == codec.stdlib_dumps(deep)
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        codec.dumps({"x": object()})


# ---- common types converted; the rest located


def test_common_types_are_converted(with_orjson):
    import pathlib
    import uuid

    value = {"u": uuid.UUID(int=1), "p": pathlib.PurePosixPath("/a/b"), "w": pathlib.PureWindowsPath("c:/x"),
             "t": dt.timedelta(minutes=1, microseconds=500), "e": Colour.RED}
    want = {"u": "00000000-0000-0000-0000-000000000001", "p": "/a/b", "w": "c:\\x", "t": 60.0005, "e": "red"}
    assert json.loads(codec.dumps(value)) == want == json.loads(codec.stdlib_dumps(value))
    assert codec.find_unencodable(value) is None


class Opaque:
    pass


def test_find_unencodable_names_path_and_type():
    cycle: list = []
    cycle.append(cycle)
    cases = [
        ({"a": [0, 1, {"b": Opaque()}]}, ('row["a"][2]["b"]', "a tests.test_codec.Opaque")),
        ({"a": object()}, ('row["a"]', "an object")),
        ({"s": ["ok", "x\ud800"]}, ('row["s"][1]', "a str with a lone surrogate (\\ud800 at index 1)")),
        ({"\udc00": 1}, ('row["\\udc00"]', "a key with a lone surrogate (\\udc00 at index 0)")),
        ({"c": cycle}, ('row["c"][0]', "a list that contains itself (a reference cycle)")),
        ({"n": 10 ** 5000}, ('row["n"]', "an int of about 5000 digits, too long to write")),
        ({"p": P(1, Opaque())}, ('row["p"]["when"]', "a tests.test_codec.Opaque")),  # inside a dataclass
    ]
    for value, found in cases:
        assert codec.find_unencodable(value) == found
        with pytest.raises((TypeError, ValueError, RecursionError)):
            codec.dumps(value)
    deep: Any = {}
    for _ in range(2000):
        deep = {"d": deep}
    assert codec.find_unencodable(deep)[1] == "a value nested deeper than 400 levels"


@given(st.recursive(
    st.none() | st.integers() | st.floats() | st.text() | st.sampled_from(["x\ud800", Opaque()]),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=4), c, max_size=4), max_leaves=12))
def test_find_unencodable_agrees_with_dumps(value):
    try:
        codec.dumps(value)
        ok = True
    except (TypeError, ValueError, RecursionError):
        ok = False
    assert (codec.find_unencodable(value) is None) == ok
