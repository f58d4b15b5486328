"""Events waiting to be sent to the CRM (``callback.finished``), with the same retry rules as calls."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, update

from integration.ledger.db import insert_ignoring_duplicates
from integration.ledger.tables import outbox

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
INCLUDED = "included"  # not sent: what it says already reached the CRM another way


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    subject: str
    data: dict
    status: str
    attempts: int
    created_at: datetime


def _event(row) -> Event:
    values = row._mapping
    return Event(
        id=values["id"],
        type=values["type"],
        subject=values["subject"],
        data=json.loads(values["data"]),
        status=values["status"],
        attempts=values["attempts"],
        created_at=values["created_at"],
    )


class Outbox:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, event_id: str, event_type: str, subject: str, data: dict, now: datetime) -> bool:
        """Record an event once (a second add of the same id does nothing); True when new."""
        row = {
            "id": event_id,
            "type": event_type,
            "subject": subject,
            "data": json.dumps(data, ensure_ascii=False),
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        return bool(insert_ignoring_duplicates(self.engine, outbox, [row]))

    def get(self, event_id: str) -> Event | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(outbox).where(outbox.c.id == event_id)).first()
        return _event(row) if row else None

    def finish(
        self, event_id: str, now: datetime, error: str | None = None, next_attempt_at: datetime | None = None
    ) -> None:
        """Record an attempt: sent (no ``error``), to be retried at ``next_attempt_at``, or given up."""
        if error is None:
            values = {"status": DELIVERED, "delivered_at": now, "next_attempt_at": None}
        else:
            values = {
                "status": PENDING if next_attempt_at else FAILED,
                "last_error": error[:2000],
                "next_attempt_at": next_attempt_at,
            }
        statement = update(outbox).where(outbox.c.id == event_id, outbox.c.status == PENDING)
        with self.engine.begin() as connection:
            connection.execute(statement.values(attempts=outbox.c.attempts + 1, **values))

    def settle(self, event_id: str, status: str, now: datetime) -> None:
        """Close a pending event without sending it (e.g. ``included``)."""
        statement = update(outbox).where(outbox.c.id == event_id, outbox.c.status == PENDING)
        with self.engine.begin() as connection:
            connection.execute(statement.values(status=status, delivered_at=now, next_attempt_at=None))

    def due(self, now: datetime, limit: int = 500) -> list[Event]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(outbox)
                .where(outbox.c.status == PENDING, outbox.c.next_attempt_at <= now)
                .order_by(outbox.c.next_attempt_at)
                .limit(limit)
            )
            return [_event(row) for row in rows]
