"""What reaches the CRM: a call, written once, and outbox events (e.g. ``callback.finished``)."""

from __future__ import annotations

from integration import delivery
from integration.crm.base import TakesEvents
from integration.runtime import Runtime
from integration.timeutil import utc_now


def deliver_call(rt: Runtime, call_id: str) -> str:
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


def send_event(rt: Runtime, event: str) -> str:
    """Send one outbox event to the CRM."""
    if not isinstance(rt.crm, TakesEvents):
        return "skipped: the CRM takes no events"
    return delivery.send_event(event, outbox=rt.outbox, crm=rt.crm, now=utc_now(), deliveries=rt.delivery_ledger)
