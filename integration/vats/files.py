"""The editable file of ``vats export`` / ``plan`` / ``apply`` (YAML, or JSON: YAML reads both).

It is the operator's settings document with two changes for people: each block's schedule is
``days: {mon: ["08:00-20:00"], …}`` instead of seconds in ``scheduleJson``, and ``base`` holds
the fingerprint of the live settings it was exported from, so ``apply`` can refuse when someone
changed them meanwhile. ``desired_settings`` turns an edited file back into the document to send.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import yaml

from integration.errors import IntegrationError
from integration.phone import forwarding_digits
from integration.rules import WEEKDAYS
from integration.vats.document import (
    DAY_NAMES,
    block_label,
    blocks,
    days_of,
    fingerprint,
    hhmm,
    parse_clock,
    profile_label,
    profiles,
    redirect_label,
    redirects,
    with_days,
)

HEADER = """\
# PBX routing settings of {num}, exported by vats-bridge. Edit, then
#   flask --app wsgi vats plan FILE    (check the rules, see what would change)
#   flask --app wsgi vats apply FILE   (write it to the operator, re-read and verify)
# Times per weekday are HH:MM-HH:MM (24:00 is the end of the day); the blocks of a profile must
# cover every day without gaps or overlaps. Ids, contractNum, vatsName and the *Term texts are
# read-only. A forwarding entry without an id is a new one. Keep `base` as it is.
"""
DEFAULT_REDIRECT = {"isActive": 1, "isMlp": 0, "dialTime": 30}


class FileError(IntegrationError, ValueError):
    """The file cannot be read as a settings file; the message says what to fix."""


def export_document(live: dict) -> dict:
    """The editable form of a live settings document, with the ``base`` it came from."""
    return {"num": live.get("num"), "base": fingerprint(live)} | editable_form(live)


def editable_form(live: dict) -> dict:
    """The settings as the file shows them (days as ``HH:MM-HH:MM``), without ``base``."""
    document: dict[str, Any] = {key: copy.deepcopy(value) for key, value in live.items() if key != "profiles"}
    document["profiles"] = [
        {k: v for k, v in profile.items() if k != "scheduleBlocks"}
        | {"scheduleBlocks": [_export_block(block) for block in blocks(profile)]}
        for profile in profiles(live)
    ]
    return document


def _export_block(block: dict) -> dict:
    days = days_of(block)
    exported = {k: copy.deepcopy(v) for k, v in block.items() if k not in ("scheduleJson", "redirectNums")}
    exported["days"] = {
        name: [f"{hhmm(s)}-{hhmm(e)}" for s, e in days.get(str(n), [])] for n, name in enumerate(WEEKDAYS, 1)
    }
    exported["redirectNums"] = copy.deepcopy(redirects(block))
    return exported


def dump(document: dict, fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)
    return HEADER.format(num=document.get("num")) + body


def load(text: str) -> dict:
    """The edited file (YAML or JSON); ``FileError`` says what is wrong with it."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise FileError(f"not valid YAML or JSON{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(document, dict):
        raise FileError("the file must hold one settings document (a mapping with num, base, profiles …)")
    for key in ("num", "base"):
        if not isinstance(document.get(key), (str, int)) or isinstance(document.get(key), bool):
            raise FileError(f"{key} is missing: export the settings again (flask --app wsgi vats export NUM)")
    return document


def desired_settings(edited: dict, live: dict) -> tuple[dict, list[str]]:
    """The live document with the file's edits applied, and what in the file cannot be used.

    Structure is the cabinet's: profiles and blocks are matched by id and cannot be added or
    removed here; forwarding entries can (an entry without an id is new). Unknown fields are
    reported, fields left out of the file keep their live values.
    """
    where = str(live.get("num"))
    problems: list[str] = []
    desired = copy.deepcopy(live)
    _merge(desired, edited, ("base", "profiles"), where, problems)
    for item, profile in _matched(edited.get("profiles"), profiles(desired), f"{where}: profiles", problems):
        label = f"{where} › {profile_label(profile)}"
        _merge(profile, item, ("scheduleBlocks",), label, problems)
        for block_item, block in _matched(
            item.get("scheduleBlocks"), blocks(profile), f"{label}: scheduleBlocks", problems
        ):
            _edit_block(block, block_item, f"{label} › {block_label(block)}", problems)
    return desired, problems


def _matched(value: Any, live: list[dict], where: str, problems: list[str]) -> Iterator[tuple[dict, dict]]:
    """(edited item, live item) for each edited item whose id names a live one; the others are
    reported (profiles and blocks are made in the web cabinet, not here)."""
    by_id = {item.get("id"): item for item in live}
    for index, item in enumerate(_items(value, where, problems)):
        current = by_id.get(_id(item, f"{where}[{index}]", problems))
        if current is None:
            problems.append(
                f"{where}[{index}]: id {item.get('id')!r} is not in the live settings (made in the web cabinet, not here)"
            )
        else:
            yield item, current


def _edit_block(block: dict, item: dict, where: str, problems: list[str]) -> None:
    _merge(block, item, ("days", "redirectNums", "scheduleJson"), where, problems)
    if "days" in item:
        block.update(with_days(block, _days(item["days"], days_of(block), where, problems)))
    if "redirectNums" in item:
        block["redirectNums"] = _redirects(item["redirectNums"], redirects(block), where, problems)


def _days(value: Any, current: dict[str, list[tuple[int, int]]], where: str, problems: list[str]) -> dict:
    days = {day: list(spans) for day, spans in current.items()}
    if not isinstance(value, dict):
        problems.append(f"{where}: days must map weekdays (mon … sun) to lists of HH:MM-HH:MM")
        return days
    for key, spans in value.items():
        name = str(key).lower()[:3]
        if name not in WEEKDAYS:
            problems.append(f"{where}: days.{key} is not a weekday (mon, tue, wed, thu, fri, sat, sun)")
            continue
        day = str(WEEKDAYS.index(name) + 1)
        label = f"{where} › {DAY_NAMES[int(day) - 1]}"
        parsed: list[tuple[int, int]] = []
        for text in spans if isinstance(spans, list) else [spans] if spans else []:
            start, _, end = str(text).replace("–", "-").partition("-")
            first, last = parse_clock(start), parse_clock(end)
            if first is None or last is None:
                problems.append(f"{label}: {text!r} is not a time range like 09:00-18:00")
            else:
                parsed.append((first, last))
        if parsed != days.get(day, []):  # an unchanged day stays as the operator wrote it
            days[day] = parsed
    return days


def _redirects(value: Any, live: list[dict], where: str, problems: list[str]) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        problems.append(f"{where}: redirectNums must be a list of forwarding entries")
        return live
    by_id = {r.get("id"): r for r in live if r.get("id") is not None}
    result = []
    for index, item in enumerate(value):
        ident = _id(item, f"{where}: redirectNums[{index}]", problems)
        if ident is _BAD_ID:
            continue
        current = by_id.get(ident) if ident is not None else None
        entry = copy.deepcopy(current) if current else {}
        entry.update(copy.deepcopy(item))
        entry |= {k: v for k, v in DEFAULT_REDIRECT.items() if k not in entry}  # a new entry's defaults
        if "num" not in entry:
            problems.append(f"{where} › {redirect_label(entry)}: num is missing")
            continue
        digits = forwarding_digits(entry["num"])
        if digits is not None:  # normalized; an unchanged number keeps the spelling the operator has
            keep = current is not None and forwarding_digits(current.get("num")) == digits
            entry["num"] = current["num"] if keep and current is not None else digits
        result.append(entry)
    return result


_BAD_ID = object()


def _id(item: dict, where: str, problems: list[str]) -> object:
    """An item's ``id``: None when it has none, ``_BAD_ID`` (reported) when it is not a number or text."""
    ident = item.get("id")
    if ident is None or (type(ident) in (int, str)):
        return ident
    problems.append(f"{where}: id must be a number, not {ident!r}")
    return _BAD_ID


def _merge(target: dict, item: dict, skip: tuple[str, ...], where: str, problems: list[str]) -> None:
    """Copy ``item``'s fields onto ``target``; a field the live document does not have is an error."""
    for key, value in item.items():
        if key in skip:
            continue
        if key not in target:
            problems.append(f"{where}: unknown field {key!r}")
            continue
        target[key] = copy.deepcopy(value)


def _items(value: Any, where: str, problems: list[str]) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        problems.append(f"{where} must be a list of mappings")
        return []
    return value
