from __future__ import annotations

import base64
import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, Dict, List, Literal, Mapping, Optional, TypedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ekdsl import ConfigError
from ekdsl.introspect import Unsupported, type_info
from ekdsl.types import coerce, control_of, ekuiper_type, plain, values_of


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Box(TypedDict):
    width: int
    label: str


@dataclass
class Point:
    x: float
    y: float = 0.0


MAPPING = [
    (str, "string", "text", None),
    (int, "int", "text", None),
    (float, "float", "text", None),
    (bool, "bool", "radio", None),
    (bytes, "bytea", "text", None),
    (dt.datetime, "datetime", "text", None),
    (Any, "any", "text", None),
    (List[str], "list_string", "list", None),
    (list[int], "list_int", "list", None),
    (list[float], "array", "list", None),
    (list, "array", "list", None),
    (List[Point], "list_object", "list", None),
    (dict, "object", "textarea", None),
    (Dict[str, int], "object", "textarea", None),
    (Mapping[str, Any], "object", "textarea", None),
    (Box, "object", "list", None),
    (Point, "object", "list", None),
    (Literal["a", "b"], "string", "select", ["a", "b"]),
    (Literal[1, 2], "int", "select", [1, 2]),
    (Literal[0.5, 1], "float", "select", [0.5, 1]),
    (Color, "string", "select", ["red", "blue"]),
    (Level, "int", "select", [1, 2]),
    (Optional[int], "int", "text", None),
]


@pytest.mark.parametrize(("ann", "etype", "control", "values"), MAPPING)
def test_mapping(ann, etype, control, values):
    t = type_info(ann)
    assert ekuiper_type(t) == etype
    assert control_of(t) == control
    assert control_of(t, "argument") == "field"
    assert values_of(t) == values


def test_optional_flag():
    assert type_info(Optional[int]).optional
    assert not type_info(int).optional


@pytest.mark.parametrize("ann", [complex, set, "int | str", dt.date])
def test_unsupported(ann):
    if ann == "int | str":
        from typing import Union

        ann = Union[int, str]
    with pytest.raises(Unsupported) as info:
        type_info(ann)
    assert "not supported" in str(info.value)


@pytest.mark.parametrize(
    ("ann", "value", "expected"),
    [
        (int, 3, 3),
        (int, "42", 42),
        (int, 5.0, 5),
        (float, 1, 1.0),
        (float, "2.5", 2.5),
        (bool, "true", True),
        (bool, 0, False),
        (str, "x", "x"),
        (bytes, "hi", b"hi"),
        (Optional[int], None, None),
        (List[int], ["1", 2], [1, 2]),
        (Dict[str, float], {"a": 1}, {"a": 1.0}),
        (Literal["a", "b"], "b", "b"),
        (Literal[1, 2], "2", 2),
        (Color, "blue", Color.BLUE),
        (Color, "RED", Color.RED),
        (Level, 2, Level.HIGH),
        (Box, {"WIDTH": 3, "label": "x"}, {"width": 3, "label": "x"}),
        (Point, {"x": 1}, Point(1.0, 0.0)),
        (dt.datetime, "2024-01-31T12:00:00Z", dt.datetime(2024, 1, 31, 12, tzinfo=dt.timezone.utc)),
        (dt.datetime, 0, dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)),
        (Any, {"k": [1]}, {"k": [1]}),
    ],
)
def test_coerce_ok(ann, value, expected):
    assert coerce(value, type_info(ann), symbol="s", name="p") == expected


@pytest.mark.parametrize(
    ("ann", "value", "path", "expected"),
    [
        (int, "ten", "p", "int"),
        (int, True, "p", "int"),
        (int, 1.5, "p", "int"),
        (str, 5, "p", "str"),
        (bool, "maybe", "p", "bool"),
        (int, None, "p", "int"),
        (List[int], [1, "x"], "p[1]", "int"),
        (Literal["a", "b"], "c", "p", "one of 'a', 'b'"),
        (Color, "green", "p", "Color (one of 'red', 'blue')"),
        (Box, {"width": 1}, "p.label", "str"),
        (Box, {"width": 1, "label": "x", "depth": 2}, "p.depth", "object Box"),
        (dt.datetime, "yesterday", "p", "datetime"),
    ],
)
def test_coerce_rejects(ann, value, path, expected):
    with pytest.raises(ConfigError) as info:
        coerce(value, type_info(ann), symbol="src", name="p")
    err = info.value
    assert err.symbol == "src"
    assert err.name == path
    assert err.expected.startswith(expected)
    assert f"property '{path}' expects" in str(err)


def test_bytes_base64_on_function_wire():
    """Go writes []byte as padded standard base64; any other string is a SQL string, taken as its text."""
    t = type_info(bytes)
    assert coerce(base64.b64encode(b"\x00\xff").decode(), t, b64=True) == b"\x00\xff"
    assert coerce("not base64!", t, b64=True) == b"not base64!"
    assert coerce("hello world", t, b64=True) == b"hello world"
    assert coerce("AP8", t, b64=True) == b"AP8"  # unpadded: never written by Go
    assert coerce("AP9=", t, b64=True) == b"AP9="  # not canonical (Go writes AP8=)
    assert coerce("AQI=", t) == b"AQI="  # config values are text


@given(st.binary(max_size=64))
def test_bytes_from_go_base64_round_trip(data):
    assert coerce(base64.b64encode(data).decode(), type_info(bytes), b64=True) == data


def test_plain():
    assert plain(Color.RED) == "red"
    assert plain(Point(1.0)) == {"x": 1.0, "y": 0.0}
    assert plain((1, b"a")) == [1, "a"]
    assert plain(dt.datetime(2024, 1, 1)) == "2024-01-01T00:00:00"


@given(st.integers())
def test_int_strings_round_trip(n):
    assert coerce(str(n), type_info(int)) == n


@given(st.floats(allow_nan=False))
def test_float_strings_round_trip(x):
    assert coerce(repr(x), type_info(float)) == x


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.lists(st.integers())))
def test_coerce_raises_only_config_error(value):
    for ann in (int, float, bool, str, bytes, List[int], Box, Color, dt.datetime):
        try:
            coerce(value, type_info(ann))
        except ConfigError:
            pass
