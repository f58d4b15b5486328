"""Date-time text made by hand where it is hot: equal to ``isoformat`` for every datetime."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration.timeutil import add_months, utc_isoformat, wall_clock_text

moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999))


@settings(max_examples=1000)
@given(moment=moments)
def test_the_wall_clock_is_how_isoformat_begins(moment):
    assert wall_clock_text(moment) == moment.isoformat(timespec="seconds")
    assert wall_clock_text(moment, " ") == moment.isoformat(" ", timespec="seconds")


@settings(max_examples=1000)
@given(moment=moments, zone=st.sampled_from([UTC, timezone(timedelta(hours=3)), timezone(timedelta(0))]))
def test_utc_isoformat_is_isoformat(moment, zone):
    aware = moment.replace(tzinfo=zone)
    assert utc_isoformat(aware) == aware.isoformat()


def test_the_usual_call_start():
    assert utc_isoformat(datetime(2026, 11, 20, 9, 5, 7, tzinfo=UTC)) == "2026-11-20T09:05:07+00:00"
    assert utc_isoformat(datetime(2026, 11, 20, 9, 5, 7, 42, tzinfo=UTC)) == "2026-11-20T09:05:07.000042+00:00"


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (datetime(2026, 1, 31, 10), 1, datetime(2026, 2, 28, 10)),
        (datetime(2028, 1, 31, 10), 1, datetime(2028, 2, 29, 10)),
        (datetime(2026, 3, 31, 0), -1, datetime(2026, 2, 28, 0)),
        (datetime(2026, 12, 15), 1, datetime(2027, 1, 15)),
        (datetime(2026, 1, 15), -1, datetime(2025, 12, 15)),
    ],
)
def test_add_months_clamps_the_day(moment, months, expected):
    assert add_months(moment, months) == expected
