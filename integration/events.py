"""CRM events → rule actions (flow 3), without Flask or RQ.

``plan`` decides, for one event, what each matching rule does: a ``callback`` (when, from which
contract number, to which number — or why not), ``attach_calls`` (which calls), or
``set_redirect_active`` (which forwarding numbers, on which contract numbers). Running the
plan is the jobs' business; every action is idempotent, so an event handled twice acts once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from integration.callbacks import ClickToCall, dialable_destination
from integration.config import Settings
from integration.errors import InvalidPhoneNumber
from integration.ledger.calls import CallLedger
from integration.phone import Phone, forwarding_digits, parse_phone
from integration.rules import Rule


@dataclass(frozen=True)
class Planned:
    rule: Rule
    at: datetime | None = None  # callback: when to ring (inside business hours)
    order: ClickToCall | None = None  # callback: what to ring
    call_ids: tuple[str, ...] = ()  # attach_calls
    forwarding: tuple[str, ...] = ()  # set_redirect_active: forwarding numbers (10 digits)
    lines: tuple[str, ...] = ()  # set_redirect_active: the contract numbers whose settings change
    skipped: str | None = None  # why the rule does nothing for this event

    def describe(self) -> str:
        if self.skipped:
            return f"{self.rule.name}: skipped ({self.skipped})"
        if self.order and self.at:
            return f"{self.rule.name}: callback {self.order.phone_from} → {self.order.destination.e164} at {self.at.isoformat()}"
        if self.forwarding:
            state = "active" if self.rule.active else "inactive"
            return f"{self.rule.name}: forwarding {', '.join(self.forwarding)} set {state} on {', '.join(self.lines)}"
        return f"{self.rule.name}: {len(self.call_ids)} call(s) attached"


def phones_of(data: Mapping) -> list[str]:
    """The event's phone numbers as sent: ``phones`` (a list) and/or ``phone``."""
    phones = data.get("phones")
    found: list = phones if isinstance(phones, list) else []
    if data.get("phone"):
        found = [data["phone"], *found]
    return [str(p) for p in found if isinstance(p, (str, int)) and not isinstance(p, bool)]


def plan(
    event_id: str,
    event_type: str,
    data: Mapping,
    settings: Settings,
    *,
    calls: CallLedger,
    now: datetime,
) -> list[Planned]:
    """What the configured rules do for this event."""
    planned = []
    for rule in settings.rules:
        if not rule.matches(event_type, dict(data)):
            continue
        if rule.action == "callback":
            planned.append(plan_callback(event_id, rule, data, settings, now))
        elif rule.action == "set_redirect_active":
            planned.append(plan_redirect(rule, data, settings))
        else:
            planned.append(plan_attach(rule, data, settings.default_region, calls, now))
    return planned


def plan_callback(event_id: str, rule: Rule, data: Mapping, settings: Settings, now: datetime) -> Planned:
    """Ring the responsible user's contract number, then the event's first dialable number."""
    user = data.get("responsible_user")
    phone_from = settings.users.get(str(user)) if user is not None else None
    if phone_from is None:
        return Planned(rule, skipped=f"responsible user {user!r} has no contract number in [users]")
    destination, reasons = None, []
    for raw in phones_of(data):
        try:
            destination = dialable_destination(raw, settings)
            break
        except InvalidPhoneNumber as exc:
            reasons.append(f"{raw}: {exc.reason}")
    if destination is None:
        return Planned(rule, skipped="no number to dial" + (f" ({'; '.join(reasons)})" if reasons else ""))
    order = ClickToCall(
        phone_from=phone_from,
        destination=destination,
        source="rule",
        idempotency_key=f"{event_id}:{rule.name}",
        crm_user=str(user),
        crm_context={"event": event_id, "rule": rule.name, **({"deal": data["deal_id"]} if "deal_id" in data else {})},
    )
    # The next opening of business hours, if the moment falls outside: never a ring at 3 a.m.
    at = settings.business_hours.next_open(now + timedelta(seconds=rule.delay), settings.tz)
    return Planned(rule, at=at, order=order)


def plan_attach(rule: Rule, data: Mapping, region: str, calls: CallLedger, now: datetime) -> Planned:
    """The calls with the event's numbers over the rule's last ``days`` days."""
    if not data.get("deal_id"):
        return Planned(rule, skipped="the event names no deal_id")
    keys = sorted({phone.match_key for phone in _parsed(phones_of(data), region) if phone.match_key})
    if not keys:
        return Planned(rule, skipped="the event carries no phone number")
    found = calls.with_numbers(keys, since=now - timedelta(days=rule.days))
    return Planned(rule, call_ids=tuple(found))


def plan_redirect(rule: Rule, data: Mapping, settings: Settings) -> Planned:
    """The forwarding numbers of the event: its ``phone``/``phones``, and its ``user``'s (or
    ``responsible_user``'s) number from ``[forwarding]``."""
    numbers = {digits for digits in map(forwarding_digits, phones_of(data)) if digits}
    user = data.get("user", data.get("responsible_user"))
    if user is not None and str(user) in settings.forwarding:
        numbers.add(settings.forwarding[str(user)])
    if not numbers:
        return Planned(
            rule, skipped=f"no forwarding number: the event has no phone and user {user!r} is not in [forwarding]"
        )
    return Planned(rule, forwarding=tuple(sorted(numbers)), lines=rule.numbers or settings.operator_numbers)


def _parsed(raws: Sequence[str], region: str) -> list[Phone]:
    phones = []
    for raw in raws:
        try:
            phones.append(parse_phone(raw, region, classify=False))
        except InvalidPhoneNumber:
            continue
    return phones
