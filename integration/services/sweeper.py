"""The one sweeper: every pending work item whose next attempt has come is queued again, in
every account that has one."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from integration.accounts import AccountError
from integration.crm.base import TakesEvents
from integration.ledger.work import WorkItem, WorkKind, due_everywhere, hold_off
from integration.logs import fields
from integration.queues import BULK_AFTER, WORK_LEASE
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
    kinds: dict[str, str | None] = {kind: None for kind in KINDS}
    kinds[WorkKind.DELIVER_CALL] = rt.crm.name  # another CRM's deliveries wait for a deployment of that CRM
    if not isinstance(rt.crm, TakesEvents):
        del kinds[WorkKind.SEND_EVENT]
    due = rt.work_ledger.due(utc_now(), limit=SWEEP_LIMIT * len(kinds), kinds=kinds)
    return len(queue_items(rt, due))


KINDS = (
    WorkKind.DELIVER_CALL,
    WorkKind.SEND_EVENT,
    WorkKind.FETCH_RECORDING,
    WorkKind.HANDLE_EVENT,
    WorkKind.RULE_CALLBACK,
)


def queue_items(rt: Runtime, due: list[WorkItem]) -> list[WorkItem]:
    """Queue those of the account's due items this deployment runs (another CRM's deliveries
    wait for a deployment of that CRM; events only for a CRM that takes them); returns them."""
    crm, takes_events = rt.crm.name, isinstance(rt.crm, TakesEvents)
    runnable = [
        item
        for item in due
        if (item.kind != WorkKind.DELIVER_CALL or item.target == crm)
        and (item.kind != WorkKind.SEND_EVENT or takes_events)
    ]
    if runnable:
        items = [(item.kind, item.subject, item.target, item.attempts) for item in runnable]
        queued = rt.queue_missing_work(items, bulk=len(runnable) > BULK_AFTER)  # the others wait in a queue
        per_kind = {str(kind): n for kind, n in Counter(item.kind for item in runnable).items()}
        log.debug("account's due work queued", extra=fields(account=rt.account, queued=queued, **per_kind))
    return runnable


PER_ACCOUNT = 4 * BULK_AFTER  # due items of one account per sweep


def sweep_accounts(runtimes: AccountRuntimes) -> int:
    """Queue the due items of every served account (one query finds them, at most
    ``PER_ACCOUNT`` of each); what was looked at leaves the due set for a job's time limit."""
    now = utc_now()
    due = due_everywhere(runtimes.default.engine, now, PER_ACCOUNT, SWEEP_LIMIT * len(KINDS))
    by_account: dict[str, list[WorkItem]] = {}
    for item in due:
        by_account.setdefault(item.account, []).append(item)
    queued = 0
    for account, items in by_account.items():
        try:
            queued += len(queue_items(runtimes.get(account), items))
        except AccountError:
            continue  # disabled or deleted: its work waits (or went with it)
    hold_off(runtimes.default.engine, [item.id for item in due], now, now + timedelta(seconds=WORK_LEASE))
    log.debug("due work queued", extra=fields(accounts=len(by_account), queued=queued))
    return queued
