"""How the console shows things to people: numbers as people write them, times in the account's
zone, durations, and the calls-per-hour chart (drawn as SVG by the template)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers

from integration.models import Call


def human_number(number: str | None, region: str = "RU") -> str:
    """``+7 916 123-45-67`` for anything that parses, else the number as given."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def call_number(call: Call, region: str = "RU") -> str:
    """The other party of a call, for people (an internal extension as the operator wrote it)."""
    return human_number(call.ext_e164, region) if call.ext_e164 else call.ext_raw


def local_time(moment: datetime | None, tz: ZoneInfo, with_seconds: bool = False) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def duration(seconds: float | None) -> str:
    """``1:05``, ``1:02:05``; a lag of days as ``3 d 4 h``."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds >= 86400:
        return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass(frozen=True)
class Bar:
    x: int
    answered: int  # heights in pixels
    missed: int
    label: str  # for the bar's tooltip


@dataclass(frozen=True)
class HourlyChart:
    bars: list[Bar]
    days: list[tuple[int, str]]  # x of each local midnight, and the day's label
    peak: int
    answered: int
    missed: int
    width: int = 7 * 24 * 5
    height: int = 120


def hourly_chart(per_hour: dict[tuple[datetime, str], int], end: datetime, tz: ZoneInfo) -> HourlyChart:
    """The last 7 days' calls per hour ending at ``end``'s hour: answered below, missed (and
    voicemail) stacked above, scaled to the busiest hour."""
    first = end.replace(minute=0, second=0, microsecond=0) - timedelta(hours=7 * 24 - 1)
    hours = [first + timedelta(hours=i) for i in range(7 * 24)]
    answered = [per_hour.get((hour, "answered"), 0) for hour in hours]
    missed = [sum(per_hour.get((hour, status), 0) for status in ("missed", "voicemail")) for hour in hours]
    peak = max((a + m for a, m in zip(answered, missed, strict=True)), default=0) or 1
    chart_height = HourlyChart.height
    bars = []
    for i, hour in enumerate(hours):
        a, m = answered[i], missed[i]
        if a or m:
            label = f"{hour.astimezone(tz):%a %d %b %H:00}: {a} answered, {m} missed"
            bars.append(Bar(i * 5, round(a * chart_height / peak), round(m * chart_height / peak), label))
    days = [(i * 5, f"{hour.astimezone(tz):%a %d}") for i, hour in enumerate(hours) if hour.astimezone(tz).hour == 0]
    return HourlyChart(bars, days, peak, sum(answered), sum(missed))
