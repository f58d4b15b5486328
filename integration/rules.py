"""Rules: CRM events → actions, declared in ``INTEGRATION_CONFIG`` and validated at start-up.

```toml
[business_hours]          # when a rule may ring anyone (default: Mon–Fri 09:00–19:00)
days = "mon-fri"          # "mon-sun", "mon,wed,fri" or [1, 2, 3] (1 = Monday)
start = "09:00"
end = "19:00"
timezone = "Europe/Moscow"  # default: OPERATOR_TIMEZONE

[[rules]]
name = "call back lost deals"
event = "deal.closed"
when = { status = "lost" }  # equality on the event's data fields; a list means any of
action = "callback"         # ring the responsible user, then the deal's contact
delay = "2h"                # seconds, or 30m / 2h / 1d; moved into business hours

[[rules]]
event = "deal.closed"
when = { status = "won" }
action = "attach_calls"     # attach the contact's calls of the last `days` days to the deal
days = 30

[[rules]]
event = "user.status"
when = { status = "absent" }
action = "set_redirect_active"  # the user's forwarding number ([forwarding], or the event's phone)
active = false                  # off while away (a second rule turns it back on)
numbers = ["4990000000"]        # whose PBX settings change (default: every OPERATOR_NUMBERS)
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ACTIONS = ("callback", "attach_calls", "set_redirect_active")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RULE_NAME_LENGTH = 200  # a rule callback's work item names its rule (work_items.target)
_DURATION = re.compile(r"^([0-9]+)\s*([smhd]?)$")
_CLOCK = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])$")
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


@dataclass(frozen=True)
class BusinessHours:
    days: frozenset[int] = frozenset({1, 2, 3, 4, 5})  # ISO weekdays, 1 = Monday
    start: time = time(9, 0)
    end: time = time(19, 0)
    timezone: str | None = None  # None: the operator's zone

    def next_open(self, moment: datetime, default_zone: ZoneInfo) -> datetime:
        """``moment`` if it is within business hours, else the next opening (same zone as given)."""
        zone = ZoneInfo(self.timezone) if self.timezone else default_zone
        local = moment.astimezone(zone)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if day.isoweekday() not in self.days:
                continue
            opens = datetime.combine(day, self.start, zone)
            closes = datetime.combine(day + timedelta(days=1) if self.end == time(0) else day, self.end, zone)
            if local < closes:
                return max(local, opens).astimezone(moment.tzinfo)
        raise ValueError("business hours have no open day")  # unreachable after validation

    def is_open(self, moment: datetime, default_zone: ZoneInfo) -> bool:
        return self.next_open(moment, default_zone) == moment


@dataclass(frozen=True)
class Rule:
    name: str
    event: str
    action: str
    when: dict[str, Any] = field(default_factory=dict)
    delay: int = 0  # seconds (callback)
    days: int = 30  # look-back (attach_calls)
    active: bool = True  # set_redirect_active: the state to set
    numbers: tuple[str, ...] = ()  # set_redirect_active: contract numbers (empty: all)

    def matches(self, event_type: str, data: dict) -> bool:
        if event_type != self.event:
            return False
        for key, expected in self.when.items():
            actual = data.get(key)
            allowed = expected if isinstance(expected, list) else [expected]
            if actual not in allowed:
                return False
        return True


def parse_business_hours(table: Any, problems: list[str], where: str) -> BusinessHours:
    if table is None:
        return BusinessHours()
    if not isinstance(table, dict):
        problems.append(f"{where}: [business_hours] must be a table")
        return BusinessHours()
    values: dict[str, Any] = {}
    if "days" in table:
        days = _days(table["days"])
        if days is None:
            problems.append(f'{where}: business_hours.days must look like "mon-fri", "mon,wed" or [1, 2, 3]')
        else:
            values["days"] = days
    for key in ("start", "end"):
        if key in table:
            clock = _clock(table[key])
            if clock is None:
                problems.append(f'{where}: business_hours.{key} must be a time like "09:00"')
            else:
                values[key] = clock
    if "timezone" in table:
        try:
            ZoneInfo(str(table["timezone"]))
            values["timezone"] = str(table["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"{where}: business_hours.timezone {table['timezone']!r} is not a known time zone")
    unknown = set(table) - {"days", "start", "end", "timezone"}
    if unknown:
        problems.append(f"{where}: business_hours has unknown keys: {', '.join(sorted(unknown))}")
    hours = BusinessHours(**values)
    if hours.end != time(0) and hours.end <= hours.start:
        problems.append(f"{where}: business_hours.end must be after business_hours.start")
    return hours


def parse_rules(items: Any, problems: list[str], where: str) -> tuple[Rule, ...]:
    if items is None:
        return ()
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        problems.append(f"{where}: rules must be [[rules]] tables")
        return ()
    rules = []
    for index, item in enumerate(items, start=1):
        label = f"{where}: rules #{index}" + (f" ({item['name']})" if isinstance(item.get("name"), str) else "")
        before = len(problems)
        event, action = item.get("event"), item.get("action")
        if not isinstance(event, str) or not _EVENT_TYPE.match(event):
            problems.append(f'{label}: event must be an event type such as "deal.closed"')
        if action not in ACTIONS:
            problems.append(f"{label}: action must be one of {', '.join(ACTIONS)}, got {action!r}")
        when = item.get("when", {})
        if not isinstance(when, dict) or not all(
            isinstance(v, (str, int, bool)) or (isinstance(v, list) and all(isinstance(x, (str, int)) for x in v))
            for v in when.values()
        ):
            problems.append(f"{label}: when must be a table of field = value (or a list of values)")
        delay = _duration(item.get("delay", 0))
        if delay is None:
            problems.append(f'{label}: delay must be seconds or like "30m", "2h", "1d"')
        days = item.get("days", 30)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 365:
            problems.append(f"{label}: days must be a whole number from 1 to 365")
        active = item.get("active")
        if action == "set_redirect_active" and not isinstance(active, bool):
            problems.append(f"{label}: active must be true or false (the state set_redirect_active sets)")
        numbers = item.get("numbers", [])
        if not isinstance(numbers, list) or not all(
            isinstance(n, str) and re.fullmatch(r"[0-9]{10}", n) for n in numbers
        ):
            problems.append(f'{label}: numbers must be a list of contract numbers such as ["4990000000"]')
        if len(str(item.get("name") or "")) > RULE_NAME_LENGTH:
            problems.append(f"{label}: name must be at most {RULE_NAME_LENGTH} characters")
        unknown = set(item) - {"name", "event", "when", "action", "delay", "days", "active", "numbers"}
        if unknown:
            problems.append(f"{label}: unknown keys: {', '.join(sorted(unknown))}")
        if len(problems) == before and delay is not None:
            rules.append(
                Rule(
                    name=str(item.get("name") or f"rule {index}"),
                    event=event,
                    action=action,
                    when=dict(when),
                    delay=delay,
                    days=days,
                    active=bool(active) if active is not None else True,
                    numbers=tuple(numbers),
                )
            )
    names = [rule.name for rule in rules]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{where}: two rules are named {name!r}; names must be unique")
    return tuple(rules)


def _days(value: Any) -> frozenset[int] | None:
    if isinstance(value, list):
        ok = value and all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 7 for d in value)
        return frozenset(value) if ok else None
    if not isinstance(value, str):
        return None
    days: set[int] = set()
    for part in value.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            return None
        start, end = WEEKDAYS.index(first) + 1, WEEKDAYS.index(last or first) + 1
        days |= set(range(start, end + 1)) if start <= end else set(range(start, 8)) | set(range(1, end + 1))
    return frozenset(days) or None


def _clock(value: Any) -> time | None:
    match = _CLOCK.match(value.strip()) if isinstance(value, str) else None
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        return None
    hours, minutes = int(match.group(1)), int(match.group(2))
    return time(0) if hours == 24 else time(hours, minutes)


def _duration(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    match = _DURATION.match(value.strip().lower()) if isinstance(value, str) else None
    if not match:
        return None
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
