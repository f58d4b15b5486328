"""The rules in the worker: handle a CRM event once (schedule callbacks, switch forwarding,
attach calls), and place a rule's callback when its work item comes due."""

from __future__ import annotations

import logging
from datetime import timedelta

from integration import events
from integration.crm.base import KnowsDeals
from integration.errors import IntegrationError
from integration.ledger.events import CrmEvent
from integration.ledger.work import WorkKey, WorkKind, WorkStatus
from integration.logs import fields
from integration.runtime import Runtime
from integration.timeutil import utc_now
from integration.vats.redirects import set_redirect_active

log = logging.getLogger(__name__)


def handle_event(rt: Runtime, event_id: str) -> str:
    """Apply the rules to one CRM event; safe to run twice (the rules act once per event).

    A failed action raises after counting the attempt: the sweeper runs the event again when it
    is due, and every action is idempotent."""
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
                rt.work_ledger.schedule(callback_key(event.id, item.rule.name), item.at, now)
            elif item.forwarding:
                for line in item.lines:
                    results.append(set_redirect_active(rt.operator, rt.redis, line, item.forwarding, item.rule.active))
            elif not item.skipped:
                rt.crm.attach_calls(str(data["deal_id"]), list(item.call_ids), f"{event.id}:{item.rule.name}")
    except IntegrationError as exc:
        if rt.event_ledger.fail_attempt(event.id, str(exc), now, retryable=exc.retryable) is not None:
            raise
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


def event_data(rt: Runtime, event: CrmEvent) -> dict:
    """The event's data, with the deal's numbers and responsible user from CRMs whose events
    name the deal only (amoCRM)."""
    if isinstance(rt.crm, KnowsDeals) and event.data.get("deal_id") and not events.phones_of(event.data):
        return rt.crm.deal_context(str(event.data["deal_id"])) | event.data
    return event.data


def callback_key(event_id: str, rule_name: str) -> WorkKey:
    """The work item of one rule's callback for one event (due when the callback is)."""
    return WorkKey(WorkKind.RULE_CALLBACK, event_id, rule_name)


def rule_callback(rt: Runtime, event_id: str, rule_name: str) -> str:
    """Place a rule's callback now — or, outside business hours, move it to their next opening."""
    key = callback_key(event_id, rule_name)
    now = utc_now()
    item = rt.work_ledger.get(key)
    if item is None:  # queued by a release that scheduled callbacks in RQ
        rt.work_ledger.schedule(key, now, now)
    elif item.status != WorkStatus.PENDING:
        return item.result or item.status
    event = rt.event_ledger.get(event_id)
    rule = next((r for r in rt.settings.rules if r.name == rule_name), None)
    if event is None or rule is None:
        log.warning(
            "rule callback dropped: the event or the rule is gone", extra=fields(event=event_id, rule=rule_name)
        )
        return settle(rt, key, "dropped: the event or the rule is gone")
    try:
        data = event_data(rt, event)
    except IntegrationError as exc:
        if rt.work_ledger.fail_attempt(key, str(exc), now, retryable=exc.retryable, given_up=f"dropped: {exc}"):
            raise
        log.warning("rule callback dropped", extra=fields(event=event_id, rule=rule_name, error=str(exc)))
        return f"dropped: {exc}"
    planned = events.plan_callback(event_id, rule, data, rt.settings, now - timedelta(seconds=rule.delay))
    if planned.order is None or planned.at is None:
        return settle(rt, key, f"skipped: {planned.skipped}")
    if planned.at > now + timedelta(seconds=1):  # a late run (worker down) fell outside the hours
        rt.work_ledger.postpone(key, "outside business hours", planned.at, restart_window=True)
        return f"moved to {planned.at.isoformat()}"
    accepted, new = rt.intake.submit(planned.order)
    return settle(rt, key, f"{'queued' if new else 'already requested'}: {accepted.id}")


def settle(rt: Runtime, key: WorkKey, result: str) -> str:
    rt.work_ledger.finish(key, utc_now(), result)
    return result
