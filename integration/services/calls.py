"""The call history: one sync at a time across every process, new calls' deliveries and
recordings queued, a day reconciled."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from redis.exceptions import LockError

from integration import sync
from integration.errors import OperatorUnavailable
from integration.ledger.work import WorkKind
from integration.queues import BULK_AFTER
from integration.runtime import Runtime
from integration.services.deliveries import deliver_call
from integration.sync import SyncResult
from integration.timeutil import utc_now

log = logging.getLogger(__name__)

SYNC_LOCK = "vats:sync:lock"
SYNC_LOCK_LEASE = 15 * 60


def run_sync(
    rt: Runtime, since: datetime | None = None, until: datetime | None = None, *, wait: float = 0
) -> SyncResult | None:
    """``sync.sync_calls`` with the settings, one at a time across every process (None: busy)."""
    settings = rt.settings
    lock = rt.redis.lock(rt.key(SYNC_LOCK), timeout=SYNC_LOCK_LEASE, blocking_timeout=wait)
    if not lock.acquire(blocking=wait > 0):
        return None
    stored: list[str] = []  # every slice's new calls, also when a later slice fails
    try:
        return sync.sync_calls(
            rt.operator,
            rt.call_ledger,
            settings.operator_numbers,
            now=utc_now(),
            tz=settings.tz,
            region=settings.default_region,
            overlap=timedelta(seconds=settings.sync_overlap),
            first_window=timedelta(seconds=settings.sync_first_window),
            since=since,
            until=until,
            callbacks=rt.callback_ledger,
            on_stored=stored.extend,
        )
    finally:
        queue_deliveries(rt, stored)
        queue_recordings(rt, stored)
        try:
            lock.release()
        except LockError:
            log.warning("the sync lock lease ran out before the sync finished")


def queue_deliveries(rt: Runtime, call_ids: list[str]) -> None:
    """Record pending deliveries for new calls (the ledger is the source of truth) and queue them."""
    if not call_ids:
        return
    crm = rt.crm.name
    rt.delivery_ledger.ensure(call_ids, crm, utc_now())
    for call_id in call_ids:
        rt.queue_work(WorkKind.DELIVER_CALL, call_id, crm, bulk=len(call_ids) > BULK_AFTER)


def queue_recordings(rt: Runtime, call_ids: list[str]) -> None:
    """Record a pending recording for each new call that has one, and queue its fetch."""
    found = rt.call_ledger.with_recordings(call_ids) if call_ids else []
    if not found:
        return
    rt.recording_ledger.ensure(found, utc_now())
    for call_id, _ in found:
        rt.queue_work(WorkKind.FETCH_RECORDING, call_id, bulk=len(found) > BULK_AFTER)


def recheck_yesterday(rt: Runtime) -> SyncResult | None:
    """Re-read the whole previous day (operator time) to catch rows that appeared late."""
    tz = rt.settings.tz
    today = datetime.combine(utc_now().astimezone(tz).date(), datetime.min.time(), tz)
    return run_sync(rt, today - timedelta(days=1), today, wait=SYNC_LOCK_LEASE)


@dataclass
class ReconcileReport:
    day: date
    operator_calls: int
    new_calls: int
    counts: dict[str, int]


def reconcile_day(rt: Runtime, day: date) -> ReconcileReport:
    """Make the CRM match the operator for one day (operator time), now: read the day again,
    record what is missing and deliver every pending call at once, retries included."""
    start = datetime.combine(day, datetime.min.time(), rt.settings.tz)
    end = start + timedelta(days=1)
    result = run_sync(rt, start, end, wait=SYNC_LOCK_LEASE)
    if result is None:
        raise OperatorUnavailable("another sync held the lock for too long; try again")
    call_ids = [call.id for call in rt.call_ledger.between(start, end)]
    rt.delivery_ledger.ensure(call_ids, rt.crm.name, utc_now())
    counts: dict[str, int] = {}
    for call_id in call_ids:
        status = deliver_call(rt, call_id)
        counts[status] = counts.get(status, 0) + 1
    return ReconcileReport(day=day, operator_calls=result.found, new_calls=len(result.new_ids), counts=counts)
