"""Click-to-call (flow 1), without Flask or RQ.

- ``CallbackIntake.submit`` (web side): one Redis round trip claims the idempotency and debounce
  keys, stores a status record and enqueues ``place_callback``; a duplicate gets the existing
  request back and never a second job.
- ``place_callback`` (worker side): at most one ``callback/create`` per request. The request is
  moved to ``placing`` in a committed transaction *before* the operator is called; a job that
  finds it already ``placing`` or later never calls again.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from redis import Redis

from integration.config import Settings
from integration.errors import InvalidPhoneNumber, OperatorError, OutcomeUnknown
from integration.keys import DEFAULT_ACCOUNT, scoped
from integration.ledger.callbacks import CallbackLedger
from integration.models import CallbackRequest, CallbackStatus
from integration.operator.client import OperatorClient
from integration.phone import NumberType, Phone, parse_dialable
from integration.queues import Claim, Enqueuer
from integration.timeutil import utc_now

log = logging.getLogger(__name__)

JOB = "integration.jobs.place_callback"
IDEMPOTENCY_TTL = 24 * 3600
RECORD_TTL = 24 * 3600
QUEUE_GRACE = 60  # RQ drops the job this long after CALLBACK_TTL; the job itself expires it at TTL
JOB_TIMEOUT = 180  # seconds: far above the operator's time limits, so RQ never kills a placing call


def job_options(ttl: int) -> dict:
    """RQ options of the ``place_callback`` job (no arguments: the job id is the request id)."""
    return {
        "ttl": ttl + QUEUE_GRACE,
        "timeout": JOB_TIMEOUT,
        "result_ttl": 0,  # the ledger is the record; skipping RQ's result keeps workers quick
        "failure_ttl": 7 * 86400,
    }


def record_key(request_id: str, account: str = DEFAULT_ACCOUNT) -> str:
    """Where the accepted request waits for a worker (an account reads only its own)."""
    return scoped(account, f"vats:callback:{request_id}")


def to_json(request: CallbackRequest) -> dict[str, Any]:
    data = {field.name: getattr(request, field.name) for field in fields(request)}
    for name in ("created_at", "placing_at", "finished_at"):
        data[name] = data[name].isoformat() if data[name] else None
    data["status"] = request.status.value
    return data


def from_json(data: dict[str, Any]) -> CallbackRequest:
    values = dict(data)
    for name in ("created_at", "placing_at", "finished_at"):
        values[name] = datetime.fromisoformat(values[name]) if values.get(name) else None
    values["status"] = CallbackStatus(values.get("status", "queued"))
    return CallbackRequest(**values)


def public_view(request: CallbackRequest) -> dict[str, Any]:
    """A request as the status API and the ``callback.finished`` event show it."""

    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": request.id,
        "status": request.status.value,
        "source": request.source,
        "from": request.phone_from,
        "to": request.phone_to,
        "to_raw": request.phone_to_raw,
        "created_at": iso(request.created_at),
        "placing_at": iso(request.placing_at),
        "finished_at": iso(request.finished_at),
        "reason": request.reason,
        "request_hash": request.request_hash,
        "crm_user": request.crm_user,
        "crm": request.crm_context,
    }


def dialable_destination(raw: object, settings: Settings) -> Phone:
    """A number we may dial, under the toll-fraud rules of the settings (``InvalidPhoneNumber``)."""
    phone = parse_dialable(raw, settings.default_region)
    if phone.type is NumberType.PREMIUM_RATE and not settings.allow_premium_numbers:
        raise InvalidPhoneNumber(raw, "premium-rate numbers are not dialled (ALLOW_PREMIUM_NUMBERS is off)")
    region = phone.tariff_region
    if region != settings.default_region and not settings.allow_international_numbers:
        where = {"AB": "Abkhazia, charged as international"}.get(region or "", region or "another zone")
        raise InvalidPhoneNumber(
            raw, f"international numbers are not dialled (ALLOW_INTERNATIONAL_NUMBERS is off; this one is in {where})"
        )
    return phone


@dataclass(frozen=True)
class ClickToCall:
    """A validated order: ring ``phone_from``, then connect ``destination``."""

    phone_from: str
    destination: Phone
    source: str = "webhook"
    idempotency_key: str | None = None
    crm_user: str | None = None
    crm_context: dict[str, Any] | None = None


class CallbackIntake:
    def __init__(
        self,
        redis: Redis,
        enqueuer: Enqueuer,
        *,
        ttl: int,
        debounce: int,
        clock: Callable[[], datetime] = utc_now,
        account: str = DEFAULT_ACCOUNT,
    ):
        self.redis = redis
        self.enqueuer = enqueuer
        self.ttl = ttl
        self.debounce = debounce
        self.clock = clock
        self.account = account  # its idempotency and debounce claims are this account's

    def submit(self, order: ClickToCall) -> tuple[CallbackRequest, bool]:
        """Accept an order; returns the request and whether it is new (False: a duplicate)."""
        request = CallbackRequest(
            id=uuid.uuid4().hex,
            source=order.source,
            phone_from=order.phone_from,
            phone_to=order.destination.e164 or "",
            phone_to_raw=order.destination.raw,
            operator_phone_to=order.destination.phone_to,
            created_at=self.clock(),
            crm_user=order.crm_user,
            crm_context=order.crm_context,
            idempotency_key=order.idempotency_key,
        )
        claims = []
        if order.idempotency_key:
            key = scoped(self.account, f"vats:idempotency:{order.source}:{order.idempotency_key}")
            claims.append(Claim(key, IDEMPOTENCY_TTL))
        if self.debounce:
            key = scoped(self.account, f"vats:debounce:{request.phone_from}:{request.phone_to}")
            claims.append(Claim(key, self.debounce))
        payload = to_json(request)
        created, request_id = self.enqueuer.claim_and_enqueue(
            claims,
            request.id,
            job_id=request.id,
            account=self.account,
            extra=[("SET", record_key(request.id, self.account), json.dumps(payload), "EX", RECORD_TTL)],
        )
        if created:
            return request, True
        existing = self.queued_record(request_id)
        return (existing or replace(request, id=request_id)), False

    def accepted(self, request_id: str) -> CallbackRequest | None:
        """The request exactly as accepted (kept in Redis for a day), or None."""
        raw = self.redis.get(record_key(request_id, self.account))
        return from_json(json.loads(raw)) if raw is not None else None

    def queued_record(self, request_id: str) -> CallbackRequest | None:
        """The accepted request as seen before a worker recorded it in the ledger."""
        request = self.accepted(request_id)
        if request is None:
            return None
        if self.clock() - request.created_at > timedelta(seconds=self.ttl):
            return replace(request, status=CallbackStatus.EXPIRED, reason="no worker took it in time")
        return request


def current_status(request_id: str, ledger: CallbackLedger, intake: CallbackIntake) -> CallbackRequest | None:
    """The ledger's record, or the accepted one still waiting in the queue."""
    return ledger.get(request_id) or intake.queued_record(request_id)


def place_callback(
    request: CallbackRequest,
    ledger: CallbackLedger,
    operator: OperatorClient,
    *,
    ttl: int,
    clock: Callable[[], datetime] = utc_now,
) -> CallbackRequest:
    """Place one accepted request, at most once. Returns the request as the ledger now has it."""
    now = clock()
    stored, claimed = ledger.start_placing(request, now, accepted_after=now - timedelta(seconds=ttl))
    if not claimed:
        return _settle_unclaimed(stored, ledger, now, ttl)
    try:
        placed = operator.create_callback(request.operator_phone_to, request.phone_from)
    except OutcomeUnknown as exc:
        ledger.transition(
            request.id, [CallbackStatus.PLACING], CallbackStatus.UNKNOWN, finished_at=clock(), reason=str(exc)
        )
    except OperatorError as exc:
        ledger.transition(
            request.id, [CallbackStatus.PLACING], CallbackStatus.FAILED, finished_at=clock(), reason=str(exc)
        )
    else:
        ledger.transition(
            request.id,
            [CallbackStatus.PLACING],
            CallbackStatus.PLACED,
            finished_at=clock(),
            request_hash=placed.request_hash,
        )
    return _reread(ledger, request.id)


def _settle_unclaimed(stored: CallbackRequest, ledger: CallbackLedger, now: datetime, ttl: int) -> CallbackRequest:
    """This run may not call the operator: say why in the ledger, once."""
    if stored.status is CallbackStatus.PLACING:
        # A previous run was interrupted after it may have called the operator.
        ledger.transition(
            stored.id,
            [CallbackStatus.PLACING],
            CallbackStatus.UNKNOWN,
            finished_at=now,
            reason="interrupted while placing the call; it was not repeated",
        )
    elif stored.status is CallbackStatus.QUEUED:  # too old to place
        ledger.transition(
            stored.id,
            [CallbackStatus.QUEUED],
            CallbackStatus.EXPIRED,
            finished_at=now,
            reason=f"waited more than CALLBACK_TTL ({ttl} s) in the queue; not placed late",
        )
    return _reread(ledger, stored.id)


def _reread(ledger: CallbackLedger, request_id: str) -> CallbackRequest:
    """A request this process has just written (requests are never deleted)."""
    request = ledger.get(request_id)
    if request is None:
        raise LookupError(f"callback request {request_id} vanished from the ledger")
    return request
