"""A local stand-in for an amoCRM account's API v4, with the documented behaviour that matters for
exactly-once delivery, and injectable faults.

- ``POST /api/v4/calls`` adds a call note to the contact whose phone ends with the same 10 digits
  (and nothing when there is none); like amoCRM, it does not recognise a ``uniq`` it already has;
- ``POST /api/v4/leads/unsorted/sip`` makes an incoming lead with its contact and, with
  ``is_call_event_needed``, a call note on the lead; a ``source_uid`` it already has is an error;
- notes can be listed (by type and ``updated_at``, 250 a page), read, edited and added.
Faults: ``limit_rate`` answers 429 and ``fail_rate`` 500, both without doing anything;
``fail_after_rate`` does the work and then answers 500 (the answer is lost).
"""

from __future__ import annotations

import itertools
import random
import re
import threading
import time

from flask import Flask, request

PAGE = 250
ENTITY_TYPES = {"contacts": "contact", "leads": "lead", "companies": "company", "customers": "customer"}


def digits(value: str) -> str:
    return re.sub(r"\D", "", str(value))[-10:]


def phones_of(contact: dict) -> set[str]:
    return {digits(v["value"]) for field in contact["custom_fields_values"] for v in field["values"]}


class AmoStandIn:
    def __init__(self, *, limit_rate: float = 0.0, fail_rate: float = 0.0, fail_after_rate: float = 0.0, seed: int = 1):
        self.limit_rate, self.fail_rate, self.fail_after_rate = limit_rate, fail_rate, fail_after_rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.contacts: dict[int, dict] = {}
        self.notes: dict[int, dict] = {}  # id → note (entity, entity_id, note_type, params, updated_at)
        self.unsorted: list[dict] = []
        self.leads: dict[int, dict] = {}
        self._ids = itertools.count(1000)
        self.app = Flask("amocrm")
        self.app.add_url_rule("/api/v4/<path:path>", view_func=self.handle, methods=["GET", "POST", "PATCH"])

    def add_contact(self, name: str, phone: str) -> int:
        with self.lock:
            return self._contact(name, phone)

    def stop_failing(self) -> None:
        with self.lock:
            self.limit_rate = self.fail_rate = self.fail_after_rate = 0.0

    def call_notes(self, uniq: str) -> list[dict]:
        return [n for n in self.notes.values() if n["params"].get("uniq") == uniq]

    def handle(self, path: str):
        with self.lock:
            self.requests.append((request.method, path))
            roll = self.rng.random()
            if roll < self.limit_rate:
                return {"title": "Too Many Requests", "status": 429}, 429
            if roll < self.limit_rate + self.fail_rate:
                return {"title": "Internal Server Error", "status": 500}, 500
            answer = self._apply(request.method, path.rstrip("/"))
            if roll < self.limit_rate + self.fail_rate + self.fail_after_rate:
                return {"title": "Internal Server Error", "detail": "the answer was lost", "status": 500}, 500
            return answer

    # --- what amoCRM does ---------------------------------------------------------------------

    def _contact(self, name: str, phone: str) -> int:
        contact_id = next(self._ids)
        self.contacts[contact_id] = {
            "id": contact_id,
            "name": name,
            "updated_at": int(time.time()),
            "custom_fields_values": [{"field_code": "PHONE", "values": [{"value": phone, "enum_code": "WORK"}]}],
        }
        return contact_id

    def _note(self, entity: str, entity_id: int, note_type: str, params: dict) -> dict:
        note_id = next(self._ids)
        self.notes[note_id] = note = {
            "id": note_id,
            "entity": entity,
            "entity_id": entity_id,
            "note_type": note_type,
            "params": dict(params),
            "updated_at": int(time.time()),
        }
        return note

    def _shown(self, note: dict) -> dict:
        return {k: v for k, v in note.items() if k != "entity"}

    def _apply(self, method: str, path: str):
        body = request.get_json(silent=True)
        parts = path.split("/")
        if path == "contacts" and method == "GET":
            return self._find_contacts()
        if path == "contacts" and method == "POST":
            ids = [self._contact(c["name"], c["custom_fields_values"][0]["values"][0]["value"]) for c in body]
            return {"_embedded": {"contacts": [{"id": i, "request_id": str(n)} for n, i in enumerate(ids)]}}
        if path == "calls" and method == "POST":
            return self._add_calls(body)
        if path == "leads/unsorted/sip" and method == "POST":
            return self._add_unsorted(body)
        if path == "leads/unsorted" and method == "GET":
            return self._page("unsorted", sorted(self.unsorted, key=lambda u: -u["created_at"]))
        if len(parts) == 2 and parts[1] == "notes" and method == "GET":  # e.g. contacts/notes
            return self._list_notes(lambda n: n["entity"] == parts[0])
        if len(parts) == 3 and parts[2] == "notes" and method == "GET":  # leads/12/notes
            return self._list_notes(lambda n: n["entity"] == parts[0] and n["entity_id"] == int(parts[1]))
        if len(parts) == 2 and parts == ["leads", "notes"] and method == "POST":
            added = [self._note("leads", int(n["entity_id"]), n["note_type"], n["params"]) for n in body]
            return {"_embedded": {"notes": [{"id": n["id"], "entity_id": n["entity_id"]} for n in added]}}
        if len(parts) == 3 and parts[1] == "notes":  # contacts/notes/77
            note = self.notes.get(int(parts[2]))
            if note is None or note["entity"] != parts[0]:
                return {"title": "Not Found", "status": 404}, 404
            if method == "PATCH":
                note["params"] = dict(body["params"])
                note["updated_at"] = int(time.time())
                return {"id": note["id"], "updated_at": note["updated_at"]}
            return self._shown(note)
        return {"title": "Not Found", "detail": path, "status": 404}, 404

    def _find_contacts(self):
        query = digits(request.args.get("query", ""))
        found = [c for c in self.contacts.values() if query in phones_of(c)]
        return ({"_embedded": {"contacts": found}}, 200) if found else ("", 204)

    def _add_calls(self, body: list[dict]):
        added, errors = [], []
        for n, call in enumerate(body):
            owners = [c for c in self.contacts.values() if digits(call["phone"]) in phones_of(c)]
            if not owners:
                errors.append({"request_id": str(n), "detail": "Entity not found"})
                continue
            note_type = "call_in" if call["direction"] == "inbound" else "call_out"
            params = {k: call[k] for k in ("uniq", "duration", "source", "link", "phone", "call_status") if k in call}
            note = self._note("contacts", owners[0]["id"], note_type, params)
            added.append(
                {"id": note["id"], "entity_id": owners[0]["id"], "entity_type": "contact", "request_id": str(n)}
            )
        return {"_total_items": len(added), "errors": errors, "_embedded": {"calls": added}}

    def _add_unsorted(self, body: list[dict]):
        made = []
        for n, item in enumerate(body):
            if any(u["source_uid"] == item["source_uid"] for u in self.unsorted):
                return {"title": "Bad Request", "status": 400, "detail": "Duplicate source_uid"}, 400
            lead_id = next(self._ids)
            self.leads[lead_id] = item["_embedded"]["leads"][0]
            contact = item["_embedded"]["contacts"][0]
            contact_id = self._contact(contact["name"], contact["custom_fields_values"][0]["values"][0]["value"])
            metadata = item["metadata"]
            if metadata.get("is_call_event_needed"):
                params = {k: metadata[k] for k in ("uniq", "duration", "link", "phone") if k in metadata}
                self._note("leads", lead_id, "call_in", params | {"source": item["source_name"]})
            unsorted = {
                "uid": f"uid{lead_id:x}",
                "source_uid": item["source_uid"],
                "source_name": item["source_name"],
                "category": "sip",
                "created_at": int(time.time()),
                "metadata": metadata,
                "_embedded": {"leads": [{"id": lead_id}], "contacts": [{"id": contact_id}], "companies": []},
            }
            self.unsorted.append(unsorted)
            made.append({"uid": unsorted["uid"], "request_id": str(n), "_embedded": unsorted["_embedded"]})
        return {"_total_items": len(made), "_embedded": {"unsorted": made}}

    def _list_notes(self, belongs):
        types = request.args.getlist("filter[note_type][]")
        since = int(request.args.get("filter[updated_at][from]", 0))
        found = [
            self._shown(n)
            for n in sorted(self.notes.values(), key=lambda n: n["id"])
            if belongs(n) and (not types or n["note_type"] in types) and n["updated_at"] >= since
        ]
        return self._page("notes", found)

    def _page(self, key: str, items: list[dict]):
        page, limit = int(request.args.get("page", 1)), min(PAGE, int(request.args.get("limit", PAGE)))
        chunk = items[(page - 1) * limit : page * limit]
        if not chunk:
            return "", 204
        links = {"self": {"href": request.url}}
        if page * limit < len(items):
            links["next"] = {"href": f"{request.base_url}?page={page + 1}"}
        return {"_page": page, "_links": links, "_embedded": {key: chunk}}
