"""The embedded CRM: contacts and call activities in the project's own database."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine, or_, select

from integration.ledger.db import insert_ignoring_duplicates
from integration.ledger.tables import activities, contacts
from integration.models import Activity, Contact
from integration.operator.auth import utc_now
from integration.phone import Phone


class LocalCrm:
    name = "local"

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now):
        self.engine = engine
        self.clock = clock

    def find_contacts(self, phone: Phone) -> list[Contact]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(contacts).where(
                    or_(contacts.c.phone_e164 == phone.e164, contacts.c.phone_key == phone.match_key)
                )
            )
            return [Contact(id=str(r.id), name=r.name, phones=(r.phone_e164,), updated_at=r.updated_at) for r in rows]

    def create_contact(self, phone: Phone, name: str = "") -> Contact:
        now = self.clock()
        with self.engine.begin() as connection:
            new_id = connection.execute(
                contacts.insert().values(
                    name=name,
                    phone_e164=phone.e164,
                    phone_key=phone.match_key,
                    phone_raw=phone.raw,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
        return Contact(id=str(new_id), name=name, phones=(phone.e164,), updated_at=now)

    def write_activity(self, activity: Activity) -> str:
        row = {
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
            "created_at": self.clock(),
        }
        insert_ignoring_duplicates(self.engine, activities, [row])
        with self.engine.connect() as connection:
            return str(
                connection.execute(select(activities.c.id).where(activities.c.call_id == activity.call_id)).scalar_one()
            )
