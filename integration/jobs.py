"""Thin RQ entry points: JSON-safe arguments in, dependencies from the process runtime,
orchestration from ``callbacks``, ``sync`` and ``delivery``. Each job reports its metrics."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from redis.exceptions import LockError
from rq import get_current_job
from rq.exceptions import DuplicateJobError

from integration import callbacks, delivery, events, sync
from integration.crm.base import CrmError, KnowsDeals, TakesEvents
from integration.crm.webhook.adapter import event_id
from integration.errors import IntegrationError, OperatorUnavailable
from integration.ledger.work import WorkKind
from integration.logs import fields
from integration.queues import (
    DEFAULT,
    digest,
    enqueue_delivery,
    enqueue_event,
    enqueue_fetch,
    enqueue_work,
    make_queue,
)
from integration.recordings import fetch
from integration.runtime import Runtime
from integration.settings import load_settings
from integration.sync import SyncResult
from integration.timeutil import utc_now
from integration.vats.redirects import set_redirect_active

log = logging.getLogger(__name__)
_runtime: Runtime | None = None


def use_runtime(runtime: Runtime | None) -> None:
    """Set the runtime jobs use (the worker sets it once; tests may swap it)."""
    global _runtime
    _runtime = runtime


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(load_settings())
    return _runtime


def measured(job: Callable) -> Callable:
    @functools.wraps(job)
    def run(*args, **kwargs):
        metrics = runtime().metrics
        started = time.perf_counter()
        outcome = "error"
        try:
            result = job(*args, **kwargs)
            outcome = "ok"
            return result
        finally:
            metrics.inc("vats_jobs_total", job=job.__name__, outcome=outcome)
            metrics.observe("vats_job_seconds", time.perf_counter() - started, job=job.__name__)
            metrics.flush()

    return run


@measured
def place_callback(request_id: str | None = None) -> dict:
    """Place one click-to-call at most once (no RQ retries on this job, on purpose).

    Enqueued without arguments: the job id is the request id.
    """
    job = get_current_job()
    request_id = request_id or (job.id if job else None)
    if request_id is None:
        raise TypeError("place_callback needs a request id (as an argument or as its job id)")
    rt = runtime()
    request = rt.intake.accepted(request_id) or rt.callback_ledger.get(request_id)
    if request is None:
        log.error("callback request not found; nothing placed", extra=fields(callback=request_id))
        return {"id": request_id, "status": "missing"}
    result = callbacks.place_callback(request, rt.callback_ledger, rt.operator, ttl=rt.settings.callback_ttl)
    rt.metrics.inc("vats_callbacks_total", outcome=result.status.value)
    level = logging.INFO if result.status.value == "placed" else logging.WARNING
    log.log(
        level,
        f"callback {result.status.value}",
        extra=fields(callback=result.id, line=result.phone_from, reason=result.reason),
    )
    if isinstance(rt.crm, TakesEvents) and result.status.value in FINISHED:
        # The CRM hears how it ended: callback.finished, sent (and retried) through the outbox.
        event = event_id("callback.finished", result.id)
        rt.outbox.add(event, "callback.finished", result.id, callbacks.public_view(result), utc_now())
        enqueue_event(make_queue(DEFAULT, rt.redis), event, attempt=0)
    return {"id": result.id, "status": result.status.value}


FINISHED = {"placed", "failed", "expired", "unknown"}


@measured
def send_event(event: str) -> str:
    """Send one outbox event (e.g. callback.finished) to the CRM."""
    rt = runtime()
    if not isinstance(rt.crm, TakesEvents):
        return "skipped: the CRM takes no events"
    status = delivery.send_event(event, outbox=rt.outbox, crm=rt.crm, now=utc_now(), deliveries=rt.delivery_ledger)
    rt.metrics.inc("vats_events_total", crm=rt.crm.name, outcome=status)
    return status


def stuck_after(rt: Runtime) -> timedelta:
    """How long a ``placing`` request may last: the operator call's own time limit, plus slack."""
    settings = rt.settings
    return timedelta(
        seconds=(settings.operator_connect_timeout + settings.operator_read_timeout)
        * (settings.operator_max_retries + 1)
        + 30
    )


@measured
def reap_stuck_callbacks() -> int:
    """Requests left in ``placing`` by a killed worker become ``unknown`` (never re-placed)."""
    rt = runtime()
    now = utc_now()
    reaped = rt.callback_ledger.reap_placing(now - stuck_after(rt), now)
    for request_id in reaped:
        log.warning("callback interrupted while placing; marked unknown", extra=fields(callback=request_id))
    return len(reaped)


SYNC_LOCK = "vats:sync:lock"
SYNC_LOCK_LEASE = 15 * 60


def run_sync(
    rt: Runtime, since: datetime | None = None, until: datetime | None = None, *, wait: float = 0
) -> SyncResult | None:
    """``sync.sync_calls`` with the settings, one at a time across every process (None: busy)."""
    settings = rt.settings
    lock = rt.redis.lock(SYNC_LOCK, timeout=SYNC_LOCK_LEASE, blocking_timeout=wait)
    if not lock.acquire(blocking=wait > 0):
        return None
    try:
        result = sync.sync_calls(
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
        )
        queue_deliveries(rt, result.new_ids)
        queue_recordings(rt, result.new_ids)
        return result
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("the sync lock lease ran out before the sync finished")


@measured
def sync_calls() -> dict:
    """Poll the call history from the cursor (the scheduler enqueues this every SYNC_INTERVAL)."""
    rt = runtime()
    result = run_sync(rt)
    if result is None:
        log.debug("sync skipped: another sync is running")
        return {"skipped": True}
    return {"found": result.found, "new": len(result.new_ids)}


def queue_deliveries(rt: Runtime, call_ids: list[str]) -> None:
    """Record pending deliveries for new calls (the ledger is the source of truth) and queue them."""
    if not call_ids:
        return
    crm = rt.crm.name
    rt.delivery_ledger.ensure(call_ids, crm, utc_now())
    queue = make_queue(DEFAULT, rt.redis)
    for call_id in call_ids:
        enqueue_delivery(queue, crm, call_id, attempt=0)


def queue_recordings(rt: Runtime, call_ids: list[str]) -> None:
    """Record a pending recording for each new call that has one, and queue its fetch."""
    found = rt.call_ledger.with_recordings(call_ids) if call_ids else []
    if not found:
        return
    rt.recording_ledger.ensure(found, utc_now())
    queue = make_queue(DEFAULT, rt.redis)
    for call_id, _ in found:
        enqueue_fetch(queue, call_id, attempt=0)


def fetch_recording_now(rt: Runtime, call_id: str) -> str:
    """``recordings.fetch.fetch_recording`` with this process's parts; announces what it stored."""
    status = fetch.fetch_recording(
        call_id, ledger=rt.recording_ledger, operator=rt.operator, store=rt.recording_store, now=utc_now()
    )
    if status == "stored":
        announce_recording(rt, call_id)
    return status


@measured
def fetch_recording(call_id: str) -> str:
    """Fetch and store one call's recording; "not ready yet" and faults are retried from the ledger."""
    rt = runtime()
    status = fetch_recording_now(rt, call_id)
    rt.metrics.inc("vats_recordings_total", outcome=status)
    return status


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
            enqueue_event(make_queue(DEFAULT, rt.redis), event, attempt=0)
    rt.recording_ledger.mark_announced(call_id)


@measured
def clean_recordings() -> int:
    """Delete recordings older than RECORDING_RETENTION_DAYS (the ledger says so), and partial
    files left by killed downloads."""
    rt = runtime()
    removed = rt.recording_store.remove_abandoned()
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


@measured
def handle_event(event_id: str) -> str:
    """Apply the rules to one CRM event: schedule callbacks, attach calls. Safe to run twice."""
    rt = runtime()
    event = rt.event_ledger.get(event_id)
    if event is None or event.handled_at is not None:
        return (event.outcome or "") if event else "missing"
    now = utc_now()
    try:
        data = event_data(rt, event)
        planned = events.plan(event.id, event.type, data, rt.settings, calls=rt.call_ledger, now=now)
        results = []
        for item in planned:
            if item.order is not None and item.at is not None:
                schedule_rule_callback(rt, event.id, item.rule.name, item.at)
            elif item.forwarding:
                for line in item.lines:
                    results.append(set_redirect_active(rt.operator, rt.redis, line, item.forwarding, item.rule.active))
            elif not item.skipped:
                rt.crm.attach_calls(str(data["deal_id"]), list(item.call_ids), f"{event.id}:{item.rule.name}")
    except IntegrationError as exc:
        if rt.event_ledger.fail_attempt(event.id, str(exc), now, retryable=exc.retryable) is not None:
            raise  # the sweeper runs the event again when it is due; every action is idempotent
        log.error("event failed", extra=fields(event=event.id, type=event.type, error=str(exc)))
        return "failed"
    outcome = "; ".join([item.describe() for item in planned] + results) or "no rule matched"
    rt.event_ledger.mark_handled(event.id, outcome, now)
    known = event.type in {rule.event for rule in rt.settings.rules}  # labels stay few, whatever is sent
    rt.metrics.inc(
        "vats_crm_events_total", type=event.type if known else "other", outcome="matched" if planned else "unmatched"
    )
    log.log(
        logging.INFO if planned else logging.DEBUG,
        "event handled",
        extra=fields(event=event.id, type=event.type, outcome=outcome),
    )
    return outcome


def event_data(rt: Runtime, event) -> dict:
    """The event's data, with the deal's numbers and responsible user from CRMs whose events
    name the deal only (amoCRM)."""
    if isinstance(rt.crm, KnowsDeals) and event.data.get("deal_id") and not events.phones_of(event.data):
        return rt.crm.deal_context(str(event.data["deal_id"])) | event.data
    return event.data


def schedule_rule_callback(rt: Runtime, event_id: str, rule_name: str, at: datetime) -> None:
    """``rule_callback`` at ``at`` through RQ's scheduler (kept in Redis: survives restarts)."""
    queue = make_queue(DEFAULT, rt.redis)
    job_id = f"rule-callback-{digest(f'{event_id}:{rule_name}')}-{int(at.timestamp())}"
    with contextlib.suppress(DuplicateJobError):
        queue.enqueue_at(
            at, "integration.jobs.rule_callback", event_id, rule_name, job_id=job_id, result_ttl=0, failure_ttl=86400
        )


@measured
def rule_callback(event_id: str, rule_name: str) -> str:
    """Place a rule's callback now — or, outside business hours, at their next opening."""
    rt = runtime()
    event = rt.event_ledger.get(event_id)
    rule = next((r for r in rt.settings.rules if r.name == rule_name), None)
    if event is None or rule is None:
        log.warning(
            "rule callback dropped: the event or the rule is gone", extra=fields(event=event_id, rule=rule_name)
        )
        return "dropped"
    now = utc_now()
    try:
        data = event_data(rt, event)
    except CrmError as exc:
        if not exc.retryable:
            log.warning("rule callback dropped", extra=fields(event=event_id, rule=rule_name, error=str(exc)))
            return f"dropped: {exc}"
        schedule_rule_callback(rt, event_id, rule_name, now + timedelta(seconds=60))
        return "CRM unavailable: tried again in a minute"
    planned = events.plan_callback(event_id, rule, data, rt.settings, now - timedelta(seconds=rule.delay))
    if planned.order is None or planned.at is None:
        return f"skipped: {planned.skipped}"
    if planned.at > now + timedelta(seconds=1):  # a late run (worker down) fell outside the hours
        schedule_rule_callback(rt, event_id, rule_name, planned.at)
        return f"moved to {planned.at.isoformat()}"
    accepted, new = rt.intake.submit(planned.order)
    return f"{'queued' if new else 'already requested'}: {accepted.id}"


def deliver_now(rt: Runtime, call_id: str) -> str:
    """``delivery.deliver_call`` with this process's settings and CRM."""
    settings = rt.settings
    return delivery.deliver_call(
        call_id,
        calls=rt.call_ledger,
        deliveries=rt.delivery_ledger,
        crm=rt.crm,
        policies=delivery.Policies(multiple=settings.match_multiple, unknown=settings.match_unknown),
        own_numbers=settings.operator_numbers,
        users_by_line=settings.users_by_line,
        region=settings.default_region,
        now=utc_now(),
        callbacks=rt.callback_ledger,
        recording_url=rt.recording_url,
    )


@measured
def deliver_call(call_id: str) -> str:
    """Write one call into the CRM (matching, mapping); failures are retried from the ledger."""
    rt = runtime()
    status = deliver_now(rt, call_id)
    rt.metrics.inc("vats_deliveries_total", crm=rt.crm.name, outcome=status)
    return status


HANDLERS: dict[str, Callable[[str], str]] = {
    WorkKind.DELIVER_CALL: deliver_call,
    WorkKind.SEND_EVENT: send_event,
    WorkKind.FETCH_RECORDING: fetch_recording,
    WorkKind.HANDLE_EVENT: handle_event,
}
"""The handler of each kind of work item: the job of that name, which reports its own metrics."""


def run_work_item(kind: str, subject: str, target: str = "") -> str:
    """The one RQ entry point for work items: run the handler of ``kind`` on ``subject``.

    (The handlers stay entry points of their own: jobs queued under their names still run.)"""
    handler = HANDLERS.get(kind)
    if handler is None:
        log.error("work item of an unknown kind; not run", extra=fields(kind=kind, subject=subject))
        return f"unknown kind: {kind}"
    if kind == WorkKind.DELIVER_CALL and target and target != runtime().crm.name:
        return f"skipped: for {target}, not this CRM"
    return handler(subject)


@measured
def retry_due_deliveries() -> int:
    """The one sweeper: queue every work item whose next attempt is due, of every kind (also those
    Redis lost), after making the items a crash cut short: deliveries and recordings of calls
    that have none, ``recording.ready`` of stored recordings not announced yet."""
    rt = runtime()
    crm = rt.crm.name
    rt.delivery_ledger.ensure(rt.delivery_ledger.undelivered_calls(crm), crm, utc_now())
    rt.recording_ledger.ensure(rt.recording_ledger.missing(), utc_now())
    for recording in rt.recording_ledger.unannounced():
        announce_recording(rt, recording.call_id)
    kinds: dict[str, str | None] = {
        WorkKind.DELIVER_CALL: crm,  # another CRM's deliveries wait for a deployment of that CRM
        WorkKind.FETCH_RECORDING: None,
        WorkKind.HANDLE_EVENT: None,
    }
    if isinstance(rt.crm, TakesEvents):
        kinds[WorkKind.SEND_EVENT] = None
    due = rt.work_ledger.due(utc_now(), limit=SWEEP_LIMIT * len(kinds), kinds=kinds)
    queue = make_queue(DEFAULT, rt.redis)
    for item in due:
        enqueue_work(queue, item.kind, item.subject, item.target, item.attempts)
    per_kind = Counter(item.kind for item in due)
    log.debug("due work queued", extra=fields(**{str(kind): count for kind, count in per_kind.items()}))
    return len(due)


SWEEP_LIMIT = 500  # items per kind and sweep (every 5 s), on average


@measured
def recheck_yesterday() -> dict:
    """Re-read the whole previous day (operator time) to catch rows that appeared late."""
    rt = runtime()
    today = datetime.combine(utc_now().astimezone(rt.settings.tz).date(), datetime.min.time(), rt.settings.tz)
    result = run_sync(rt, today - timedelta(days=1), today, wait=SYNC_LOCK_LEASE)
    return {"found": result.found, "new": len(result.new_ids)} if result else {"skipped": True}


@dataclass
class ReconcileReport:
    day: date
    operator_calls: int
    new_calls: int
    counts: dict[str, int]


def reconcile_day(rt: Runtime, day: date) -> ReconcileReport:
    """Make the CRM match the operator for one day (operator time), now: read the day again,
    record what is missing and deliver every pending call at once, retries included."""
    settings = rt.settings
    start = datetime.combine(day, datetime.min.time(), settings.tz)
    end = start + timedelta(days=1)
    result = run_sync(rt, start, end, wait=SYNC_LOCK_LEASE)
    if result is None:
        raise OperatorUnavailable("another sync held the lock for too long; try again")
    call_ids = [call.id for call in rt.call_ledger.between(start, end)]
    crm = rt.crm.name
    rt.delivery_ledger.ensure(call_ids, crm, utc_now())
    counts: dict[str, int] = {}
    for call_id in call_ids:
        status = deliver_now(rt, call_id)
        counts[status] = counts.get(status, 0) + 1
    return ReconcileReport(day=day, operator_calls=result.found, new_calls=len(result.new_ids), counts=counts)
