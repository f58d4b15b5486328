"""Plain domain records shared by the operator client, the ledger and the CRM adapters.

The records the call pipeline builds for every call (``CallRow``, ``Call``, ``Match``,
``Activity``) are slotted and not frozen: a frozen dataclass costs about 2 µs more to build,
several times per call on a backfill of 100,000 rows. Treat them as values all the same.
"""

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


@dataclass(slots=True)
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


class CallbackStatus(StrEnum):
    """The life of a click-to-call: queued → placing → placed | failed | unknown; or expired."""

    QUEUED = "queued"
    PLACING = "placing"
    PLACED = "placed"
    FAILED = "failed"
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # the operator may or may not have rung: never repeated


@dataclass(frozen=True)
class CallbackRequest:
    """A request to ring ``phone_from`` (a contract number) and connect it to ``phone_to``."""

    id: str
    source: str  # webhook, form, …
    phone_from: str  # 10 digits, the operator's PhoneFrom
    phone_to: str  # E.164
    operator_phone_to: str  # the operator's PhoneTo
    created_at: datetime
    phone_to_raw: str = ""
    status: CallbackStatus = CallbackStatus.QUEUED
    crm_user: str | None = None
    crm_context: dict[str, Any] | None = None
    idempotency_key: str | None = None
    reason: str | None = None
    request_hash: str | None = None
    placing_at: datetime | None = None
    finished_at: datetime | None = None


class CallStatus(StrEnum):
    ANSWERED = "answered"
    MISSED = "missed"
    VOICEMAIL = "voicemail"


@dataclass(slots=True)
class Call:
    """A call from the operator's history as the ledger keeps it (times in UTC)."""

    id: str  # stable key: the recording id when there is one, else a hash of the row's identity
    line: str
    direction: Direction
    status: CallStatus
    started_at: datetime
    duration: int
    ext_raw: str  # the external number exactly as the operator wrote it
    ext_e164: str | None  # E.164 whenever it parses at all; None for internal numbers and garbage
    ext_internal: bool
    service: str | None = None
    record_file_id: str | None = None
    is_read: int | None = None
    callback_request_id: str | None = None  # the click-to-call that made this call


@dataclass(frozen=True)
class Contact:
    """A CRM contact as the matcher sees it."""

    id: str
    name: str
    phones: tuple[str, ...]  # E.164
    updated_at: datetime | None = None


class MatchKind(StrEnum):
    CONTACT = "contact"  # exactly one contact
    MULTIPLE = "multiple"  # several; the policy chose
    CREATED = "created"  # none; the policy created one
    NONE = "none"  # none, or several and the policy said none (flagged for review)
    LEAD = "lead"  # none; the policy asks the CRM to create a lead with the call
    INTERNAL = "internal"  # a short internal number: never matched
    OWN = "own"  # one of our contract numbers: never matched
    UNPARSED = "unparsed"  # the operator's number did not parse


@dataclass(slots=True)
class Match:
    kind: MatchKind
    contact_ids: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()


@dataclass(slots=True)
class Activity:
    """A call as written into a CRM."""

    call_id: str
    direction: Direction
    status: CallStatus
    started_at: datetime
    duration: int
    line: str
    ext_e164: str | None
    ext_raw: str
    contact_ids: tuple[str, ...] = ()
    responsible_user: str | None = None
    recording_url: str | None = None
    callback_request_id: str | None = None
    callback_crm: dict[str, Any] | None = None  # the CRM context the click-to-call came with
    create_lead: bool = False  # no contact matched and MATCH_UNKNOWN is create_lead
