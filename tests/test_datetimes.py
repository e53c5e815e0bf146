"""Datetimes as Go writes them (``time.RFC3339Nano``: 1 to 9 fractional digits) parse on every Python."""

from __future__ import annotations

import datetime as dt
import glob
import re
import subprocess
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ekdsl import types as ektypes
from ekdsl.model import TypeInfo
from ekdsl.types import coerce, parse_datetime

from .conftest import ROOT

DATETIME = TypeInfo("datetime")
zones = st.one_of(st.just(dt.timezone.utc),
                  st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m))))


def go_rfc3339nano(when: dt.datetime, nanos: int) -> str:
    """What Go's ``Format(time.RFC3339Nano)`` writes: trailing zeros of the fraction dropped, Z for UTC."""
    fraction = f"{nanos:09d}".rstrip("0")
    offset = when.utcoffset() or dt.timedelta(0)
    if offset == dt.timedelta(0):
        zone = "Z"
    else:
        minutes = int(offset.total_seconds() // 60)
        zone = f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    stamp = f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
    return stamp + (f".{fraction}" if fraction else "") + zone


class StrictDatetime(dt.datetime):
    """``fromisoformat`` as Python 3.9 and 3.10 have it: a fraction of exactly 3 or 6 digits, ±hh:mm zones."""

    @classmethod
    def fromisoformat(cls, text: str) -> dt.datetime:
        m = re.fullmatch(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:\.(\d{3}|\d{6}))?([+-]\d\d:\d\d)?", text)
        if m is None:
            raise ValueError(f"Invalid isoformat string: {text!r}")
        return dt.datetime.fromisoformat(text)


@given(st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=zones),
       st.integers(0, 999_999_999))
def test_go_timestamps_parse_to_the_microsecond(when, nanos):
    when = when.replace(microsecond=0)
    text = go_rfc3339nano(when, nanos)
    expected = when + dt.timedelta(microseconds=nanos // 1000)
    parsed = coerce(text, DATETIME)
    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()


@given(st.integers(1, 9).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, 10 ** n - 1))))
def test_any_fraction_length_parses_without_python_311(case):
    digits, value = case
    text = f"2024-01-31T12:00:00.{value:0{digits}d}+08:00"
    original = ektypes._dt
    ektypes._dt = SimpleNamespace(**{**vars(dt), "datetime": StrictDatetime})  # type: ignore[assignment]
    try:
        parsed = parse_datetime(text)
    finally:
        ektypes._dt = original
    assert parsed is not None
    assert parsed.microsecond == int(f"{value:0{digits}d}"[:6].ljust(6, "0"))


def test_zone_without_colon_and_bad_texts():
    assert parse_datetime("2024-01-31T12:00:00.5-0530") == dt.datetime(
        2024, 1, 31, 12, 0, 0, 500000, tzinfo=dt.timezone(-dt.timedelta(hours=5, minutes=30)))
    assert parse_datetime("soon") is None


OLD_PYTHONS = [p for v in ("3.9", "3.10") for p in sorted(glob.glob(f"/root/.pyenv/versions/{v}.*/bin/python"))[:1]]


@pytest.mark.skipif(not OLD_PYTHONS, reason="no Python 3.9/3.10 at /root/.pyenv")
@pytest.mark.parametrize("python", OLD_PYTHONS)
def test_real_old_python_parses_nanoseconds(python):
    code = ("from ekdsl.model import TypeInfo; from ekdsl.types import coerce; "
            "print(coerce('2024-01-31T12:00:00.123456789Z', TypeInfo('datetime')).isoformat())")
    proc = subprocess.run([python, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2024-01-31T12:00:00.123456+00:00"
