"""CRM events as received (``POST /webhooks/events``), once each; handling one is its
``handle_event`` work item, whose result is what the rules did."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from integration.ledger import work
from integration.ledger.db import dialect_module
from integration.ledger.tables import DEFAULT_ACCOUNT, crm_events, work_items
from integration.ledger.work import WorkKey, WorkKind, WorkStatus

KIND = WorkKind.HANDLE_EVENT


@dataclass(frozen=True)
class CrmEvent:
    id: str
    type: str
    data: dict
    received_at: datetime
    handled_at: datetime | None = None
    outcome: str | None = None
    attempts: int = 0


def qualified(account: str, source_id: str) -> str:
    """An event's id: the sender's (``webhook:<webhook-id>``), a stored account's prefixed with
    its id (``acme/webhook:…``): ids are unique across accounts, senders' ids need not be."""
    return source_id if account == DEFAULT_ACCOUNT else f"{account}/{source_id}"


def key(event_id: str) -> WorkKey:
    return WorkKey(KIND, event_id)


_SELECTED = select(
    crm_events.c.id,
    crm_events.c.type,
    crm_events.c.data,
    crm_events.c.received_at,
    work_items.c.finished_at.label("handled_at"),
    work_items.c.result.label("outcome"),
    work_items.c.attempts,
).select_from(crm_events.join(work_items, work.joined_on(KIND, crm_events.c.account, crm_events.c.id)))


def _event(row) -> CrmEvent:
    values = dict(row._mapping)
    return CrmEvent(**values | {"data": json.loads(values["data"])})


class EventLedger:
    """One account's CRM events (a stored account's event ids carry the account: ``acme/webhook:…``)."""

    def __init__(self, engine: Engine, account: str = DEFAULT_ACCOUNT):
        self.engine = engine
        self.account = account
        self.mine = crm_events.c.account == account

    def add(self, event_id: str, event_type: str, data: dict, now: datetime) -> bool:
        """Record an event once, and the work of handling it; True when it is new (a redelivery returns False)."""
        row = {
            "account": self.account,
            "id": event_id,
            "type": event_type,
            "data": json.dumps(data, ensure_ascii=False),
            "received_at": now,
        }
        insert = dialect_module(self.engine).insert(crm_events).on_conflict_do_nothing().returning(crm_events.c.id)
        with self.engine.begin() as connection:
            new = connection.execute(insert, row).first() is not None
            if new:
                work.add_items(connection, [key(event_id)], now, account=self.account)
        return new

    def get(self, event_id: str) -> CrmEvent | None:
        with self.engine.connect() as connection:
            row = connection.execute(_SELECTED.where(self.mine, crm_events.c.id == event_id)).first()
        return _event(row) if row else None

    def mark_handled(self, event_id: str, outcome: str, now: datetime) -> bool:
        """True for the first run only: the rules act once per event."""
        with self.engine.begin() as connection:
            return work.finish(connection, key(event_id), now, outcome, account=self.account)

    def fail_attempt(self, event_id: str, error: str, now: datetime, *, retryable: bool) -> datetime | None:
        """Count a failed run under the retry policy; returns the next run's time, or None when the
        event is given up (its outcome then says ``failed: …``)."""
        ledger = work.WorkLedger(self.engine, self.account)
        return ledger.fail_attempt(key(event_id), error, now, retryable=retryable, given_up=f"failed: {error}")

    def unhandled(self, received_before: datetime, limit: int = 500) -> list[str]:
        """Events accepted but not handled yet."""
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(crm_events.c.id)
                    .select_from(
                        crm_events.join(work_items, work.joined_on(KIND, crm_events.c.account, crm_events.c.id))
                    )
                    .where(
                        self.mine,
                        work_items.c.status == WorkStatus.PENDING.value,
                        crm_events.c.received_at < received_before,
                    )
                    .limit(limit)
                ).scalars()
            )
