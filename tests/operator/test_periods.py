from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integration.errors import PeriodError
from integration.operator.periods import earliest_available, split_period

MSK = ZoneInfo("Europe/Moscow")


def test_depth_is_one_calendar_month_in_the_operator_zone():
    now = datetime(2026, 3, 30, 22, 30, tzinfo=UTC)  # 31 March 01:30 in Moscow
    assert earliest_available(now, MSK) == datetime(2026, 2, 28, 1, 30, tzinfo=MSK)


def test_too_old_is_refused_or_clamped():
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    start = datetime(2026, 10, 1, tzinfo=MSK)
    with pytest.raises(PeriodError, match="earliest moment available now is 2026-10-27 15:00:00"):
        split_period(start, now, now, MSK)
    [(lower, upper)] = split_period(start, now, now, MSK, clamp=True)
    assert lower == datetime(2026, 10, 27, 15, 1, tzinfo=MSK) and upper == now


def test_long_periods_split_into_month_slices_that_touch():
    now = datetime(2026, 5, 10, tzinfo=UTC)
    start = datetime(2026, 1, 31, tzinfo=MSK)
    slices = split_period(start, now, now, MSK, depth_months=12)
    assert [s.date().isoformat() for s, _ in slices] == ["2026-01-31", "2026-02-28", "2026-03-28", "2026-04-28"]
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:], strict=False))
    assert slices[-1][1] == now


def test_a_span_cuts_slices_shorter():
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    slices = split_period(now - timedelta(days=2, hours=5), now, now, MSK, span=timedelta(days=1))
    assert [upper - lower for lower, upper in slices] == [timedelta(days=1), timedelta(days=1), timedelta(hours=5)]
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:], strict=False)) and slices[-1][1] == now


def test_empty_reversed_and_naive_periods():
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    with pytest.raises(PeriodError, match="empty"):
        split_period(now, now, now, MSK)
    with pytest.raises(PeriodError, match="time zone"):
        split_period(datetime(2026, 11, 20), now, now, MSK)


def test_future_end_is_cut_to_now():
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    [(_, upper)] = split_period(datetime(2026, 11, 26, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC), now, MSK)
    assert upper == now
