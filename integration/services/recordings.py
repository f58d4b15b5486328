"""Recordings: fetch one, announce it to a CRM that takes events, remove old ones."""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import date, datetime, timedelta

from integration.accounts import AccountError
from integration.crm.base import TakesEvents
from integration.errors import OperatorUnavailable
from integration.ledger.outbox import event_id
from integration.ledger.work import WorkKind
from integration.logs import fields
from integration.recordings import fetch
from integration.runtime import Runtime
from integration.runtimes import AccountRuntimes
from integration.services.calls import SYNC_LOCK_LEASE, run_sync
from integration.timeutil import utc_now

log = logging.getLogger(__name__)


def fetch_recording(rt: Runtime, call_id: str) -> str:
    """``recordings.fetch.fetch_recording`` with this process's parts; announces what it stored."""
    status = fetch.fetch_recording(
        call_id, ledger=rt.recording_ledger, operator=rt.operator, store=rt.recording_store, now=utc_now()
    )
    if status == "stored":
        announce_recording(rt, call_id)
    return status


def fetch_day(rt: Runtime, day: date) -> tuple[int, dict[str, int]]:
    """Fetch every recording of a day's calls (operator time) now, failed ones once more; returns
    how many calls have one, and the fetches' outcomes counted."""
    start = datetime.combine(day, datetime.min.time(), rt.settings.tz)
    end = start + timedelta(days=1)
    if run_sync(rt, start, end, wait=SYNC_LOCK_LEASE) is None:
        raise OperatorUnavailable("another sync held the lock for too long; try again")
    found = rt.call_ledger.with_recordings([call.id for call in rt.call_ledger.between(start, end)])
    rt.recording_ledger.ensure(found, utc_now())
    rt.recording_ledger.retry([call_id for call_id, _ in found], utc_now())
    counts: dict[str, int] = {}
    for call_id, _ in found:
        status = fetch_recording(rt, call_id)
        counts[status] = counts.get(status, 0) + 1
    return len(found), counts


def announce_recording(rt: Runtime, call_id: str) -> None:
    """Put ``recording.ready`` in the outbox (CRMs that take events); the sweeper repeats this
    for a recording whose announcement a crash cut short."""
    recording = rt.recording_ledger.get(call_id)
    if recording is None:
        return
    if isinstance(rt.crm, TakesEvents) and recording.status == "stored":
        event = event_id("recording.ready", recording.id)
        data = {
            "call_id": call_id,
            "recording_id": recording.id,
            "url": rt.links.url(recording.id, time.time()),
            "content_type": "audio/mpeg",
            "size": recording.size,
            "sha256": recording.sha256,
        }
        if rt.outbox.add(event, "recording.ready", call_id, data, utc_now()):
            rt.queue_work(WorkKind.SEND_EVENT, event)
    rt.recording_ledger.mark_announced(call_id)


def clean_recordings(rt: Runtime, *, abandoned: bool = True) -> int:
    """Delete recordings older than RECORDING_RETENTION_DAYS (the ledger says so), and (with
    ``abandoned``) partial files left by killed downloads."""
    removed = rt.recording_store.remove_abandoned() if abandoned else 0
    days = rt.settings.recording_retention_days
    if days:
        now = utc_now()
        for recording in rt.recording_ledger.stored_before(now - timedelta(days=days), limit=10_000):
            if recording.storage_key:
                rt.recording_store.delete(recording.storage_key)
            rt.recording_ledger.mark_deleted(recording.call_id, now)
            removed += 1
    if removed:
        log.info("recordings removed", extra=fields(removed=removed, retention_days=days or None))
    return removed


def clean_accounts(runtimes: AccountRuntimes) -> int:
    """``clean_recordings`` in every served account."""
    # Every stored account's directory lies under the default's: one walk finds every partial file.
    removed = runtimes.default.recording_store.remove_abandoned()
    for account in runtimes.enabled_ids():
        with contextlib.suppress(AccountError):  # disabled meanwhile: its recordings wait
            removed += clean_recordings(runtimes.get(account), abandoned=False)
    return removed
