"""The interface every CRM adapter implements, and its errors."""

from __future__ import annotations

from typing import Protocol

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
    name: str
    events: bool  # takes events beside calls (``send``), e.g. callback.finished

    def find_contacts(self, phone: Phone) -> list[Contact]:
        """Contacts whose number is ``phone`` (by E.164, or the last 10 digits when formats differ)."""

    def create_contact(self, phone: Phone, name: str = "") -> Contact:
        """A new contact for an unknown number."""

    def write_activity(self, activity: Activity) -> str:
        """Write the call; return the CRM's id for it. Writing the same call again returns the
        same id and changes nothing (the adapter is idempotent on ``activity.call_id``)."""

    def attach_calls(self, deal_id: str, call_ids: list[str], reference: str) -> None:
        """Attach calls to a deal (the ``attach_calls`` rule action); idempotent per ``reference``
        (the event and rule that asked for it)."""


def logged_crm_id(deliveries: DeliveryLedger, call_id: str, crm: str) -> str | None:
    """The CRM's id of a delivered call, or None when the call was never logged there; while the
    call's own delivery is still pending, a retryable ``CrmError`` (the caller tries again later)."""
    delivery = deliveries.get(call_id, crm)
    if delivery is None or delivery.status == PENDING:
        raise CrmError(f"call {call_id} is not in {crm} yet")
    return delivery.crm_id if delivery.status == DELIVERED and delivery.crm_id else None
