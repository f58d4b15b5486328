"""Plain domain records shared by the operator client, the ledger and the CRM adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TokenPair:
    """An operator access/refresh pair with UTC expiry times."""

    access_token: str = field(repr=False)
    access_expires_at: datetime
    refresh_token: str = field(repr=False)
    refresh_expires_at: datetime


@dataclass(frozen=True)
class CallRow:
    """One row of the operator's call history, times in UTC, the external number as given."""

    started_at: datetime
    line: str | None
    direction: Direction
    ext_num: str
    duration: int
    service: str | None = None
    record_file_id: str | None = None
    is_read: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class CallFilter:
    """The optional filters of a call-history request."""

    direction: Direction | None = None
    duration_from: int | None = None
    duration_to: int | None = None
    only_recorded: bool = False
    is_read: int | None = None


@dataclass(frozen=True)
class CallbackPlaced:
    """The operator accepted a callback order."""

    request_hash: str | None


@dataclass(frozen=True)
class RecordingFile:
    """A downloaded recording: what was written to the sink, and how to check it."""

    record_file_id: str
    file_name: str | None
    size: int
    sha256: str
    request_hash: str | None = None


@dataclass(frozen=True)
class PbxSettings:
    """PBX routing settings of one number; ``raw`` is the operator's document, unchanged."""

    num: str
    name: str | None
    mode_code: int | None
    do_not_disturb: bool
    raw: dict[str, Any] = field(compare=False)
