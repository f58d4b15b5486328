"""Dates as people write them: ``YYYY-MM-DD`` (a whole day in the operator's zone) or ISO 8601."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_moment(text: str, tz: ZoneInfo, *, end: bool = False) -> datetime:
    """``YYYY-MM-DD`` (its start in ``tz``, or with ``end`` the next day's start, so that an
    end date is inclusive) or an ISO 8601 date-time with an offset. Raises ``ValueError``."""
    text = text.strip()
    if DATE.match(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d").date()
        except ValueError:
            raise ValueError(f"{text} is not a calendar date") from None
        return datetime.combine(day + timedelta(days=1 if end else 0), time(), tz)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            "use YYYY-MM-DD or an ISO 8601 date-time with an offset, e.g. 2026-11-01T09:00+03:00"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"{text} has no UTC offset; add one, e.g. {text}+03:00")
    return moment
