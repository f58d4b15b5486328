"""Events waiting to be sent to the CRM (``callback.finished``): the event here, its sending a
``send_event`` work item (the same retry policy as calls)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, select

from integration.ledger import work
from integration.ledger.db import dialect_module
from integration.ledger.tables import DEFAULT_ACCOUNT, outbox, work_items
from integration.ledger.work import WorkKey, WorkKind, WorkStatus

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
INCLUDED = "included"  # not sent: what it says already reached the CRM another way
SENT = "sent"  # the work item's result when the event was sent
KIND = WorkKind.SEND_EVENT


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    subject: str
    data: dict
    status: str
    attempts: int
    created_at: datetime


def event_id(event_type: str, subject: str) -> str:
    """An event's id, which is its ``webhook-id``: the same for every delivery attempt of that event."""
    return f"msg_{event_type.replace('.', '_')}_{hashlib.sha256(subject.encode()).hexdigest()[:32]}"


def key(event_id: str) -> WorkKey:
    return WorkKey(KIND, event_id)


_STATUS = case(
    (work_items.c.status != WorkStatus.DONE.value, work_items.c.status),
    (work_items.c.result == INCLUDED, INCLUDED),
    else_=DELIVERED,
)
_SELECTED = select(
    outbox.c.id,
    outbox.c.type,
    outbox.c.subject,
    outbox.c.data,
    _STATUS.label("status"),
    work_items.c.attempts,
    outbox.c.created_at,
).select_from(outbox.join(work_items, work.joined_on(KIND, outbox.c.account, outbox.c.id)))


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
    """One account's outgoing events."""

    def __init__(self, engine: Engine, account: str = DEFAULT_ACCOUNT):
        self.engine = engine
        self.account = account
        self.mine = outbox.c.account == account
        self.work = work.WorkLedger(engine, account)

    def add(self, event_id: str, event_type: str, subject: str, data: dict, now: datetime) -> bool:
        """Record an event once (a second add of the same id does nothing); True when new."""
        row = {
            "account": self.account,
            "id": event_id,
            "type": event_type,
            "subject": subject,
            "data": json.dumps(data, ensure_ascii=False),
            "created_at": now,
        }
        insert = dialect_module(self.engine).insert(outbox).on_conflict_do_nothing().returning(outbox.c.id)
        with self.engine.begin() as connection:
            new = connection.execute(insert, row).first() is not None
            if new:
                work.add_items(connection, [key(event_id)], now, account=self.account)
        return new

    def get(self, event_id: str) -> Event | None:
        with self.engine.connect() as connection:
            row = connection.execute(_SELECTED.where(self.mine, outbox.c.id == event_id)).first()
        return _event(row) if row else None

    def sent(self, event_id: str, now: datetime) -> None:
        """The CRM took the event."""
        self.work.finish(key(event_id), now, SENT)

    def fail_attempt(self, event_id: str, error: str, now: datetime, *, retryable: bool) -> datetime | None:
        """Count a failed attempt under the retry policy; returns the next attempt's time, or None
        when the event is given up (``failed``)."""
        return self.work.fail_attempt(key(event_id), error, now, retryable=retryable)

    def postpone(self, event_id: str, reason: str, until: datetime) -> None:
        """Not sent yet, on purpose (it waits for something else): tried again at ``until``."""
        self.work.postpone(key(event_id), reason, until)

    def settle(self, event_id: str, status: str, now: datetime) -> None:
        """Close a pending event without sending it (e.g. ``included``): done, with ``status`` as its result."""
        self.work.finish(key(event_id), now, status, attempted=False)

    def due(self, now: datetime, limit: int = 500) -> list[Event]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                _SELECTED.where(
                    self.mine, work_items.c.status == WorkStatus.PENDING.value, work_items.c.next_attempt_at <= now
                )
                .order_by(work_items.c.next_attempt_at)
                .limit(limit)
            )
            return [_event(row) for row in rows]
