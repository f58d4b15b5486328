"""The ``amocrm`` CRM backend (amoCRM and Kommo, API v4).

Calls go to ``POST /api/v4/calls`` (amoCRM puts each on the contact, company or lead the number
belongs to), with our stable call id as ``uniq`` and the signed recording link as ``link``;
contacts are looked up with ``GET /api/v4/contacts?query=`` and checked against their phone
fields. Requests are paced through Redis (``AMOCRM_RATE``, 7/s as amoCRM allows); 429 backs off
and retries; a 401 makes the tokens refresh once (``amocrm_auth``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests

from integration.crm.amocrm_auth import AmoTokens
from integration.crm.base import CrmError
from integration.models import Activity, CallStatus, Contact
from integration.phone import Phone
from integration.ratelimit import Pacer

SOURCE = "vats-bridge"
CALL_STATUS = {CallStatus.ANSWERED: 4, CallStatus.MISSED: 6, CallStatus.VOICEMAIL: 1}  # documented codes
CALL_RESULT = {CallStatus.ANSWERED: "answered", CallStatus.MISSED: "missed", CallStatus.VOICEMAIL: "voicemail"}
LIMIT_RETRIES = 3
_DIGITS = re.compile(r"\D")


class AmoRest:
    """Requests to the account's API with its current token; returns the JSON body (None for 204)."""

    def __init__(
        self,
        base_url: str,
        tokens: AmoTokens,
        pacer: Pacer,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 20.0),
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.tokens, self.pacer = tokens, pacer
        self.session = session or requests.Session()
        self.timeout, self.sleep = timeout, sleep

    def request(self, method: str, path: str, *, params: dict | None = None, json: Any = None) -> Any:
        refreshed = False
        for attempt in range(LIMIT_RETRIES + 1):
            self.pacer.wait()
            token = self.tokens.access_token()
            try:
                response = self.session.request(
                    method,
                    self.base_url + path,
                    params=params,
                    json=json,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                raise CrmError(f"amoCRM {method} {path}: no answer ({type(exc).__name__})") from None
            if response.status_code == 401 and not refreshed:
                self.tokens.expire(token)  # the next attempt refreshes (once, across processes)
                refreshed = True
                continue
            if response.status_code == 429:
                if attempt < LIMIT_RETRIES:
                    self.sleep(2.0**attempt)
                    continue
                raise CrmError(f"amoCRM {method} {path}: HTTP 429 after {LIMIT_RETRIES} back-offs")
            if response.status_code == 204:
                return None
            if 200 <= response.status_code < 300:
                return response.json() if response.content else None
            raise _error(method, path, response)
        raise CrmError(f"amoCRM {method} {path}: the token was refused after a refresh", retryable=False)


def _error(method: str, path: str, response: requests.Response) -> CrmError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = body.get("detail") or body.get("title") if isinstance(body, dict) else None
    text = f"amoCRM {method} {path}: HTTP {response.status_code}" + (f" ({str(detail)[:200]})" if detail else "")
    return CrmError(text, retryable=response.status_code >= 500 or response.status_code == 408)


def phone_values(contact: dict) -> list[str]:
    """The values of a contact's PHONE field."""
    found = []
    for field in contact.get("custom_fields_values") or []:
        if field.get("field_code") == "PHONE":
            found += [str(v.get("value", "")) for v in field.get("values") or []]
    return found


class AmoCrm:
    name = "amocrm"
    events = False

    def __init__(self, rest: AmoRest):
        self.rest = rest

    def find_contacts(self, phone: Phone) -> list[Contact]:
        body = self.rest.request("GET", "/api/v4/contacts", params={"query": phone.match_key, "limit": 50})
        contacts = ((body or {}).get("_embedded") or {}).get("contacts") or []
        found = []
        for contact in contacts:
            numbers = phone_values(contact)
            # ``query`` searches every field: keep only contacts whose phone really ends the same.
            if not any(_DIGITS.sub("", n).endswith(phone.match_key) for n in numbers):
                continue
            updated = contact.get("updated_at")
            found.append(
                Contact(
                    id=str(contact["id"]),
                    name=contact.get("name") or "",
                    phones=tuple(numbers),
                    updated_at=datetime.fromtimestamp(updated, UTC) if isinstance(updated, int) else None,
                )
            )
        return found

    def create_contact(self, phone: Phone, name: str = "") -> Contact:
        payload = [
            {
                "name": name or phone.e164,
                "custom_fields_values": [
                    {"field_code": "PHONE", "values": [{"value": phone.e164, "enum_code": "WORK"}]}
                ],
            }
        ]
        body = self.rest.request("POST", "/api/v4/contacts", json=payload)
        created = body["_embedded"]["contacts"][0]
        return Contact(id=str(created["id"]), name=payload[0]["name"], phones=(phone.e164,))

    def write_activity(self, activity: Activity) -> str:
        call: dict[str, Any] = {
            "direction": "outbound" if activity.direction.value == "outbound" else "inbound",
            "uniq": activity.call_id,
            "duration": activity.duration,
            "source": SOURCE,
            "phone": activity.ext_e164 or activity.ext_raw,
            "call_status": CALL_STATUS[activity.status],
            "call_result": CALL_RESULT[activity.status],
            "created_at": int(activity.started_at.timestamp()),
        }
        if activity.recording_url:
            call["link"] = activity.recording_url
        if activity.responsible_user and activity.responsible_user.isdigit():
            call["responsible_user_id"] = call["created_by"] = int(activity.responsible_user)
        body = self.rest.request("POST", "/api/v4/calls", json=[call])
        added = ((body or {}).get("_embedded") or {}).get("calls") or []
        return str(added[0].get("id", activity.call_id)) if added else activity.call_id

    def deal_context(self, deal_id: str) -> dict:
        """The deal's responsible user and its contacts' numbers (for the rules)."""
        lead = self.rest.request("GET", f"/api/v4/leads/{int(deal_id)}", params={"with": "contacts"}) or {}
        ids = [c["id"] for c in ((lead.get("_embedded") or {}).get("contacts") or []) if c.get("id")]
        phones: list[str] = []
        if ids:
            body = self.rest.request("GET", "/api/v4/contacts", params={"filter[id][]": ids})
            for contact in ((body or {}).get("_embedded") or {}).get("contacts") or []:
                phones += phone_values(contact)
        context = {"phones": phones}
        if lead.get("responsible_user_id"):
            context["responsible_user"] = str(lead["responsible_user_id"])
        return context

    def attach_calls(self, deal_id: str, call_ids: list[str], reference: str) -> None:
        raise CrmError("attach_calls is not supported by the amocrm backend yet", retryable=False)
