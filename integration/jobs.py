"""RQ entry points: each takes the worker's runtime first (``RuntimeJob`` passes it), resolves
its JSON-safe arguments, calls a service and reports its metrics. Nothing else lives here."""

from __future__ import annotations

import functools
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, ClassVar

from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from integration.accounts import AccountError
from integration.callbacks import JOB as CALLBACK_JOB
from integration.callbacks import job_options
from integration.errors import IntegrationError
from integration.keys import DEFAULT_ACCOUNT
from integration.ledger.work import WorkKey, WorkKind
from integration.logs import fields
from integration.queues import CALLBACKS, make_queue
from integration.queues import DEFAULT as DEFAULT_QUEUE
from integration.runtime import Runtime
from integration.runtimes import AccountRuntimes
from integration.services import callbacks, calls, deliveries, recordings, rules, sweeper
from integration.timeutil import utc_now

log = logging.getLogger(__name__)


class RuntimeJob(Job):
    """RQ's job, calling our entry points with the runtime of the account its meta names (the
    environment's when it names none) as their first argument
    (``Worker(job_class=RuntimeJob.bound_to(runtimes))``); deployment-wide entry points get every
    account's runtimes; other functions are called as RQ would."""

    runtimes: ClassVar[AccountRuntimes]

    @classmethod
    def bound_to(cls, runtimes: AccountRuntimes) -> type[RuntimeJob]:
        return type("BoundRuntimeJob", (cls,), {"runtimes": runtimes})

    @property
    def func(self):
        func = super().func
        if getattr(func, "takes_runtimes", False):
            return functools.partial(func, self.runtimes)
        if not getattr(func, "takes_runtime", False):
            return func
        account = (self.meta or {}).get("account", DEFAULT_ACCOUNT)
        try:
            return functools.partial(func, self.runtimes.get(account))
        except AccountError:
            return functools.partial(_not_served, account, self.func_name or "")


def _not_served(account: str, name: str, *args, **kwargs) -> str:
    """A job of an account that is disabled or deleted: not run (the ledger keeps its work)."""
    log.info("job of an account not served; skipped", extra=fields(account=account, job=name))
    return f"skipped: account {account} is not served"


def takes_runtime(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``func(rt, …)`` as an entry point: ``RuntimeJob`` passes it ``rt``."""
    func.takes_runtime = True  # type: ignore[attr-defined]
    return func


def takes_runtimes(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``func(runtimes, …)`` as a deployment-wide entry point: ``RuntimeJob`` passes every
    account's runtimes."""
    func.takes_runtimes = True  # type: ignore[attr-defined]
    return func


def entry_point(job: Callable[..., Any] | None = None, *, deployment: bool = False):
    """An entry point whose runs are counted and timed: ``job(rt, …)`` (``takes_runtime``), or
    with ``deployment=True`` ``job(runtimes, …)`` (``takes_runtimes``: work of every account)."""

    def decorate(job: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(job)
        def run(context: Runtime | AccountRuntimes, *args, **kwargs):
            metrics = context.metrics
            started = time.perf_counter()
            outcome = "error"
            try:
                result = job(context, *args, **kwargs)
                outcome = "ok"
                return result
            finally:
                metrics.inc("vats_jobs_total", job=job.__name__, outcome=outcome)
                metrics.observe("vats_job_seconds", time.perf_counter() - started, job=job.__name__)
                metrics.flush()

        return takes_runtimes(run) if deployment else takes_runtime(run)

    return decorate(job) if job is not None else decorate


@entry_point
def place_callback(rt: Runtime, request_id: str | None = None) -> dict:
    """Place one click-to-call at most once (no RQ retries on this job, on purpose).

    Enqueued without arguments: the job id is the request id.
    """
    job = get_current_job()
    request_id = request_id or (job.id if job else None)
    if request_id is None:
        raise TypeError("place_callback needs a request id (as an argument or as its job id)")
    with rt.callback_slots.hold() as taken:
        if not taken:  # the account's click-to-calls hold its workers (a slow contract): in a second
            wait_for_a_slot(rt, request_id)
            return {"id": request_id, "status": "waiting"}
        result = callbacks.place_callback(rt, request_id)
    if result is None:
        return {"id": request_id, "status": "missing"}
    rt.metrics.inc("vats_callbacks_total", outcome=result.status.value)
    return {"id": result.id, "status": result.status.value}


SLOT_WAIT = timedelta(seconds=1)
REPAIR_EVERY = 600.0  # seconds between an account's repairs in one process (three queries each)


def wait_for_a_slot(rt: Runtime, request_id: str) -> None:
    """Place the request later (RQ's scheduler queues it again in ``SLOT_WAIT``); a request that
    waits past CALLBACK_TTL expires instead of ringing late."""
    make_queue(CALLBACKS, rt.redis).enqueue_in(
        SLOT_WAIT,
        CALLBACK_JOB,
        args=(request_id,),
        job_id=f"{request_id}-{uuid.uuid4().hex[:8]}",
        meta={"account": rt.account},
        **job_options(rt.settings.callback_ttl),
    )


@entry_point(deployment=True)
def reap_stuck_callbacks(runtimes: AccountRuntimes) -> int:
    """Requests a killed worker left ``placing`` become ``unknown``, in every account."""
    return callbacks.reap_accounts(runtimes)


@entry_point
def sync_calls(rt: Runtime) -> dict:
    """Make the work a crash cut short (every ``REPAIR_EVERY`` in this process), then poll the
    call history from the cursor (the scheduler enqueues this for each account every SYNC_INTERVAL)."""
    if time.monotonic() - rt.repaired_at >= REPAIR_EVERY:
        sweeper.repair(rt)
        rt.repaired_at = time.monotonic()
    result = calls.run_sync(rt)
    if result is None:
        log.debug("sync skipped: another sync is running")
        return {"skipped": True}
    return {"found": result.found, "new": len(result.new_ids)}


@entry_point
def recheck_yesterday(rt: Runtime) -> dict:
    result = calls.recheck_yesterday(rt)
    return {"found": result.found, "new": len(result.new_ids)} if result else {"skipped": True}


@entry_point
def deliver_call(rt: Runtime, call_id: str) -> str:
    """Write one call into the CRM (matching, mapping); failures are retried from the ledger."""
    status = deliveries.deliver_call(rt, call_id)
    rt.metrics.inc("vats_deliveries_total", crm=rt.crm.name, outcome=status)
    return status


@entry_point
def send_event(rt: Runtime, event: str) -> str:
    """Send one outbox event (e.g. callback.finished) to the CRM."""
    status = deliveries.send_event(rt, event)
    rt.metrics.inc("vats_events_total", crm=rt.crm.name, outcome=status)
    return status


@entry_point
def fetch_recording(rt: Runtime, call_id: str) -> str:
    """Fetch and store one call's recording; "not ready yet" and faults are retried from the ledger."""
    status = recordings.fetch_recording(rt, call_id)
    rt.metrics.inc("vats_recordings_total", outcome=status)
    return status


@entry_point(deployment=True)
def clean_recordings(runtimes: AccountRuntimes) -> int:
    """Recordings past RECORDING_RETENTION_DAYS are deleted, in every account."""
    return recordings.clean_accounts(runtimes)


@entry_point
def handle_event(rt: Runtime, event_id: str) -> str:
    return rules.handle_event(rt, event_id)


@entry_point
def rule_callback(rt: Runtime, event_id: str, rule_name: str) -> str:
    return rules.rule_callback(rt, event_id, rule_name)


HANDLERS: dict[str, Callable[..., str]] = {
    WorkKind.DELIVER_CALL: deliver_call,
    WorkKind.SEND_EVENT: send_event,
    WorkKind.FETCH_RECORDING: fetch_recording,
    WorkKind.HANDLE_EVENT: handle_event,
    WorkKind.RULE_CALLBACK: rule_callback,
}
"""The handler of each kind of work item: the entry point of that name, which reports its own
metrics and counts an attempt that failed with an ``IntegrationError`` under the retry policy."""
TARGETED = {WorkKind.RULE_CALLBACK}  # kinds whose handler takes the target (the rule) too
BUSY_DEFER = (3.0, 8.0)  # seconds a work item waits when its account's workers are all busy


@takes_runtime  # the handler it runs counts itself
def run_work_item(rt: Runtime, kind: str, subject: str, target: str = "") -> str:
    """The one RQ entry point for work items: run the handler of ``kind`` on ``subject``.

    (The handlers stay entry points of their own: jobs queued under their names still run.)"""
    handler = HANDLERS.get(kind)
    if handler is None:
        log.error("work item of an unknown kind; not run", extra=fields(kind=kind, subject=subject))
        return f"unknown kind: {kind}"
    if kind == WorkKind.DELIVER_CALL and target and target != rt.crm.name:
        return f"skipped: for {target}, not this CRM"
    key = WorkKey(kind, subject, target)
    with rt.slots.hold() as taken:
        if not taken:  # the account's work already holds ACCOUNT_CONCURRENCY workers: later
            rt.work_ledger.defer(key, utc_now() + timedelta(seconds=random.uniform(*BUSY_DEFER)))
            return "deferred: the account's other work holds its workers"
        try:
            return handler(rt, subject, *([target] if kind in TARGETED else []))
        except IntegrationError:
            raise  # the handler counted the attempt under the retry policy
        except Exception as exc:
            # Unforeseen (Redis, the database): count the attempt, so the sweeper queues the next
            # one under a new job id instead of waiting for this failed job to expire.
            rt.work_ledger.fail_attempt(key, type(exc).__name__, utc_now(), retryable=True)
            raise


@entry_point(deployment=True)
def retry_due_deliveries(runtimes: AccountRuntimes) -> int:
    """The sweeper (every 5 s): queue every work item whose next attempt is due, in every account."""
    return sweeper.sweep_accounts(runtimes)


RECONCILE_JOB = "integration.jobs.reconcile_day"
RECONCILE_KEPT = 86400  # seconds a reconcile's summary stays readable


@entry_point
def reconcile_day(rt: Runtime, day: str) -> dict:
    """``calls.reconcile_day`` for a person who asked from the console: its summary."""
    report = calls.reconcile_day(rt, date.fromisoformat(day))
    return {"day": day, "operator_calls": report.operator_calls, "new_calls": report.new_calls, "counts": report.counts}


def queue_reconcile(rt: Runtime, day: date) -> str:
    """Queue a reconcile of ``day`` for the account; the job's id, to read its outcome by."""
    job = make_queue(DEFAULT_QUEUE, rt.redis).enqueue_call(
        RECONCILE_JOB,
        args=(day.isoformat(),),
        job_id=f"{rt.account}-reconcile-{uuid.uuid4().hex}",
        meta={"account": rt.account},
        result_ttl=RECONCILE_KEPT,
        failure_ttl=RECONCILE_KEPT,
        timeout=calls.SYNC_LOCK_LEASE + 600,
    )
    return job.id


@dataclass(frozen=True)
class Outcome:
    status: str  # RQ's: queued, started, finished, failed…
    result: dict | None
    error: str | None


def reconcile_outcome(rt: Runtime, job_id: str) -> Outcome | None:
    """A reconcile job of this account (None: no such job, or another account's)."""
    try:
        job = Job.fetch(job_id, connection=rt.redis, serializer=JSONSerializer)
    except NoSuchJobError:
        return None
    if job.func_name != RECONCILE_JOB or (job.meta or {}).get("account") != rt.account:
        return None
    status = job.get_status().value
    error = None
    if status == "failed":
        latest = job.latest_result()
        trace = (latest.exc_string if latest else None) or ""
        error = trace.strip().splitlines()[-1] if trace.strip() else "the reconcile failed"
    return Outcome(status, job.return_value() if status == "finished" else None, error)
