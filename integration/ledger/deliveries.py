"""Delivery state of each call per CRM: pending → delivered, or failed after the retry window."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select, update

from integration.ledger.db import insert_ignoring_duplicates
from integration.ledger.tables import calls, deliveries
from integration.models import Match

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class Delivery:
    call_id: str
    crm: str
    status: str
    attempts: int
    created_at: datetime
    crm_id: str | None = None
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    match: str | None = None
    candidates: str | None = None
    delivered_at: datetime | None = None
    with_recording: bool | None = None


class DeliveryLedger:
    def __init__(self, engine: Engine):
        self.engine = engine

    def ensure(self, call_ids: Iterable[str], crm: str, now: datetime) -> None:
        """A pending delivery for each call that has none yet."""
        rows = [
            {"call_id": c, "crm": crm, "status": PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now}
            for c in call_ids
        ]
        insert_ignoring_duplicates(self.engine, deliveries, rows)

    def get(self, call_id: str, crm: str) -> Delivery | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(deliveries).where(deliveries.c.call_id == call_id, deliveries.c.crm == crm)
            ).first()
        return Delivery(**row._mapping) if row else None

    def remember_crm_id(self, call_id: str, crm: str, crm_id: str) -> None:
        """The CRM's id for a call still being delivered (e.g. Bitrix24's CALL_ID between steps)."""
        statement = (
            update(deliveries)
            .where(deliveries.c.call_id == call_id, deliveries.c.crm == crm, deliveries.c.status == PENDING)
            .values(crm_id=crm_id)
        )
        with self.engine.begin() as connection:
            connection.execute(statement)

    def decide_recording(self, call_id: str, crm: str, include: bool) -> bool:
        """Record once whether this call's activity carries its recording link; returns the
        decision that stands (an earlier one wins)."""
        row = (deliveries.c.call_id == call_id) & (deliveries.c.crm == crm)
        with self.engine.begin() as connection:
            connection.execute(
                update(deliveries).where(row, deliveries.c.with_recording.is_(None)).values(with_recording=include)
            )
            return connection.execute(select(deliveries.c.with_recording).where(row)).scalar_one()

    def mark_delivered(self, call_id: str, crm: str, crm_id: str, match: Match, now: datetime) -> bool:
        statement = (
            update(deliveries)
            .where(deliveries.c.call_id == call_id, deliveries.c.crm == crm, deliveries.c.status != DELIVERED)
            .values(
                status=DELIVERED,
                crm_id=crm_id,
                delivered_at=now,
                next_attempt_at=None,
                attempts=deliveries.c.attempts + 1,
                match=match.kind.value,
                candidates=json.dumps(list(match.candidates)),
            )
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount == 1

    def mark_failed_attempt(self, call_id: str, crm: str, error: str, next_attempt_at: datetime | None) -> None:
        """Count a failed attempt; without ``next_attempt_at`` the delivery is given up (``failed``)."""
        statement = (
            update(deliveries)
            .where(deliveries.c.call_id == call_id, deliveries.c.crm == crm, deliveries.c.status == PENDING)
            .values(
                status=PENDING if next_attempt_at else FAILED,
                attempts=deliveries.c.attempts + 1,
                last_error=error[:2000],
                next_attempt_at=next_attempt_at,
            )
        )
        with self.engine.begin() as connection:
            connection.execute(statement)

    def undelivered_calls(self, crm: str, limit: int = 500) -> list[str]:
        """Calls that have no delivery row for ``crm`` yet (e.g. the sync died right after inserting them)."""
        joined = calls.outerjoin(deliveries, (deliveries.c.call_id == calls.c.id) & (deliveries.c.crm == crm))
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(calls.c.id).select_from(joined).where(deliveries.c.call_id.is_(None)).limit(limit)
                ).scalars()
            )

    def due(self, crm: str, now: datetime, limit: int = 500) -> list[Delivery]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(deliveries)
                .where(deliveries.c.crm == crm, deliveries.c.status == PENDING, deliveries.c.next_attempt_at <= now)
                .order_by(deliveries.c.next_attempt_at)
                .limit(limit)
            )
            return [Delivery(**row._mapping) for row in rows]

    def counts(self, crm: str) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(deliveries.c.status, func.count()).where(deliveries.c.crm == crm).group_by(deliveries.c.status)
            )
            return {status: count for status, count in rows}
