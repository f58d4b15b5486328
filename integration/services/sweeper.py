"""The one sweeper: every pending work item whose next attempt has come is queued again."""

from __future__ import annotations

import logging
from collections import Counter

from integration.crm.base import TakesEvents
from integration.ledger.work import WorkKind
from integration.logs import fields
from integration.queues import DEFAULT, enqueue_work, make_queue
from integration.runtime import Runtime
from integration.services.recordings import announce_recording
from integration.timeutil import utc_now

log = logging.getLogger(__name__)

SWEEP_LIMIT = 500  # items per kind and sweep (every 5 s), on average


def sweep(rt: Runtime) -> int:
    """Queue every work item whose next attempt is due, of every kind (also those Redis lost),
    after making the items a crash cut short: deliveries and recordings of calls that have none,
    ``recording.ready`` of stored recordings not announced yet. Returns how many were queued."""
    crm = rt.crm.name
    rt.delivery_ledger.ensure(rt.delivery_ledger.undelivered_calls(crm), crm, utc_now())
    rt.recording_ledger.ensure(rt.recording_ledger.missing(), utc_now())
    for recording in rt.recording_ledger.unannounced():
        announce_recording(rt, recording.call_id)
    kinds: dict[str, str | None] = {
        WorkKind.DELIVER_CALL: crm,  # another CRM's deliveries wait for a deployment of that CRM
        WorkKind.FETCH_RECORDING: None,
        WorkKind.HANDLE_EVENT: None,
        WorkKind.RULE_CALLBACK: None,
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
