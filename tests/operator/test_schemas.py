"""The call-history row schema: ``load_row``'s fast path gives exactly what ``load`` gives."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from integration.operator.schemas import CallRowSchema, parse_operator_datetime

SCHEMA = CallRowSchema(tz=ZoneInfo("Europe/Moscow"))

dates = st.one_of(
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    st.sampled_from(["2026-11-20 09:00:00", " 2026-11-20 09:00:00 ", "2026-11-20T09:00:00Z", "20.11.2026", ""]),
    st.integers(),
    st.none(),
)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5000),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=10),
    st.text(max_size=12),
    st.sampled_from(["", " ", "89161234567", "00:01:30", "in", "out", "2", "42", "inf", "NaN", "1e3"]),
    st.lists(st.integers(), max_size=1),
)
keys = ("service", "extNum", "num", "direction", "duration", "recordFileId", "isRead")


@settings(max_examples=500, deadline=None)
@given(date=dates, fields=st.dictionaries(st.sampled_from(keys), values), extra=st.booleans())
def test_the_fast_path_loads_every_row_as_the_schema_does(date, fields, extra):
    row = {"callDate": date, **fields} if date is not None or extra else dict(fields)
    if extra:
        row["operatorNote"] = "kept in extra"
    try:
        expected = SCHEMA.load(row)
    except ValidationError:
        with pytest.raises(ValidationError):
            SCHEMA.load_row(row)
        return
    assert SCHEMA.load_row(row) == expected


def test_a_row_without_a_duration_is_a_call_of_no_duration():
    row = {"callDate": "2026-11-20 09:00:00", "extNum": "89161234567", "duration": None}
    assert SCHEMA.load(row).duration == SCHEMA.load_row(row).duration == 0


ZONES = [ZoneInfo(name) for name in ("Europe/Moscow", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe")]


@settings(max_examples=500, deadline=None)
@given(moment=st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2100, 1, 1)), tz=st.sampled_from(ZONES))
def test_local_times_become_utc_as_astimezone_makes_them(moment, tz):
    text = moment.isoformat(" ")
    assert parse_operator_datetime(text, tz) == moment.replace(tzinfo=tz, fold=0).astimezone(UTC)  # text has no fold
    assert parse_operator_datetime(text, tz).tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-03-29 02:30:00", "2026-03-29 01:30:00"),  # Berlin: the hour that does not exist
        ("2026-10-25 02:30:00", "2026-10-25 00:30:00"),  # Berlin: the hour that happens twice (the first)
        ("2026-11-01 00:00:00", "2026-10-31 23:00:00"),
    ],
)
def test_daylight_saving_edges_in_berlin(text, utc):
    expected = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert parse_operator_datetime(text, ZoneInfo("Europe/Berlin")) == expected


def test_a_date_before_the_calendar_starts_in_utc_is_a_field_error_not_a_crash():
    row = {"callDate": "0001-01-01 00:00:00", "extNum": "101"}  # Moscow is ahead of UTC: year 0
    for load in (SCHEMA.load, SCHEMA.load_row):
        with pytest.raises(ValidationError, match="out of the range"):
            load(row)
    assert SCHEMA.load_row({"callDate": "9999-12-31 23:59:59"}).started_at.hour == 20
