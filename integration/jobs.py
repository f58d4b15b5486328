"""RQ entry points: each takes the worker's runtime first (``RuntimeJob`` passes it), resolves
its JSON-safe arguments, calls a service and reports its metrics. Nothing else lives here."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

from rq import get_current_job
from rq.job import Job

from integration.errors import IntegrationError
from integration.ledger.work import WorkKey, WorkKind
from integration.logs import fields
from integration.runtime import Runtime
from integration.services import callbacks, calls, deliveries, recordings, rules, sweeper
from integration.timeutil import utc_now

log = logging.getLogger(__name__)


class RuntimeJob(Job):
    """RQ's job, calling our entry points with the worker's runtime as their first argument
    (``Worker(job_class=RuntimeJob.bound_to(runtime))``); other functions are called as RQ would."""

    runtime: ClassVar[Runtime]

    @classmethod
    def bound_to(cls, runtime: Runtime) -> type[RuntimeJob]:
        return type("BoundRuntimeJob", (cls,), {"runtime": runtime})

    @property
    def func(self):
        func = super().func
        return functools.partial(func, self.runtime) if getattr(func, "takes_runtime", False) else func


def takes_runtime(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``func(rt, …)`` as an entry point: ``RuntimeJob`` passes it ``rt``."""
    func.takes_runtime = True  # type: ignore[attr-defined]
    return func


def entry_point(job: Callable[..., Any]) -> Callable[..., Any]:
    """An entry point (``takes_runtime``) whose runs are counted and timed."""

    @functools.wraps(job)
    def run(rt: Runtime, *args, **kwargs):
        started = time.perf_counter()
        outcome = "error"
        try:
            result = job(rt, *args, **kwargs)
            outcome = "ok"
            return result
        finally:
            rt.metrics.inc("vats_jobs_total", job=job.__name__, outcome=outcome)
            rt.metrics.observe("vats_job_seconds", time.perf_counter() - started, job=job.__name__)
            rt.metrics.flush()

    return takes_runtime(run)


@entry_point
def place_callback(rt: Runtime, request_id: str | None = None) -> dict:
    """Place one click-to-call at most once (no RQ retries on this job, on purpose).

    Enqueued without arguments: the job id is the request id.
    """
    job = get_current_job()
    request_id = request_id or (job.id if job else None)
    if request_id is None:
        raise TypeError("place_callback needs a request id (as an argument or as its job id)")
    result = callbacks.place_callback(rt, request_id)
    if result is None:
        return {"id": request_id, "status": "missing"}
    rt.metrics.inc("vats_callbacks_total", outcome=result.status.value)
    return {"id": result.id, "status": result.status.value}


@entry_point
def reap_stuck_callbacks(rt: Runtime) -> int:
    return callbacks.reap_stuck_callbacks(rt)


@entry_point
def sync_calls(rt: Runtime) -> dict:
    """Poll the call history from the cursor (the scheduler enqueues this every SYNC_INTERVAL)."""
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


@entry_point
def clean_recordings(rt: Runtime) -> int:
    return recordings.clean_recordings(rt)


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
    try:
        return handler(rt, subject, *([target] if kind in TARGETED else []))
    except IntegrationError:
        raise  # the handler counted the attempt under the retry policy
    except Exception as exc:
        # Unforeseen (Redis, the database): count the attempt, so the sweeper queues the next one
        # under a new job id instead of waiting for this failed job to expire.
        rt.work_ledger.fail_attempt(WorkKey(kind, subject, target), type(exc).__name__, utc_now(), retryable=True)
        raise


@entry_point
def retry_due_deliveries(rt: Runtime) -> int:
    """The sweeper (every 5 s): queue every work item whose next attempt is due."""
    return sweeper.sweep(rt)
