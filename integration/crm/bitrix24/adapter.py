"""The ``bitrix24`` CRM backend: calls as Bitrix24 telephony calls (register → finish →
attachRecord), contacts looked up with ``telephony.externalCall.searchCrmEntities``.

``BITRIX24_WEBHOOK_URL`` is the portal's REST base (``https://portal.bitrix24.ru/rest/1/abc123``
for an inbound webhook, or a local application's); method names are appended. The telephony
methods work only for applications: an inbound webhook gets ``WRONG_AUTH_TYPE``, reported as such.
Requests are paced through Redis (``BITRIX24_RATE`` per second across every process, bursts of 50,
as Bitrix24's leaky bucket allows); ``QUERY_LIMIT_EXCEEDED`` backs off (1, 2, 4, 8, 16 s, through
``integration.retrying``) and retries, never drops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import requests
from tenacity import wait_exponential

from integration.crm.base import CrmError, CrmRateLimited, external_e164, logged_crm_id, rate_limited
from integration.ledger.deliveries import DeliveryLedger
from integration.logs import fields
from integration.models import Activity, CallStatus, Contact, Direction
from integration.phone import Phone
from integration.ratelimit import Pacer
from integration.retrying import retrying

log = logging.getLogger(__name__)

LIMIT_RETRIES = 5  # QUERY_LIMIT_EXCEEDED answers absorbed in place before the delivery is retried later
TRANSIENT = {"QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT", "OVERLOAD_LIMIT", "INTERNAL_SERVER_ERROR"}
HINTS = {
    "WRONG_AUTH_TYPE": "telephony methods need a Bitrix24 application: use a local application's REST URL",
    "expired_token": "the access token expired",
    "invalid_token": "the token in BITRIX24_WEBHOOK_URL is not valid",
    "NO_AUTH_FOUND": "the token in BITRIX24_WEBHOOK_URL is not valid",
    "insufficient_scope": "the application or webhook lacks the telephony or crm scope",
}
TYPES = {Direction.OUTBOUND: 1, Direction.INBOUND: 2}
CALLBACK_TYPE = 4
STATUS_CODES = {CallStatus.ANSWERED: "200", CallStatus.MISSED: "304", CallStatus.VOICEMAIL: "304"}
FAILED_CALLBACK_CODE = "603-S"  # "call canceled": the click-to-call was never connected
DEAL_TYPE_ID = 2  # CRM object type of deals


class Bitrix24Error(CrmError):
    """Bitrix24 refused a request; ``code`` and ``description`` are its ``error`` fields."""

    def __init__(self, message: str, *, code: str | None, description: str | None, retryable: bool):
        self.code, self.description = code, description
        super().__init__(message, retryable=retryable)


class Bitrix24Rest:
    """POST ``<base>/<method>`` with JSON; returns ``result`` or raises ``CrmError``."""

    def __init__(
        self,
        base_url: str,
        pacer: Pacer,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 20.0),
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._base = base_url.rstrip("/")  # holds a secret: never logged, never in errors
        self.pacer = pacer
        self.session = session or requests.Session()
        self.timeout = timeout
        self.sleep = sleep

    def __repr__(self) -> str:
        return "Bitrix24Rest(<BITRIX24_WEBHOOK_URL>)"

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """One request; ``QUERY_LIMIT_EXCEEDED`` (or a 503) is repeated after 1, 2, 4, 8, 16 s."""

        def attempt() -> Any:
            self.pacer.wait()
            try:
                response = self.session.post(f"{self._base}/{method}", json=params, timeout=self.timeout)
            except requests.RequestException as exc:
                raise CrmError(f"Bitrix24 {method}: no answer ({type(exc).__name__})") from None
            try:
                body = response.json()
            except ValueError:
                body = None
            error = body.get("error") if isinstance(body, dict) else None
            if error == "QUERY_LIMIT_EXCEEDED" or response.status_code == 503:
                raise CrmRateLimited(f"Bitrix24 {method}: QUERY_LIMIT_EXCEEDED after {LIMIT_RETRIES} back-offs")
            if error or not 200 <= response.status_code < 300 or not isinstance(body, dict):
                raise _error(method, response.status_code, error, body)
            return body.get("result")

        return retrying(
            tries=LIMIT_RETRIES + 1,
            when=rate_limited,
            wait=wait_exponential(multiplier=1.0, max=30.0),
            sleep=self.sleep,
            log=log,
            what="Bitrix24 request",
            method=method,
        )(attempt)


def _error(method: str, status: int, error: str | None, body: Any) -> Bitrix24Error:
    description = body.get("error_description") if isinstance(body, dict) else None
    text = f"Bitrix24 {method}: HTTP {status}"
    if error:
        text += f" {error}"
    if description:
        text += f" ({str(description)[:200]})"
    if error in HINTS:
        text += f" — {HINTS[error]}"
    retryable = status >= 500 or status in (408, 429) or error in TRANSIENT or body is None
    return Bitrix24Error(text, code=error, description=str(description or ""), retryable=retryable)


class Bitrix24Crm:
    name = "bitrix24"
    creates_leads = True  # CRM_CREATE=1 makes Bitrix24 create the lead itself

    def __init__(self, rest: Bitrix24Rest, deliveries: DeliveryLedger, default_user: str = "1"):
        self.rest = rest
        self.deliveries = deliveries
        self.default_user = default_user

    def find_contacts(self, phone: Phone) -> list[Contact]:
        found = self.rest.call("telephony.externalCall.searchCrmEntities", {"PHONE_NUMBER": phone.digits}) or []
        return [
            Contact(
                id=f"{item['CRM_ENTITY_TYPE']}:{item['CRM_ENTITY_ID']}",
                name=item.get("NAME") or "",
                phones=(phone.e164,) if phone.e164 else (),
            )
            for item in found
            if isinstance(item, dict) and item.get("CRM_ENTITY_TYPE") and item.get("CRM_ENTITY_ID")
        ]

    def create_contact(self, phone: Phone, name: str = "") -> Contact:
        e164 = external_e164(phone)
        fields = {"NAME": name or e164, "PHONE": [{"VALUE": e164, "VALUE_TYPE": "WORK"}]}
        contact_id = self.rest.call("crm.contact.add", {"fields": fields})
        return Contact(id=f"CONTACT:{contact_id}", name=name or e164, phones=(e164,))

    def write_activity(self, activity: Activity) -> str:
        """register (unless this call has a Bitrix24 call already) → finish → attachRecord."""
        user = activity.responsible_user or self.default_user
        known = self._known_call_id(activity)
        call_id = known or self._register(activity, user)
        finish = {
            "CALL_ID": call_id,
            "USER_ID": int(user) if str(user).isascii() and str(user).isdigit() else user,
            "DURATION": activity.duration,
            "STATUS_CODE": STATUS_CODES[activity.status],
            "ADD_TO_CHAT": 0,
        }
        try:
            self.rest.call("telephony.externalCall.finish", finish)
        except Bitrix24Error as exc:
            # An earlier attempt finished it and lost the answer: Bitrix24 no longer has it open.
            if not (known and exc.code == "ERROR_CORE" and "not found" in (exc.description or "").lower()):
                raise
            log.debug("Bitrix24 call already finished by an earlier attempt", extra=fields(bitrix_call=call_id))
        if activity.recording_url:
            self.attach_record(call_id, activity.recording_url)
        return call_id

    def _known_call_id(self, activity: Activity) -> str | None:
        """A click from Bitrix24 brought its CALL_ID; an earlier attempt may have registered one."""
        if activity.callback_crm and activity.callback_crm.get("bitrix_call_id"):
            return str(activity.callback_crm["bitrix_call_id"])
        delivery = self.deliveries.get(activity.call_id, self.name)
        return delivery.crm_id if delivery and delivery.crm_id else None

    def _register(self, activity: Activity, user: str) -> str:
        callback = bool(activity.callback_crm and activity.callback_crm.get("callback"))
        params: dict[str, Any] = {
            "USER_ID": int(user) if str(user).isascii() and str(user).isdigit() else user,
            "PHONE_NUMBER": activity.ext_e164 or activity.ext_raw,
            "TYPE": CALLBACK_TYPE if callback else TYPES.get(activity.direction, 2),
            "CALL_START_DATE": activity.started_at.isoformat(),
            "CRM_CREATE": 1 if activity.create_lead else 0,
            "SHOW": 0,
            "ADD_TO_CHAT": 0,
            "LINE_NUMBER": activity.line,
            "EXTERNAL_CALL_ID": activity.call_id,
        }
        if activity.contact_ids:
            entity_type, _, entity_id = activity.contact_ids[0].partition(":")
            params |= {
                "CRM_ENTITY_TYPE": entity_type,
                "CRM_ENTITY_ID": int(entity_id) if entity_id.isascii() and entity_id.isdigit() else entity_id,
            }
        result = self.rest.call("telephony.externalCall.register", params)
        call_id = str(result["CALL_ID"])
        # Kept before finishing: a retry after a failed finish must not register a second call.
        self.deliveries.remember_crm_id(activity.call_id, self.name, call_id)
        return call_id

    def attach_record(self, call_id: str, url: str) -> None:
        self.rest.call(
            "telephony.externalCall.attachRecord",
            {"CALL_ID": call_id, "RECORD_URL": url, "FILENAME": f"{call_id.rsplit('.', 1)[-1]}.mp3"},
        )

    def send(self, event_type: str, subject: str, data: dict) -> str:
        """Events from the outbox, as Bitrix24 calls."""
        if event_type == "recording.ready":
            delivery = self.deliveries.get(data["call_id"], self.name)
            if not (delivery and delivery.crm_id):
                raise CrmError("the call is not in Bitrix24 yet", retryable=True)
            if data.get("url"):
                self.attach_record(delivery.crm_id, data["url"])
            return delivery.crm_id
        if event_type == "callback.finished":
            return self._finish_clicked_call(data)
        return ""

    def _finish_clicked_call(self, data: dict) -> str:
        """A click-to-call from Bitrix24 that never connected is finished there with the reason;
        a placed one is finished when the call appears in the history (with its real duration)."""
        context = data.get("crm") or {}
        call_id = context.get("bitrix_call_id")
        if not call_id or data.get("status") == "placed":
            return ""
        user = data.get("crm_user") or self.default_user
        self.rest.call(
            "telephony.externalCall.finish",
            {
                "CALL_ID": call_id,
                "USER_ID": int(user) if str(user).isascii() and str(user).isdigit() else user,
                "DURATION": 0,
                "STATUS_CODE": FAILED_CALLBACK_CODE,
                "FAILED_REASON": f"{data.get('status')}: {data.get('reason') or ''}"[:250],
                "ADD_TO_CHAT": 0,
            },
        )
        return str(call_id)

    def attach_calls(self, deal_id: str, call_ids: list[str], reference: str) -> None:
        """Bind each call's CRM activity (``ORIGIN_ID`` ``VI_<CALL_ID>``) to the deal as well."""
        for call_id in call_ids:
            crm_id = logged_crm_id(self.deliveries, call_id, self.name)
            if crm_id is None:
                continue  # never registered
            found = self.rest.call("crm.activity.list", {"filter": {"ORIGIN_ID": f"VI_{crm_id}"}, "select": ["ID"]})
            for item in found or []:
                try:
                    self.rest.call(
                        "crm.activity.binding.add",
                        {"activityId": int(item["ID"]), "entityTypeId": DEAL_TYPE_ID, "entityId": int(deal_id)},
                    )
                except Bitrix24Error as exc:
                    if exc.code != "ACTIVITY_IS_ALREADY_BOUND":
                        raise
