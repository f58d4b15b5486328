"""Calls → CRM activities (flow 2, second half), without Flask or RQ.

``deliver_call`` matches the external number to CRM contacts under the configured policies,
maps the call to an activity and writes it. The ledger's delivery row says what happened; a
failure schedules the next attempt under the work items' one retry policy
(``integration.ledger.work``: quick retries, then doubling waits, for ``RETRY_WINDOW``), after
which the delivery is ``failed`` and visible.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from integration.crm.base import CreatesLeads, CrmAdapter, CrmError, TakesEvents
from integration.ledger.callbacks import CallbackLedger
from integration.ledger.calls import CallLedger
from integration.ledger.deliveries import DELIVERED, Delivery, DeliveryLedger
from integration.ledger.outbox import INCLUDED, Outbox
from integration.ledger.work import retry_delay
from integration.logs import fields, log_failure
from integration.models import Activity, Call, CallbackRequest, Match, MatchKind
from integration.phone import RUSSIA_COUNTRY_CODE, phone_from_e164

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policies:
    multiple: str = "most_recent"  # most_recent | all | none
    unknown: str = "skip"  # skip | create_contact | create_lead


def match_call(call: Call, crm: CrmAdapter, policies: Policies, own_numbers: Sequence[str], region: str) -> Match:
    """Which CRM contacts a call belongs to."""
    if call.ext_internal:
        return Match(MatchKind.INTERNAL)
    if not call.ext_e164:
        return Match(MatchKind.UNPARSED)
    phone = phone_from_e164(call.ext_e164)
    if phone.country_code == RUSSIA_COUNTRY_CODE and phone.match_key in own_numbers:
        return Match(MatchKind.OWN)
    found = crm.find_contacts(phone)
    if not found:
        if policies.unknown == "create_lead" and isinstance(crm, CreatesLeads):
            return Match(MatchKind.LEAD)  # the CRM creates the lead as it writes the call
        if policies.unknown in ("create_contact", "create_lead"):  # a CRM without leads gets a contact
            created = crm.create_contact(phone)
            return Match(MatchKind.CREATED, (created.id,), ())
        return Match(MatchKind.NONE)
    candidates = tuple([contact.id for contact in found])
    if len(found) == 1:
        return Match(MatchKind.CONTACT, candidates, candidates)
    if policies.multiple == "all":
        return Match(MatchKind.MULTIPLE, candidates, candidates)
    if policies.multiple == "most_recent":
        newest = max(found, key=lambda c: (c.updated_at is not None, c.updated_at or 0, c.id))
        return Match(MatchKind.MULTIPLE, (newest.id,), candidates)
    return Match(MatchKind.NONE, (), candidates)  # flagged for review


def activity_for(
    call: Call, match: Match, users_by_line: Mapping[str, str], callback: CallbackRequest | None = None
) -> Activity:
    responsible_user = (callback.crm_user if callback and callback.crm_user else None) or users_by_line.get(call.line)
    return Activity(  # positional, in the fields' order: keyword arguments cost twice as much
        call.id,
        call.direction,
        call.status,
        call.started_at,
        call.duration,
        call.line,
        call.ext_e164,
        call.ext_raw,
        match.contact_ids,
        responsible_user,
        None,  # recording_url: added by the delivery when the recording is stored
        callback.id if callback else None,  # callback_request_id
        callback.crm_context if callback else None,  # callback_crm
        match.kind is MatchKind.LEAD,  # create_lead
    )


def deliver_call(
    call_id: str,
    *,
    calls: CallLedger,
    deliveries: DeliveryLedger,
    crm: CrmAdapter,
    policies: Policies,
    own_numbers: Sequence[str],
    users_by_line: Mapping[str, str],
    region: str,
    now: datetime,
    callbacks: CallbackLedger | None = None,
    recording_url: Callable[[str], str | None] = lambda call_id: None,
) -> str:
    """Write one call into the CRM unless it is there already; returns the delivery status.

    ``recording_url`` gives the link of the call's recording when it is already stored.
    """
    deliveries.ensure([call_id], crm.name, now)
    delivery = deliveries.get(call_id, crm.name)
    call = calls.get(call_id)
    if delivery is None or call is None:
        return "missing"  # no such call in the ledger
    if delivery.status != "pending":
        return delivery.status
    try:
        match = match_call(call, crm, policies, own_numbers, region)
        callback = callbacks.get(call.callback_request_id) if callbacks and call.callback_request_id else None
        link = recording_url(call_id) if _carries_recording(delivery, deliveries, recording_url) else None
        activity = replace(activity_for(call, match, users_by_line, callback), recording_url=link)
        crm_id = crm.write_activity(activity)
    except CrmError as exc:
        next_at = deliveries.fail_attempt(call_id, crm.name, str(exc), now, retryable=exc.retryable)
        log_failure(
            log, "delivery", now, next_at, call=call_id, crm=crm.name, attempt=delivery.attempts + 1, error=str(exc)
        )
        return "pending" if next_at else "failed"
    deliveries.mark_delivered(call_id, crm.name, crm_id, match, now)
    log.debug("call delivered", extra=fields(call=call_id, crm=crm.name, crm_id=crm_id, match=match.kind.value))
    return DELIVERED


def _carries_recording(delivery: Delivery, deliveries: DeliveryLedger, recording_url: Callable) -> bool:
    """Whether the activity carries the recording link: decided once, at the first attempt, so
    every retry of the same event has the same content (a CRM may keep only the first copy)."""
    if delivery.with_recording is None:
        return deliveries.decide_recording(delivery.call_id, delivery.crm, recording_url(delivery.call_id) is not None)
    return delivery.with_recording


def send_event(
    event_id: str, *, outbox: Outbox, crm: TakesEvents, now: datetime, deliveries: DeliveryLedger | None = None
) -> str:
    """Send one outbox event through the CRM (``crm.send``), under the same retry policy.

    ``recording.ready`` follows its call's ``call.completed``: it waits while that is pending, and
    is not sent at all when ``call.completed`` already carried the recording.
    """
    event = outbox.get(event_id)
    if event is None or event.status != "pending":
        return event.status if event else "missing"
    if event.type == "recording.ready" and deliveries is not None:
        call_delivery = deliveries.get(event.subject, crm.name)
        if call_delivery is not None and call_delivery.status == "pending":
            outbox.postpone(event_id, "waiting for call.completed", now + timedelta(seconds=retry_delay(3)))
            return "pending"
        if call_delivery is not None and call_delivery.status == DELIVERED and call_delivery.with_recording:
            outbox.settle(event_id, INCLUDED, now)
            return INCLUDED
    try:
        crm.send(event.type, event.subject, event.data)
    except CrmError as exc:
        next_at = outbox.fail_attempt(event_id, str(exc), now, retryable=exc.retryable)
        log_failure(
            log,
            "event delivery",
            now,
            next_at,
            event=event_id,
            type=event.type,
            crm=crm.name,
            attempt=event.attempts + 1,
            error=str(exc),
        )
        return "pending" if next_at else "failed"
    outbox.sent(event_id, now)
    return DELIVERED
