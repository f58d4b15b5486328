"""The operator's one-month rule for call history, and splitting longer periods."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from integration.errors import PeriodError
from integration.timeutil import add_months

MAX_SPAN_MONTHS = 1
HISTORY_DEPTH_MONTHS = 1
CLAMP_MARGIN = timedelta(minutes=1)


def earliest_available(now: datetime, tz: ZoneInfo, depth_months: int = HISTORY_DEPTH_MONTHS) -> datetime:
    """The oldest moment the operator serves: one calendar month back in its own zone."""
    return add_months(now.astimezone(tz), -depth_months).replace(microsecond=0)


def split_period(
    start: datetime,
    end: datetime,
    now: datetime,
    tz: ZoneInfo,
    *,
    clamp: bool = False,
    depth_months: int = HISTORY_DEPTH_MONTHS,
    span: timedelta | None = None,
) -> list[tuple[datetime, datetime]]:
    """Half-open ``[start, end)`` slices of at most one month each (and at most ``span``), in
    the operator's zone.

    History older than the operator keeps is refused with a clear ``PeriodError`` (or, with
    ``clamp``, cut off); an end in the future is cut to ``now``.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise PeriodError("period bounds must carry a time zone")
    start, end, now = start.astimezone(tz), end.astimezone(tz), now.astimezone(tz)
    end = min(end, now)
    earliest = earliest_available(now, tz, depth_months)
    if start < earliest:
        if not clamp:
            raise PeriodError(
                f"the operator keeps one month of call history: {start:%Y-%m-%d %H:%M} is out of reach; "
                f"the earliest moment available now is {earliest:%Y-%m-%d %H:%M:%S} ({tz.key})"
            )
        start = earliest + CLAMP_MARGIN  # the operator's clock may run a little ahead of ours
    if start >= end:
        raise PeriodError(
            f"the period is empty: it starts at {start:%Y-%m-%d %H:%M:%S} and ends at {end:%Y-%m-%d %H:%M:%S}"
        )
    slices = []
    cursor = start
    while cursor < end:
        upper = min(add_months(cursor, MAX_SPAN_MONTHS), cursor + span if span else end, end)
        slices.append((cursor, upper))
        cursor = upper
    return slices
