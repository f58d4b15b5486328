"""The embedded CRM: contacts and call activities in the project's own database."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine, or_, select

from integration.errors import InvalidPhoneNumber
from integration.ledger.db import insert_ignoring_duplicates
from integration.ledger.tables import DEFAULT_ACCOUNT, activities, contacts, deal_calls, recordings
from integration.models import Activity, Contact
from integration.phone import Phone, parse_phone
from integration.timeutil import utc_now


class LocalCrm:
    name = "local"

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now, account: str = DEFAULT_ACCOUNT):
        self.engine = engine
        self.clock = clock
        self.account = account  # every contact, activity and attached call is one account's

    def find_contacts(self, phone: Phone) -> list[Contact]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(contacts).where(
                    contacts.c.account == self.account,
                    or_(contacts.c.phone_e164 == phone.e164, contacts.c.phone_key == phone.match_key),
                )
            )
            return [Contact(id=str(r.id), name=r.name, phones=(r.phone_e164,), updated_at=r.updated_at) for r in rows]

    def create_contact(self, phone: Phone, name: str = "") -> Contact:
        now = self.clock()
        with self.engine.begin() as connection:
            inserted = connection.execute(
                contacts.insert().values(
                    account=self.account,
                    name=name,
                    phone_e164=phone.e164,
                    phone_key=phone.match_key,
                    phone_raw=phone.raw,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key
        assert inserted is not None  # an INSERT always has a key
        return Contact(id=str(inserted[0]), name=name, phones=(phone.e164,) if phone.e164 else (), updated_at=now)

    def import_contacts(self, rows: list[dict[str, str]], region: str) -> tuple[int, list[str]]:
        return add_contacts(self, rows, region)

    def contacts_page(self, limit: int, offset: int, phone: Phone | None = None) -> list[dict]:
        statement = (
            select(contacts)
            .where(contacts.c.account == self.account)
            .order_by(contacts.c.id)
            .limit(limit)
            .offset(offset)
        )
        if phone is not None:
            statement = statement.where(contacts.c.phone_key == phone.match_key)
        with self.engine.connect() as connection:
            return [
                {
                    "id": str(r.id),
                    "name": r.name,
                    "phone": r.phone_e164,
                    "phone_raw": r.phone_raw,
                    "created_at": r.created_at.isoformat(),
                    "updated_at": r.updated_at.isoformat(),
                }
                for r in connection.execute(statement)
            ]

    def activities_page(self, limit: int, offset: int, contact_id: str | None = None) -> list[dict]:
        stored = (recordings.c.call_id == activities.c.call_id) & (recordings.c.status == "stored")
        statement = (
            select(activities, recordings.c.id.label("recording_id"))
            .select_from(activities.outerjoin(recordings, stored))
            .where(activities.c.account == self.account)
            .order_by(activities.c.started_at.desc(), activities.c.id)
            .limit(limit)
            .offset(offset)
        )
        if contact_id is not None:
            statement = statement.where(activities.c.contact_ids.contains(json.dumps(contact_id), autoescape=True))
        with self.engine.connect() as connection:
            return [
                {
                    "id": str(r.id),
                    "call_id": r.call_id,
                    "contact_ids": json.loads(r.contact_ids),
                    "direction": r.direction,
                    "status": r.status,
                    "started_at": r.started_at.isoformat(),
                    "duration": r.duration,
                    "line": r.line,
                    "external": {"e164": r.ext_e164, "raw": r.ext_raw},
                    "responsible_user": r.responsible_user,
                    "callback_request_id": r.callback_request_id,
                    "recording_id": r.recording_id,
                }
                for r in connection.execute(statement)
            ]

    def attach_calls(self, deal_id: str, call_ids: list[str], reference: str) -> None:
        now = self.clock()
        rows = [
            {"account": self.account, "deal_id": deal_id, "call_id": call_id, "attached_at": now}
            for call_id in call_ids
        ]
        insert_ignoring_duplicates(self.engine, deal_calls, rows)

    def deal_call_ids(self, deal_id: str) -> list[str]:
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(deal_calls.c.call_id)
                    .where(deal_calls.c.account == self.account, deal_calls.c.deal_id == deal_id)
                    .order_by(deal_calls.c.call_id)
                ).scalars()
            )

    def write_activity(self, activity: Activity) -> str:
        row = {
            "account": self.account,
            "call_id": activity.call_id,
            "contact_ids": json.dumps(list(activity.contact_ids)),
            "direction": activity.direction.value,
            "status": activity.status.value,
            "started_at": activity.started_at,
            "duration": activity.duration,
            "line": activity.line,
            "ext_e164": activity.ext_e164,
            "ext_raw": activity.ext_raw,
            "responsible_user": activity.responsible_user,
            "callback_request_id": activity.callback_request_id,
            "created_at": self.clock(),
        }
        insert_ignoring_duplicates(self.engine, activities, [row])
        with self.engine.connect() as connection:
            return str(
                connection.execute(
                    select(activities.c.id).where(
                        activities.c.account == self.account, activities.c.call_id == activity.call_id
                    )
                ).scalar_one()
            )


def add_contacts(crm: LocalCrm, rows: list[dict[str, str]], region: str) -> tuple[int, list[str]]:
    """Add contacts from CSV rows (``name``, ``phone``); returns (added, one error line per bad row).

    Row numbers count the header as line 1, as a spreadsheet shows them.
    """
    added, errors = 0, []
    for number, row in enumerate(rows, start=2):
        raw = (row.get("phone") or "").strip()
        try:
            phone = parse_phone(raw, region)
        except InvalidPhoneNumber as exc:
            errors.append(f"line {number}: phone {raw!r}: {exc.reason}")
            continue
        if phone.internal or not phone.valid:
            errors.append(f"line {number}: phone {raw!r}: not a valid external number")
            continue
        crm.create_contact(phone, (row.get("name") or "").strip()[:200])
        added += 1
    return added, errors
