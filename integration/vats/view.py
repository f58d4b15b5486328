"""A readable weekly view of one number's PBX settings (``vats show``): for each profile and
day, which block rings whom, in which dial mode."""

from __future__ import annotations

from typing import Any

from integration.vats.document import (
    DAY_NAMES,
    DIAL_MODES,
    MODES,
    block_label,
    blocks,
    days_of,
    profile_label,
    profiles,
    redirects,
    span_text,
)


def weekly_view(document: dict) -> list[str]:
    """The settings as lines of text."""
    mode: Any = document.get("vatsModeCode")
    name = f" «{document['vatsName']}»" if document.get("vatsName") else ""
    lines = [f"{document.get('num')}{name}: {MODES.get(mode, f'mode {mode}')}"]
    if document.get("isDoNotDisturbMode") == 1:
        lines.append("  do-not-disturb is ON: calls are not forwarded")
    if mode == 0:
        redirect = document.get("standartPhoneRedirectNum") or "(no forwarding number)"
        lines.append(f"  forwards to {redirect}, ringing {document.get('standartPhoneDialTime')} s")
        return lines
    for profile in profiles(document):
        state = "active" if profile.get("isActive") == 1 else "inactive"
        calendar = ", public holidays observed" if profile.get("isUseCalendar") == 1 else ""
        lines.append(f"{profile_label(profile)} ({state}{calendar})")
        for day, day_name in enumerate(DAY_NAMES, start=1):
            rows = []
            for block in blocks(profile):
                for start, end in days_of(block).get(str(day), []):
                    if start < end:
                        rows.append((start, end, block))
            if not rows:
                lines.append(f"  {day_name}  (nothing rings)")
            for index, (start, end, block) in enumerate(sorted(rows, key=lambda row: row[:2])):
                prefix = day_name if index == 0 else " " * len(day_name)
                lines.append(f"  {prefix}  {span_text(start, end):<11}  {_block(block)}")
    return lines


def _block(block: dict) -> str:
    off = "" if block.get("isActive", 1) == 1 else " (inactive)"
    dial_mode: Any = block.get("dialModeCode")
    dial = DIAL_MODES.get(dial_mode, f"dial mode {dial_mode}")
    targets = ", ".join(_redirect(r) for r in redirects(block)) or "nobody"
    return f"{block_label(block)}{off}, {dial}: {targets}"


def _redirect(redirect: dict) -> str:
    name = f" «{redirect['name']}»" if redirect.get("name") else ""
    off = " (off)" if redirect.get("isActive", 1) != 1 else ""
    return f"{redirect.get('num')}{name} {redirect.get('dialTime')} s{off}"
