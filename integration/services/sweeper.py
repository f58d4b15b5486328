"""The one sweeper: every pending work item whose next attempt has come is queued again, in
every account that has one."""

from __future__ import annotations

import logging
from collections import Counter

from integration.accounts import AccountError
from integration.crm.base import TakesEvents
from integration.ledger.work import WorkKind, accounts_with_due_work
from integration.logs import fields
from integration.queues import BULK_AFTER
from integration.runtime import Runtime
from integration.runtimes import AccountRuntimes
from integration.services.recordings import announce_recording
from integration.timeutil import utc_now

log = logging.getLogger(__name__)

SWEEP_LIMIT = 500  # items per kind, account and sweep (every 5 s), on average


def sweep(rt: Runtime) -> int:
    """``repair`` the account's work, then queue its due items; returns how many were queued."""
    repair(rt)
    return queue_due(rt)


def repair(rt: Runtime) -> None:
    """Make the work items a crash cut short: deliveries and recordings of calls that have none,
    ``recording.ready`` of stored recordings not announced yet (run with each sync)."""
    crm = rt.crm.name
    rt.delivery_ledger.ensure(rt.delivery_ledger.undelivered_calls(crm), crm, utc_now())
    rt.recording_ledger.ensure(rt.recording_ledger.missing(), utc_now())
    for recording in rt.recording_ledger.unannounced():
        announce_recording(rt, recording.call_id)


def queue_due(rt: Runtime) -> int:
    """Queue every item of the account whose next attempt is due and has no job (also those Redis
    lost); a backlog goes to the bulk queue. Returns how many were due."""
    crm = rt.crm.name
    kinds: dict[str, str | None] = {
        WorkKind.DELIVER_CALL: crm,  # another CRM's deliveries wait for a deployment of that CRM
        WorkKind.FETCH_RECORDING: None,
        WorkKind.HANDLE_EVENT: None,
        WorkKind.RULE_CALLBACK: None,
    }
    if isinstance(rt.crm, TakesEvents):
        kinds[WorkKind.SEND_EVENT] = None
    due = rt.work_ledger.due(utc_now(), limit=SWEEP_LIMIT * len(kinds), kinds=kinds)
    if not due:
        return 0
    items = [(item.kind, item.subject, item.target, item.attempts) for item in due]
    queued = rt.queue_missing_work(items, bulk=len(due) > BULK_AFTER)  # the others wait in a queue
    per_kind = {str(kind): n for kind, n in Counter(item.kind for item in due).items()}
    log.debug("account's due work queued", extra=fields(account=rt.account, queued=queued, **per_kind))
    return len(due)


def sweep_accounts(runtimes: AccountRuntimes) -> int:
    """Queue the due items of every served account that has any (one query finds them)."""
    queued = 0
    accounts = accounts_with_due_work(runtimes.default.engine, utc_now())
    for account in accounts:
        try:
            queued += queue_due(runtimes.get(account))
        except AccountError:
            continue  # disabled or deleted: its work waits (or went with it)
    log.debug("due work queued", extra=fields(accounts=len(accounts), queued=queued))
    return queued
