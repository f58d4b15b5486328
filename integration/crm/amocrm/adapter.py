"""The ``amocrm`` CRM backend (amoCRM and Kommo, API v4).

Calls go to ``POST /api/v4/calls`` (amoCRM puts each on the contact, company or lead the number
belongs to), with our stable call id as ``uniq`` and the signed recording link as ``link``; an
unknown number under ``MATCH_UNKNOWN=create_lead`` becomes an incoming lead
(``POST /api/v4/leads/unsorted/sip``). A recording stored later is added to the call's note
(``PATCH /api/v4/<entity>/notes/<id>``); ``attach_calls`` copies call notes onto a lead. Contacts
are looked up with ``GET /api/v4/contacts?query=`` and checked against their phone fields. Requests are paced through Redis (``AMOCRM_RATE``, 7/s as amoCRM allows); 429 backs off
and retries after 1, 2, 4 s (``integration.retrying``); a 401 makes the tokens refresh once (``amocrm.auth``).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import requests
from tenacity import wait_exponential

from integration.crm.amocrm.auth import AmoTokens
from integration.crm.base import CrmError, CrmRateLimited, external_e164, logged_crm_id, rate_limited
from integration.ledger.deliveries import DeliveryLedger
from integration.models import Activity, CallStatus, Contact
from integration.phone import Phone
from integration.ratelimit import Pacer
from integration.retrying import retrying

log = logging.getLogger(__name__)

SOURCE = "vats-bridge"
CALL_STATUS = {CallStatus.ANSWERED: 4, CallStatus.MISSED: 6, CallStatus.VOICEMAIL: 1}  # documented codes
CALL_RESULT = {CallStatus.ANSWERED: "answered", CallStatus.MISSED: "missed", CallStatus.VOICEMAIL: "voicemail"}
LIMIT_RETRIES = 3  # 429 answers absorbed in place (after 1, 2, 4 s) before the work is retried later
ENTITY_PATHS = {"lead": "leads", "contact": "contacts", "company": "companies", "customer": "customers"}
CALL_NOTE_TYPES = ("call_in", "call_out")
NOTE_PARAMS = ("uniq", "duration", "source", "link", "phone", "call_result", "call_status")
UNCONFIRMED = "unconfirmed"  # crm_id while a write is under way: it may have reached amoCRM
LOOKBACK_SLACK = 300  # seconds: amoCRM's clock may differ from ours
PAGE_SIZE, MAX_PAGES, NOTES_PER_REQUEST = 250, 40, 50
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
        """One request: a 429 is repeated after 1, 2, 4 s; a 401 makes the tokens refresh and the
        request is repeated at once (once per request, without using up a back-off)."""
        refreshed = False

        def attempt() -> Any:
            nonlocal refreshed
            while True:
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
                    self.tokens.expire(token)  # the repeat refreshes (once, across processes)
                    refreshed = True
                    continue
                if response.status_code == 429:
                    raise CrmRateLimited(f"amoCRM {method} {path}: HTTP 429 after {LIMIT_RETRIES} back-offs")
                if response.status_code == 204:
                    return None
                if 200 <= response.status_code < 300:
                    return response.json() if response.content else None
                raise _error(method, path, response)

        return retrying(
            tries=LIMIT_RETRIES + 1,
            when=rate_limited,
            wait=wait_exponential(multiplier=1.0),
            sleep=self.sleep,
            log=log,
            what="amoCRM request",
            method=method,
            path=path,
        )(attempt)


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
    creates_leads = True  # MATCH_UNKNOWN=create_lead → an incoming lead (unsorted, category sip)

    def __init__(self, rest: AmoRest, deliveries: DeliveryLedger):
        self.rest = rest
        self.deliveries = deliveries

    def reseal_secrets(self) -> int:
        return self.rest.tokens.reseal()

    def find_contacts(self, phone: Phone) -> list[Contact]:
        body = self.rest.request("GET", "/api/v4/contacts", params={"query": phone.match_key, "limit": 50})
        contacts = ((body or {}).get("_embedded") or {}).get("contacts") or []
        found = []
        for contact in contacts:
            numbers = phone_values(contact)
            # ``query`` searches every field: keep only contacts whose phone really ends the same.
            if not phone.match_key or not any(_DIGITS.sub("", n).endswith(phone.match_key) for n in numbers):
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
        e164 = external_e164(phone)
        payload = [{"name": name or e164, "custom_fields_values": [phone_field(e164)]}]
        body = self.rest.request("POST", "/api/v4/contacts", json=payload)
        created = body["_embedded"]["contacts"][0]
        return Contact(id=str(created["id"]), name=name or e164, phones=(e164,))

    def write_activity(self, activity: Activity) -> str:
        """The call as a call note (``/api/v4/calls``), or as an incoming lead for an unknown
        number under ``create_lead``; returns ``entity:entity_id:note_id``.

        amoCRM does not recognise a call it already has, so an attempt that may have reached it
        (its answer lost, or the worker killed) is looked up before anything is sent again.
        """
        if not activity.contact_ids and not activity.create_lead:
            return ""  # amoCRM logs calls only on numbers it knows; the ledger keeps the match
        delivery = self.deliveries.get(activity.call_id, self.name)
        if delivery is not None and delivery.crm_id == UNCONFIRMED:
            found = self._find_logged(activity, since=delivery.created_at)
            if found:
                return found
        self.deliveries.remember_crm_id(activity.call_id, self.name, UNCONFIRMED)
        if activity.create_lead:
            return self._add_incoming_lead(activity)
        return self._add_call(activity)

    def _add_call(self, activity: Activity) -> str:
        body = self.rest.request("POST", "/api/v4/calls", json=[call_payload(activity)])
        added = ((body or {}).get("_embedded") or {}).get("calls") or []
        if not added:
            errors = json.dumps((body or {}).get("errors") or body, ensure_ascii=False)[:300]
            raise CrmError(f"amoCRM did not log the call (no card has its number yet?): {errors}")
        call = added[0]
        return note_ref(call.get("entity_type"), call.get("entity_id"), call.get("id"))

    def _add_incoming_lead(self, activity: Activity) -> str:
        phone = activity.ext_e164 or activity.ext_raw
        at = int(activity.started_at.timestamp())
        ours, theirs = activity.line, phone
        metadata: dict[str, Any] = {
            "is_call_event_needed": True,
            "uniq": activity.call_id,
            "duration": activity.duration,
            "service_code": SOURCE,
            "from": theirs if activity.direction.value == "inbound" else ours,
            "phone": ours if activity.direction.value == "inbound" else theirs,
            "called_at": at,
        }
        if activity.recording_url:
            metadata["link"] = activity.recording_url
        lead: dict[str, Any] = {"name": f"Call {phone}"}
        if activity.responsible_user and activity.responsible_user.isascii() and activity.responsible_user.isdigit():
            lead["responsible_user_id"] = int(activity.responsible_user)
        payload = {
            "source_name": SOURCE,
            "source_uid": activity.call_id,
            "created_at": at,
            "metadata": metadata,
            "_embedded": {"leads": [lead], "contacts": [{"name": phone, "custom_fields_values": [phone_field(phone)]}]},
        }
        body = self.rest.request("POST", "/api/v4/leads/unsorted/sip", json=[payload])
        added = ((body or {}).get("_embedded") or {}).get("unsorted") or []
        if not added:
            raise CrmError("amoCRM did not add the incoming lead")
        leads = (added[0].get("_embedded") or {}).get("leads") or []
        return note_ref("leads", leads[0]["id"], None) if leads else f"unsorted:{added[0].get('uid', '')}:"

    def _find_logged(self, activity: Activity, since: datetime) -> str | None:
        """The call note (or incoming lead) an earlier attempt left, if there is one."""
        for entity in ENTITY_PATHS.values():
            try:
                note = self._find_call_note(f"/api/v4/{entity}/notes", activity.call_id, since)
            except CrmError as exc:
                if entity == "customers" and not exc.retryable:
                    continue  # the account has customers switched off
                raise
            if note:
                return note_ref(entity, note.get("entity_id"), note.get("id"))
        if activity.create_lead:
            for item in self._pages(
                "/api/v4/leads/unsorted", {"filter[category][]": "sip", "order[created_at]": "desc"}
            ):
                if item.get("source_uid") == activity.call_id:
                    leads = (item.get("_embedded") or {}).get("leads") or []
                    return note_ref("leads", leads[0]["id"], None) if leads else f"unsorted:{item.get('uid', '')}:"
                if (item.get("created_at") or 0) < since.timestamp() - LOOKBACK_SLACK:
                    break
        return None

    def _find_call_note(self, path: str, uniq: str, since: datetime | None = None) -> dict | None:
        params: dict[str, Any] = {"filter[note_type][]": list(CALL_NOTE_TYPES)}
        if since is not None:
            params["filter[updated_at][from]"] = int(since.timestamp()) - LOOKBACK_SLACK
        for note in self._pages(path, params):
            if (note.get("params") or {}).get("uniq") == uniq:
                return note
        return None

    def _pages(self, path: str, params: dict) -> Iterator[dict]:
        """The items of a list, page by page (amoCRM answers 204 when there are none)."""
        for page in range(1, MAX_PAGES + 1):
            body = self.rest.request("GET", path, params=params | {"limit": PAGE_SIZE, "page": page}) or {}
            embedded = body.get("_embedded") or {}
            yield from next(iter(embedded.values()), [])
            if not (body.get("_links") or {}).get("next"):
                return

    def _call_note(self, crm_id: str, call_id: str) -> tuple[str, dict] | None:
        """(entity path, note) of a delivered call, from its ``entity:entity_id:note_id``."""
        entity, entity_id, note_id = (crm_id.split(":") + ["", ""])[:3]
        if entity not in ENTITY_PATHS.values():
            return None
        if note_id:
            return entity, self.rest.request("GET", f"/api/v4/{entity}/notes/{int(note_id)}") or {}
        note = self._find_call_note(f"/api/v4/{entity}/{int(entity_id)}/notes", call_id)
        return (entity, note) if note else None

    def send(self, event_type: str, subject: str, data: dict) -> str:
        """Events from the outbox: a recording stored after its call was logged is added to the
        call's note; the others have no amoCRM counterpart."""
        if event_type != "recording.ready" or not data.get("url"):
            return ""
        crm_id = logged_crm_id(self.deliveries, data["call_id"], self.name)
        if crm_id is None:
            return ""  # the call was not logged in amoCRM (unknown number)
        found = self._call_note(crm_id, data["call_id"])
        if found is None:
            raise CrmError("the call's note is not in amoCRM yet")  # an incoming lead's call event comes later
        entity, note = found
        params = call_params(note) | {"link": data["url"]}
        self.rest.request(
            "PATCH", f"/api/v4/{entity}/notes/{note['id']}", json={"note_type": note["note_type"], "params": params}
        )
        return str(note["id"])

    def deal_context(self, deal_id: str) -> dict:
        """The deal's responsible user and its contacts' numbers (for the rules)."""
        lead = self.rest.request("GET", f"/api/v4/leads/{int(deal_id)}", params={"with": "contacts"}) or {}
        ids = [c["id"] for c in ((lead.get("_embedded") or {}).get("contacts") or []) if c.get("id")]
        phones: list[str] = []
        if ids:
            body = self.rest.request("GET", "/api/v4/contacts", params={"filter[id][]": ids})
            for contact in ((body or {}).get("_embedded") or {}).get("contacts") or []:
                phones += phone_values(contact)
        context: dict[str, Any] = {"phones": phones}
        if lead.get("responsible_user_id"):
            context["responsible_user"] = str(lead["responsible_user_id"])
        return context

    def attach_calls(self, deal_id: str, call_ids: list[str], reference: str) -> None:
        """Copy each call's note onto the lead (skipping those the lead already shows)."""
        lead = int(deal_id)
        shown = {(n.get("params") or {}).get("uniq") for n in self._pages(f"/api/v4/leads/{lead}/notes", {
            "filter[note_type][]": list(CALL_NOTE_TYPES)})}  # fmt: skip
        notes = []
        for call_id in call_ids:
            if call_id in shown:
                continue
            crm_id = logged_crm_id(self.deliveries, call_id, self.name)
            found = self._call_note(crm_id, call_id) if crm_id else None
            if found is None:
                continue  # never logged in amoCRM (unknown number, or failed)
            note = found[1]
            notes.append({"entity_id": lead, "note_type": note["note_type"], "params": call_params(note)})
        for start in range(0, len(notes), NOTES_PER_REQUEST):
            self.rest.request("POST", "/api/v4/leads/notes", json=notes[start : start + NOTES_PER_REQUEST])


def call_params(note: dict) -> dict:
    """The documented call parameters of a call note (what a copy or an edit sends back)."""
    return {k: v for k, v in (note.get("params") or {}).items() if k in NOTE_PARAMS}


def phone_field(number: str) -> dict:
    return {"field_code": "PHONE", "values": [{"value": number, "enum_code": "WORK"}]}


def call_payload(activity: Activity) -> dict[str, Any]:
    """One call for ``POST /api/v4/calls``."""
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
    if activity.responsible_user and activity.responsible_user.isascii() and activity.responsible_user.isdigit():
        call["responsible_user_id"] = call["created_by"] = int(activity.responsible_user)
    return call


def note_ref(entity_type: str | None, entity_id: Any, note_id: Any) -> str:
    """Our id of a logged call: ``entity:entity_id:note_id`` (``contacts:12:345``)."""
    entity = ENTITY_PATHS.get(entity_type or "", entity_type or "")
    return f"{entity}:{entity_id or ''}:{note_id or ''}"
