"""CRM events as received (``POST /webhooks/events``), once each, and what the rules did."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, update

from integration.ledger.db import insert_ignoring_duplicates
from integration.ledger.tables import crm_events


@dataclass(frozen=True)
class CrmEvent:
    id: str
    type: str
    data: dict
    received_at: datetime
    handled_at: datetime | None = None
    outcome: str | None = None


def _event(row) -> CrmEvent:
    values = dict(row._mapping)
    return CrmEvent(**values | {"data": json.loads(values["data"])})


class EventLedger:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, event_id: str, event_type: str, data: dict, now: datetime) -> bool:
        """Record an event once; True when it is new (a redelivery returns False)."""
        row = {"id": event_id, "type": event_type, "data": json.dumps(data, ensure_ascii=False), "received_at": now}
        return bool(insert_ignoring_duplicates(self.engine, crm_events, [row]))

    def get(self, event_id: str) -> CrmEvent | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(crm_events).where(crm_events.c.id == event_id)).first()
        return _event(row) if row else None

    def mark_handled(self, event_id: str, outcome: str, now: datetime) -> bool:
        """True for the first run only: the rules act once per event."""
        statement = (
            update(crm_events)
            .where(crm_events.c.id == event_id, crm_events.c.handled_at.is_(None))
            .values(handled_at=now, outcome=outcome[:4000])
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount == 1

    def unhandled(self, received_before: datetime, limit: int = 500) -> list[str]:
        """Events accepted but not handled (their job was lost): for the sweeper."""
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(crm_events.c.id)
                    .where(crm_events.c.handled_at.is_(None), crm_events.c.received_at < received_before)
                    .limit(limit)
                ).scalars()
            )
