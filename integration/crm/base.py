"""The interface every CRM adapter implements, and its errors."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from integration.errors import IntegrationError
from integration.ledger.deliveries import DELIVERED, PENDING, DeliveryLedger
from integration.models import Activity, Contact
from integration.phone import Phone


class CrmError(IntegrationError):
    """The CRM did not take the request; ``retryable`` when trying again later may help (each
    adapter decides from the CRM's answer)."""

    retryable = True

    def __init__(self, message: str, *, retryable: bool = True):
        self.retryable = retryable
        super().__init__(message)


class CrmRateLimited(CrmError):
    """The CRM asked us to slow down (amoCRM's 429, Bitrix24's ``QUERY_LIMIT_EXCEEDED``): the
    adapter backs off and repeats the request itself a few times, then the work is retried later."""


def rate_limited(exc: BaseException) -> bool:
    """Whether a CRM request's failure is repeated in place (``integration.retrying``'s ``when``)."""
    return isinstance(exc, CrmRateLimited)


class CrmAdapter(Protocol):
    """What every CRM does. Optional abilities are the capability interfaces below: callers ask
    ``isinstance(crm, Capability)``, never which CRM it is."""

    name: str

    def find_contacts(self, phone: Phone) -> list[Contact]:
        """Contacts whose number is ``phone`` (by E.164, or the last 10 digits when formats differ)."""
        ...

    def create_contact(self, phone: Phone, name: str = "") -> Contact:
        """A new contact for an unknown number."""
        ...

    def write_activity(self, activity: Activity) -> str:
        """Write the call; return the CRM's id for it. Writing the same call again returns the
        same id and changes nothing (the adapter is idempotent on ``activity.call_id``)."""
        ...

    def attach_calls(self, deal_id: str, call_ids: list[str], reference: str) -> None:
        """Attach calls to a deal (the ``attach_calls`` rule action); idempotent per ``reference``
        (the event and rule that asked for it)."""
        ...


@runtime_checkable
class TakesEvents(Protocol):
    """Takes events beside calls (``callback.finished``, ``recording.ready``) from the outbox."""

    name: str

    def send(self, event_type: str, subject: str, data: dict) -> str:
        """Deliver one event; the same event again changes nothing. Returns the CRM's answer id."""
        ...


@runtime_checkable
class CreatesLeads(Protocol):
    """Creates a lead for an unknown number as it writes the call (``MATCH_UNKNOWN=create_lead``);
    a CRM without this gets a contact instead."""

    creates_leads: bool


@runtime_checkable
class KnowsDeals(Protocol):
    """Reads a deal's numbers and responsible user (its events name the deal only)."""

    def deal_context(self, deal_id: str) -> dict:
        """``{"phones": [...], "responsible_user": …}`` of the deal."""
        ...


@runtime_checkable
class BrowsesContacts(Protocol):
    """Lists its own contacts and activities (the embedded CRM, for ``/api/contacts`` and
    ``/api/activities``)."""

    def contacts_page(self, limit: int, offset: int, phone: Phone | None = None) -> list[dict]: ...

    def activities_page(self, limit: int, offset: int, contact_id: str | None = None) -> list[dict]: ...


def external_e164(phone: Phone) -> str:
    """The E.164 number of a contact to create: short internal numbers never get one."""
    if phone.e164 is None:
        raise CrmError(f"{phone.raw} is an internal number: no CRM contact is made for it", retryable=False)
    return phone.e164


def logged_crm_id(deliveries: DeliveryLedger, call_id: str, crm: str) -> str | None:
    """The CRM's id of a delivered call, or None when the call was never logged there; while the
    call's own delivery is still pending, a retryable ``CrmError`` (the caller tries again later)."""
    delivery = deliveries.get(call_id, crm)
    if delivery is None or delivery.status == PENDING:
        raise CrmError(f"call {call_id} is not in {crm} yet")
    return delivery.crm_id if delivery.status == DELIVERED and delivery.crm_id else None
