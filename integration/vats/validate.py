"""The documented rules of ``Vats/settings/set``, with messages that say where and why.

``validate(desired, live)`` returns one line per problem, e.g.
``4990000000 › profile «Main» › Tue: gap 18:00–20:00 (no block rings)`` or
``4990000000 › profile «Main» › block «Working hours» › forwarding 123: not a forwarding number
(10 digits, 8… or +7…)``. An empty list means the operator should accept the document.
"""

from __future__ import annotations

from typing import Any

from integration.phone import forwarding_digits
from integration.vats.document import (
    DAY,
    DAY_NAMES,
    DIAL_MODES,
    MODES,
    block_label,
    blocks,
    days_of,
    profile_label,
    profiles,
    redirect_label,
    redirects,
    span_text,
)

READ_ONLY = {
    "settings": ("contractNum", "num", "vatsName", "vatsModeTerm"),
    "profile": ("id", "name"),
    "block": ("id", "typTerm", "nameTerm", "dialModeTerm"),
    "redirect": ("id",),
}
OPERATOR_DAYS = tuple(str(day) for day in range(1, 8))


def validate(desired: dict, live: dict) -> list[str]:
    """Every rule ``desired`` breaks, given the ``live`` document it replaces."""
    where = str(live.get("num") or desired.get("num") or "?")
    problems: list[str] = []
    _read_only(desired, live, READ_ONLY["settings"], where, problems)
    _choice(desired, "vatsModeCode", tuple(MODES), where, problems)
    _choice(desired, "isDoNotDisturbMode", (0, 1), where, problems)
    _whole(desired, "standartPhoneDialTime", 1, 90, where, problems)
    redirect = desired.get("standartPhoneRedirectNum")
    if redirect not in (None, "") and forwarding_digits(redirect) is None:
        problems.append(
            f"{where}: standartPhoneRedirectNum {redirect!r} is not a forwarding number (10 digits, 8… or +7…)"
        )
    live_profiles = {p.get("id"): p for p in profiles(live)}
    for profile in profiles(desired):
        _profile(profile, live_profiles.get(profile.get("id")) or {}, f"{where} › {profile_label(profile)}", problems)
    return problems


def _profile(profile: dict, live: dict, where: str, problems: list[str]) -> None:
    _read_only(profile, live, READ_ONLY["profile"], where, problems)
    _choice(profile, "isActive", (0, 1), where, problems)
    _choice(profile, "isUseCalendar", (0, 1), where, problems)
    day = profile.get("workdayDefDay")
    if day is not None:
        _whole(profile, "workdayDefDay", 1, 7, where, problems, unit=" (1 = Monday)")
    if day != live.get("workdayDefDay") and profile.get("isUseCalendar") != 1:
        problems.append(f"{where}: workdayDefDay can change only when isUseCalendar is 1 (public holidays observed)")
    live_blocks = {b.get("id"): b for b in blocks(live)}
    for block in blocks(profile):
        _block(block, live_blocks.get(block.get("id")) or {}, f"{where} › {block_label(block)}", problems)
    _coverage(profile, where, problems)


def _block(block: dict, live: dict, where: str, problems: list[str]) -> None:
    _read_only(block, live, READ_ONLY["block"], where, problems)
    _choice(block, "isActive", (0, 1), where, problems)
    _choice(block, "dialModeCode", tuple(DIAL_MODES), where, problems)
    for day, spans in days_of(block).items():
        if day not in OPERATOR_DAYS:
            problems.append(f"{where}: day {day!r} is not a weekday 1 (Monday) … 7 (Sunday)")
            continue
        for start, end in spans:
            if not (0 <= start <= DAY and 0 <= end <= DAY):
                problems.append(f"{where} › {DAY_NAMES[int(day) - 1]}: {start}–{end} is outside 0–86400 seconds")
            elif start > end:
                problems.append(f"{where} › {DAY_NAMES[int(day) - 1]}: {span_text(start, end)} starts after it ends")
    live_redirects = {r.get("id"): r for r in redirects(live) if r.get("id") is not None}
    for redirect in redirects(block):
        inner = f"{where} › {redirect_label(redirect)}"
        if forwarding_digits(redirect.get("num")) is None:
            problems.append(f"{inner}: not a forwarding number (10 digits, 8… or +7…)")
        _whole(redirect, "dialTime", 0, 90, inner, problems)
        _choice(redirect, "isActive", (0, 1), inner, problems)
        _choice(redirect, "isMlp", (0, 1), inner, problems)
        if redirect.get("id") is not None and redirect["id"] not in live_redirects:
            problems.append(f"{inner}: id {redirect['id']} is not in the live settings (leave it out for a new entry)")


def _coverage(profile: dict, where: str, problems: list[str]) -> None:
    """The active blocks together ring every second of every day, each second once."""
    spans_by_day: dict[str, list[tuple[int, int, str]]] = {day: [] for day in OPERATOR_DAYS}
    for block in blocks(profile):
        if block.get("isActive", 1) != 1:
            continue
        for day, spans in days_of(block).items():
            for start, end in spans:
                if day in spans_by_day and 0 <= start < end <= DAY:  # empty ranges (86400–86400) ring nobody
                    spans_by_day[day].append((start, end, block_label(block)))
    for day, day_spans in spans_by_day.items():
        label = f"{where} › {DAY_NAMES[int(day) - 1]}"
        cursor, last = 0, ""
        for start, end, owner in sorted(day_spans):
            if start > cursor:
                problems.append(f"{label}: gap {span_text(cursor, start)} (no block rings)")
            elif start < cursor:
                problems.append(f"{label}: overlap {span_text(start, min(cursor, end))} ({last} and {owner})")
            if end > cursor:
                cursor, last = end, owner
        if cursor < DAY:
            problems.append(f"{label}: gap {span_text(cursor, DAY)} (no block rings)")


def _read_only(new: dict, old: dict, names: tuple[str, ...], where: str, problems: list[str]) -> None:
    for name in names:
        if name in new and name in old and new[name] != old[name]:
            problems.append(f"{where}: {name} is read-only ({old[name]!r} cannot become {new[name]!r})")


def _choice(item: dict, name: str, allowed: tuple, where: str, problems: list[str]) -> None:
    value = item.get(name)
    if name in item and (isinstance(value, bool) or value not in allowed):
        problems.append(f"{where}: {name} must be one of {', '.join(map(str, allowed))}, not {value!r}")


def _whole(item: dict, name: str, low: int, high: int, where: str, problems: list[str], unit: str = " s") -> None:
    value: Any = item.get(name)
    if name in item and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
        problems.append(f"{where}: {name} must be a whole number from {low} to {high}{unit}, not {value!r}")
