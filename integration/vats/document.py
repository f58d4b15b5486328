"""The operator's PBX settings document (``Vats/settings/get``), as plain dicts, and the small
helpers the rest of ``integration.vats`` shares: walking it, clock times and the fingerprint that tells whether the live settings changed.

The document keeps the operator's field names (``profiles[].scheduleBlocks[].redirectNums[]``…);
fields we do not know are carried through untouched.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator

DAY = 86400
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MODES = {0: "just a phone", 1: "multichannel (simple set-up)", 2: "multichannel (detailed set-up)"}
DIAL_MODES = {1: "sequential", 2: "parallel", 21: "uniform load"}


def fingerprint(document: dict) -> str:
    """A short digest of a settings document: equal exactly when the documents are equal."""
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def hhmm(seconds: int) -> str:
    """``30600`` → ``08:30`` (``86400`` → ``24:00``; seconds shown only when there are any)."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def span_text(start: int, end: int) -> str:
    return f"{hhmm(start)}–{hhmm(end)}"


def parse_clock(text: str) -> int | None:
    """``"08:30"`` / ``"08:30:15"`` / ``"24:00"`` → seconds from midnight; None if not a time."""
    match = re.fullmatch(r"([0-9]{1,2}):([0-5][0-9])(?::([0-5][0-9]))?", text.strip())
    if not match:
        return None
    seconds = int(match.group(1)) * 3600 + int(match.group(2)) * 60 + int(match.group(3) or 0)
    return seconds if seconds <= DAY else None


def days_of(block: dict) -> dict[str, list[tuple[int, int]]]:
    """A block's time ranges per operator day ("1" … "7"), as read (bad entries skipped)."""
    days = ((block.get("scheduleJson") or {}).get("schedule") or {}).get("days") or {}
    found: dict[str, list[tuple[int, int]]] = {}
    for day, spec in days.items():
        spans = []
        for item in (spec or {}).get("times") or []:
            if (
                isinstance(item, dict)
                and isinstance(item.get("time_start"), int)
                and isinstance(item.get("time_end"), int)
            ):
                spans.append((item["time_start"], item["time_end"]))
        found[str(day)] = spans
    return found


def with_days(block: dict, days: dict[str, list[tuple[int, int]]]) -> dict:
    """``block`` with its schedule replaced (other ``scheduleJson`` content kept)."""
    schedule_json = dict(block.get("scheduleJson") or {})
    schedule = dict(schedule_json.get("schedule") or {})
    schedule["days"] = {
        day: {"times": [{"time_start": s, "time_end": e} for s, e in spans]} for day, spans in days.items()
    }
    schedule_json["schedule"] = schedule
    return block | {"scheduleJson": schedule_json}


def profiles(document: dict) -> list[dict]:
    return [p for p in document.get("profiles") or [] if isinstance(p, dict)]


def blocks(profile: dict) -> list[dict]:
    return [b for b in profile.get("scheduleBlocks") or [] if isinstance(b, dict)]


def redirects(block: dict) -> list[dict]:
    return [r for r in block.get("redirectNums") or [] if isinstance(r, dict)]


def every_redirect(document: dict) -> Iterator[tuple[dict, dict, dict]]:
    """(profile, block, redirect) for every forwarding entry of the document."""
    for profile in profiles(document):
        for block in blocks(profile):
            for redirect in redirects(block):
                yield profile, block, redirect


def profile_label(profile: dict) -> str:
    return f"profile «{profile.get('name') or profile.get('id')}»"


def block_label(block: dict) -> str:
    return f"block «{block.get('nameTerm') or block.get('id')}»"


def redirect_label(redirect: dict) -> str:
    name = f" «{redirect['name']}»" if redirect.get("name") else ""
    return f"forwarding {redirect.get('num')}{name}"
