"""What the sandbox makes up: call history, recordings and PBX settings, deterministically."""

from __future__ import annotations

import copy
import hashlib
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

# --- external numbers in the formats the operator stores ----------------------------------

EXT_FORMATS = ("8", "7", "+7", "10", "810", "internal")


def render_ext_num(e164: str, style: str) -> str:
    """An E.164 number written the way the operator's history may show it."""
    digits = e164.lstrip("+")
    if style == "810" or not digits.startswith("7"):
        return "810" + digits
    national = digits[1:]
    return {"8": "8" + national, "7": "7" + national, "+7": "+7" + national, "10": national}[style]


def random_external(rng: random.Random) -> str:
    """A plausible external number in E.164: mostly Russian mobiles and Moscow lines."""
    kind = rng.random()
    if kind < 0.6:
        return f"+79{rng.randrange(10**9):09d}"
    if kind < 0.85:
        return f"+7495{rng.randrange(10**7):07d}"
    if kind < 0.93:
        return f"+7812{rng.randrange(10**7):07d}"
    return rng.choice(["+4930", "+3804", "+3491", "+4420"]) + f"{rng.randrange(10**8):08d}"


# --- recordings ---------------------------------------------------------------------------

ID3_HEADER = b"ID3\x04\x00\x00\x00\x00\x00\x00"
FRAME_HEADER = b"\xff\xfb\x90\x64"  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz
FRAME_SIZE = 417
SIDE_INFO = 32  # bytes of side information in an MPEG-1 stereo frame
HEADER_AND_SIDE_INFO = len(FRAME_HEADER) + SIDE_INFO
BLOCK = FRAME_SIZE * 2514  # about 1 MB, whole frames


@dataclass
class RecordingSpec:
    id: str
    size: int
    seed: int
    ready_at: datetime | None = None  # None: ready now
    sha256: str = ""

    def chunks(self) -> Iterator[bytes]:
        """The mp3 bytes: an ID3 header, then frames with pseudo-random payloads."""
        remaining = self.size
        head = ID3_HEADER[:remaining]
        yield head
        remaining -= len(head)
        index = 0
        while remaining > 0:
            rng = random.Random(self.seed * 1_000_003 + index)
            frames = bytearray(rng.randbytes(BLOCK))
            for offset in range(0, BLOCK, FRAME_SIZE):
                # A silent frame a player decodes and seeks through: zero side information (no
                # bit reservoir, no Huffman data); the random rest is ancillary data, which
                # decoders skip and which makes each recording's bytes its own.
                frames[offset : offset + HEADER_AND_SIDE_INFO] = FRAME_HEADER + bytes(SIDE_INFO)
            piece = bytes(frames[:remaining])
            remaining -= len(piece)
            index += 1
            yield piece


def make_recording(size: int, seed: int, ready_at: datetime | None = None, id: str | None = None) -> RecordingSpec:
    spec = RecordingSpec(
        id=id or str(uuid.UUID(int=random.Random(seed).getrandbits(128), version=4)),
        size=size,
        seed=seed,
        ready_at=ready_at,
    )
    digest = hashlib.sha256()
    for chunk in spec.chunks():
        digest.update(chunk)
    spec.sha256 = digest.hexdigest()
    return spec


# --- call history ---------------------------------------------------------------------------


@dataclass
class SandboxCall:
    """A call as the sandbox knows it (canonical values for tests)."""

    id: int
    started_at: datetime  # UTC
    num: str  # our line, 10 digits
    direction: int  # 1 outgoing, 2 incoming
    ext_e164: str | None
    ext_num: str  # as the operator writes it
    duration: int
    service: str
    record_file_id: str | None = None
    is_read: int | None = None


SERVICES = {"+7": "local", "810": "international", "internal": "internal"}


def generate_calls(
    rng: random.Random,
    count: int,
    since: datetime,
    until: datetime,
    nums: list[str],
    first_id: int,
    recording_ratio: float,
) -> list[tuple[SandboxCall, bool]]:
    """``count`` calls spread over ``[since, until)``; the flag says whether it has a recording."""
    span = (until - since).total_seconds()
    calls = []
    for offset in range(count):
        style = rng.choice(EXT_FORMATS)
        if style == "internal":
            ext_e164, ext_num = None, str(rng.randrange(100, 1000))
        else:
            ext_e164 = random_external(rng)
            if style == "810" and ext_e164.startswith("+7"):
                style = "8"  # Russian numbers are not written with the international prefix
            if not ext_e164.startswith("+7"):
                style = "810"
            ext_num = render_ext_num(ext_e164, style)
        answered = rng.random() < 0.75
        duration = rng.randrange(5, 900) if answered else 0
        calls.append(
            (
                SandboxCall(
                    id=first_id + offset,
                    started_at=since + timedelta(seconds=rng.random() * span),
                    num=rng.choice(nums),
                    direction=rng.choice((1, 2)),
                    ext_e164=ext_e164,
                    ext_num=ext_num,
                    duration=duration,
                    service=SERVICES.get(style, "local"),
                    is_read=rng.choice((0, 1)) if not answered and rng.random() < 0.3 else None,
                ),
                answered and rng.random() < recording_ratio,
            )
        )
    return calls


# --- PBX settings -----------------------------------------------------------------------------

WEEK = [str(day) for day in range(1, 8)]
DAY = 86400


def _days(ranges_by_day: dict[str, list[tuple[int, int]]]) -> dict:
    return {day: {"times": [{"time_start": s, "time_end": e} for s, e in ranges_by_day[day]]} for day in WEEK}


def default_settings(num: str, contract: str, id_base: int) -> dict:
    """The reference's example: a profile with "Working hours" and "Non-working hours"."""
    working = {day: [(28800, 72000)] for day in WEEK[:6]} | {"7": [(86400, 86400)]}
    non_working = {day: [(0, 28800), (72000, 86400)] for day in WEEK[:6]} | {"7": [(0, 86400)]}
    employees = [
        {
            "id": id_base + 10 + i,
            "num": f"9{num[1:4]}00000{i}",
            "name": f"Employee {i + 1}",
            "isActive": 1,
            "isMlp": 0,
            "dialTime": 30,
        }
        for i in range(5)
    ]
    return {
        "contractNum": contract,
        "num": num,
        "vatsName": f"Office {num[-4:]}",
        "vatsModeCode": 1,
        "vatsModeTerm": "Multichannel number (simple set-up)",
        "standartPhoneRedirectNum": "",
        "standartPhoneDialTime": 30,
        "isDoNotDisturbMode": 0,
        "profiles": [
            {
                "id": id_base,
                "name": "Main",
                "isActive": 1,
                "isUseCalendar": 0,
                "workdayDefDay": 1,
                "scheduleBlocks": [
                    {
                        "id": id_base + 1,
                        "typTerm": "work",
                        "isActive": 1,
                        "nameTerm": "Working hours",
                        "dialModeCode": 1,
                        "dialModeTerm": "Sequential",
                        "scheduleJson": {"schedule": {"days": _days(working)}},
                        "redirectNums": employees,
                    },
                    {
                        "id": id_base + 2,
                        "typTerm": "nonwork",
                        "isActive": 1,
                        "nameTerm": "Non-working hours",
                        "dialModeCode": 2,
                        "dialModeTerm": "Parallel",
                        "scheduleJson": {"schedule": {"days": _days(non_working)}},
                        "redirectNums": [
                            {
                                "id": id_base + 20,
                                "num": f"8{num}",
                                "name": "Duty phone",
                                "isActive": 1,
                                "isMlp": 0,
                                "dialTime": 60,
                            }
                        ],
                    },
                ],
            }
        ],
    }


READ_ONLY = ("contractNum", "num", "vatsName", "vatsModeTerm")
FORWARDING = re.compile(r"^(\d{10}|8\d{10}|\+7\d{10})$")


def validate_settings(new: dict, old: dict) -> list[str]:
    """The documented rules of ``Vats/settings/set``; returns the problems found."""
    problems: list[str] = []
    num = str(old.get("num") or "")
    for field in READ_ONLY:
        if field in new and new[field] != old.get(field):
            problems.append(f"{num}: {field} is read-only")
    if new.get("vatsModeCode", 0) not in (0, 1, 2):
        problems.append(f"{num}: vatsModeCode must be 0, 1 or 2")
    dial = new.get("standartPhoneDialTime", 30)
    if not isinstance(dial, int) or not 1 <= dial <= 90:
        problems.append(f"{num}: standartPhoneDialTime must be 1-90 s")
    redirect = new.get("standartPhoneRedirectNum") or ""
    if redirect and not FORWARDING.match(str(redirect)):
        problems.append(f"{num}: standartPhoneRedirectNum must be 10 digits, 8… or +7…")
    old_profiles = {p.get("id"): p for p in old.get("profiles", [])}
    for profile in new.get("profiles", []):
        problems += _validate_profile(num, profile, old_profiles.get(profile.get("id")))
    return problems


def _validate_profile(num: str, profile: dict, old: dict | None) -> list[str]:
    problems = []
    name = profile.get("name", profile.get("id"))
    if old is None:
        return [f"{num}: profile {profile.get('id')} does not exist"]
    if profile.get("workdayDefDay") != old.get("workdayDefDay") and not profile.get("isUseCalendar"):
        problems.append(f"{num}: profile {name}: workdayDefDay may be set only with isUseCalendar")
    coverage: dict[str, list[tuple[int, int]]] = {day: [] for day in WEEK}
    for block in profile.get("scheduleBlocks", []):
        if block.get("dialModeCode") not in (1, 2, 21):
            problems.append(f"{num}: block {block.get('nameTerm')}: dialModeCode must be 1, 2 or 21")
        for redirect in block.get("redirectNums", []):
            if not FORWARDING.match(str(redirect.get("num", ""))):
                problems.append(
                    f"{num}: block {block.get('nameTerm')}: forwarding number {redirect.get('num')} is not 10 digits, 8… or +7…"
                )
            dial_time = redirect.get("dialTime", 0)
            if not isinstance(dial_time, int) or not 0 <= dial_time <= 90:
                problems.append(f"{num}: block {block.get('nameTerm')}: dialTime must be 0-90 s")
        if not block.get("isActive", 1):
            continue
        days = (block.get("scheduleJson") or {}).get("schedule", {}).get("days", {})
        for day, spec in days.items():
            for span in (spec or {}).get("times", []):
                start, end = span.get("time_start"), span.get("time_end")
                if not all(isinstance(v, int) and 0 <= v <= DAY for v in (start, end)) or start > end:
                    problems.append(f"{num}: block {block.get('nameTerm')} day {day}: bad time range {start}-{end}")
                elif start < end and day in coverage:
                    coverage[day].append((start, end))
    for day, spans in coverage.items():
        cursor = 0
        for start, end in sorted(spans):
            if start > cursor:
                problems.append(f"{num}: profile {name} day {day}: gap {cursor}-{start}")
            elif start < cursor:
                problems.append(f"{num}: profile {name} day {day}: overlap {start}-{min(cursor, end)}")
            cursor = max(cursor, end)
        if cursor < DAY:
            problems.append(f"{num}: profile {name} day {day}: gap {cursor}-{DAY}")
    return problems


def apply_editable(old: dict, new: dict) -> dict:
    """The stored document with the editable fields of ``new`` applied."""
    merged = copy.deepcopy(old)
    for field in ("isDoNotDisturbMode", "standartPhoneRedirectNum", "standartPhoneDialTime", "vatsModeCode"):
        if field in new:
            merged[field] = new[field]
    if "profiles" in new:
        merged["profiles"] = copy.deepcopy(new["profiles"])
    return merged
