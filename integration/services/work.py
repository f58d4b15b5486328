"""Work that is stuck, retried by a person: the failed items (and those failing their retries)
become due now and are queued at once (the sweeper would find them too: the ledger is the
truth)."""

from __future__ import annotations

from integration.ledger.work import WorkItem
from integration.queues import BULK_AFTER
from integration.runtime import Runtime
from integration.timeutil import utc_now

MOST_AT_ONCE = 10_000  # "retry all" takes this many at most; the rest stay for another press


def retry_work(rt: Runtime, items: list[WorkItem]) -> int:
    """Retry these items now; returns how many were failed or pending (done ones are left)."""
    retried = set(rt.work_ledger.retry([item.key for item in items], utc_now()))
    queued = [(i.kind, i.subject, i.target, i.attempts) for i in items if i.key in retried]
    rt.queue_missing_work(queued, bulk=len(queued) > BULK_AFTER)
    return len(retried)


def retry_stuck(rt: Runtime, kind: str | None = None) -> int:
    """Retry every stuck item (of one kind), up to ``MOST_AT_ONCE``."""
    return retry_work(rt, rt.work_ledger.stuck(kind, limit=MOST_AT_ONCE))
