"""The generic ``webhook`` CRM: Standard-Webhooks-signed events POSTed to ``CRM_WEBHOOK_URL``.

The same event always carries the same ``webhook-id`` (derived from the call), so a receiver that
stored an event but answered with an error, and then gets the retry, can tell it is the same one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import requests

from integration.crm.base import CrmError
from integration.crm.schemas import CallCompletedDataSchema
from integration.ledger.outbox import event_id
from integration.models import Activity, Contact
from integration.phone import Phone
from integration.signatures import sign_headers
from integration.timeutil import utc_now

RETRYABLE_STATUSES = {408, 409, 425, 429}


class WebhookCrm:
    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 10.0),
        clock: Callable[[], datetime] = utc_now,
    ):
        self.url = url
        self._secret = secret
        self.session = session or requests.Session()
        self.timeout = timeout
        self.clock = clock
        self._data = CallCompletedDataSchema()

    def __repr__(self) -> str:
        return f"WebhookCrm({self.url!r})"

    def find_contacts(self, phone: Phone) -> list[Contact]:
        return []  # the receiver matches numbers itself: each event carries the number

    def create_contact(self, phone: Phone, name: str = "") -> Contact:
        raise CrmError("the webhook backend cannot create contacts", retryable=False)

    def write_activity(self, activity: Activity) -> str:
        return self.send("call.completed", activity.call_id, self._data.dump(activity))

    def attach_calls(self, deal_id: str, call_ids: list[str], reference: str) -> None:
        self.send("deal.calls_attached", reference, {"deal_id": deal_id, "call_ids": call_ids, "reference": reference})

    def send(self, event_type: str, subject: str, data: dict) -> str:
        """POST one signed event; returns its ``webhook-id``. Raises ``CrmError`` if not taken."""
        msg_id = event_id(event_type, subject)
        body = json.dumps(
            {"type": event_type, "timestamp": self.clock().isoformat(), "data": data}, ensure_ascii=False
        ).encode()
        headers = sign_headers(self._secret, msg_id, body) | {"Content-Type": "application/json"}
        try:
            response = self.session.post(self.url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise CrmError(f"no answer from CRM_WEBHOOK_URL ({type(exc).__name__})") from None
        if 200 <= response.status_code < 300:
            return msg_id
        retryable = response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES
        raise CrmError(f"CRM_WEBHOOK_URL answered HTTP {response.status_code}", retryable=retryable)
