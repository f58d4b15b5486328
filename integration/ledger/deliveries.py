"""Delivery of each call per CRM: what the CRM holds of it (its id, the match, whether the
activity carried the recording) here, and its work state in the call's ``deliver_call`` work
item: pending → delivered (the item ``done``), or failed after the retry window."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select, update

from integration.ledger import work
from integration.ledger.db import dialect_module
from integration.ledger.tables import DEFAULT_ACCOUNT, calls, deliveries, work_items
from integration.ledger.work import WorkKey, WorkKind, WorkStatus
from integration.models import Match

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
KIND = WorkKind.DELIVER_CALL
STATUS = {WorkStatus.DONE.value: DELIVERED}  # the work item's status as a delivery's


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


def key(call_id: str, crm: str) -> WorkKey:
    return WorkKey(KIND, call_id, crm)


def delivery_status():
    """A delivery's status, from its work item (in queries joined with ``on_item``)."""
    return work.status_as(STATUS)


def on_item(crm):
    return work.joined_on(KIND, deliveries.c.account, deliveries.c.call_id, crm)


_SELECTED = select(
    deliveries.c.call_id,
    deliveries.c.crm,
    delivery_status().label("status"),
    work_items.c.attempts,
    deliveries.c.created_at,
    deliveries.c.crm_id,
    work_items.c.last_error,
    work_items.c.next_attempt_at,
    deliveries.c.match,
    deliveries.c.candidates,
    work_items.c.finished_at.label("finished_at"),
    deliveries.c.with_recording,
).select_from(deliveries.join(work_items, on_item(deliveries.c.crm)))


def _delivery(row) -> Delivery:
    values = dict(row._mapping)
    finished_at = values.pop("finished_at")
    return Delivery(**values, delivered_at=finished_at if values["status"] == DELIVERED else None)


class DeliveryLedger:
    """One account's deliveries."""

    def __init__(self, engine: Engine, account: str = DEFAULT_ACCOUNT):
        self.engine = engine
        self.account = account
        self.mine = deliveries.c.account == account

    def ensure(self, call_ids: Iterable[str], crm: str, now: datetime) -> None:
        """A pending delivery (and its work item) for each call that has none yet."""
        ids = list(call_ids)
        if not ids:
            return
        with self.engine.begin() as connection:
            connection.execute(
                dialect_module(self.engine).insert(deliveries).on_conflict_do_nothing(),
                [{"account": self.account, "call_id": c, "crm": crm, "created_at": now} for c in ids],
            )
            work.add_items(connection, [key(c, crm) for c in ids], now, account=self.account)

    def get(self, call_id: str, crm: str) -> Delivery | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                _SELECTED.where(self.mine, deliveries.c.call_id == call_id, deliveries.c.crm == crm)
            ).first()
        return _delivery(row) if row else None

    def remember_crm_id(self, call_id: str, crm: str, crm_id: str) -> None:
        """The CRM's id for a call still being delivered (e.g. Bitrix24's CALL_ID between steps)."""
        pending = (
            select(work_items.c.id)
            .where(work.of(key(call_id, crm), self.account), work_items.c.status == WorkStatus.PENDING.value)
            .exists()
        )
        statement = (
            update(deliveries)
            .where(self.mine, deliveries.c.call_id == call_id, deliveries.c.crm == crm, pending)
            .values(crm_id=crm_id)
        )
        with self.engine.begin() as connection:
            connection.execute(statement)

    def decide_recording(self, call_id: str, crm: str, include: bool) -> bool:
        """Record once whether this call's activity carries its recording link; returns the
        decision that stands (an earlier one wins)."""
        row = self.mine & (deliveries.c.call_id == call_id) & (deliveries.c.crm == crm)
        with self.engine.begin() as connection:
            connection.execute(
                update(deliveries).where(row, deliveries.c.with_recording.is_(None)).values(with_recording=include)
            )
            return connection.execute(select(deliveries.c.with_recording).where(row)).scalar_one()

    def mark_delivered(self, call_id: str, crm: str, crm_id: str, match: Match, now: datetime) -> bool:
        """The CRM's id and the match, together with the work item done (one transaction)."""
        with self.engine.begin() as connection:
            if not work.finish(connection, key(call_id, crm), now, from_failed=True, account=self.account):
                return False
            connection.execute(
                update(deliveries)
                .where(self.mine, deliveries.c.call_id == call_id, deliveries.c.crm == crm)
                .values(crm_id=crm_id, match=match.kind.value, candidates=json.dumps(list(match.candidates)))
            )
            return True

    def fail_attempt(self, call_id: str, crm: str, error: str, now: datetime, *, retryable: bool) -> datetime | None:
        """Count a failed attempt under the retry policy; returns the next attempt's time, or None
        when the delivery is given up (``failed``)."""
        return work.WorkLedger(self.engine, self.account).fail_attempt(
            key(call_id, crm), error, now, retryable=retryable
        )

    def undelivered_calls(self, crm: str, limit: int = 500) -> list[str]:
        """Calls that have no delivery item for ``crm`` yet (e.g. the sync died right after inserting them)."""
        joined = calls.outerjoin(work_items, work.joined_on(KIND, calls.c.account, calls.c.id, crm))
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(calls.c.id)
                    .select_from(joined)
                    .where(calls.c.account == self.account, work_items.c.id.is_(None))
                    .limit(limit)
                ).scalars()
            )

    def due(self, crm: str, now: datetime, limit: int = 500) -> list[Delivery]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                _SELECTED.where(
                    self.mine,
                    deliveries.c.crm == crm,
                    work_items.c.status == WorkStatus.PENDING.value,
                    work_items.c.next_attempt_at <= now,
                )
                .order_by(work_items.c.next_attempt_at)
                .limit(limit)
            )
            return [_delivery(row) for row in rows]

    def counts(self, crm: str) -> dict[str, int]:
        status = delivery_status()
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(status, func.count())
                .where(work_items.c.account == self.account, work_items.c.kind == KIND, work_items.c.target == crm)
                .group_by(status)
            )
            return {status: count for status, count in rows}
