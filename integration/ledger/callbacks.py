"""Callback requests in the ledger. Status changes are compare-and-set updates, committed at once."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select, update

from integration.ledger.db import dialect_module, insert_ignoring_duplicates
from integration.ledger.tables import DEFAULT_ACCOUNT, calls
from integration.ledger.tables import callback_requests as table
from integration.models import CallbackRequest, CallbackStatus

# A call in the history belongs to a click-to-call placed up to 10 minutes before it started
# (the operator rings our side first) or a little after (clocks differ).
LINK_BEFORE = timedelta(minutes=10)
LINK_AFTER = timedelta(minutes=2)


def _row(account: str, request: CallbackRequest) -> dict:
    return {
        "account": account,
        "id": request.id,
        "source": request.source,
        "idempotency_key": request.idempotency_key,
        "phone_from": request.phone_from,
        "phone_to": request.phone_to,
        "phone_to_raw": request.phone_to_raw,
        "operator_phone_to": request.operator_phone_to,
        "crm_user": request.crm_user,
        "crm_context": json.dumps(request.crm_context, ensure_ascii=False) if request.crm_context is not None else None,
        "status": request.status.value,
        "reason": request.reason,
        "request_hash": request.request_hash,
        "created_at": request.created_at,
        "placing_at": request.placing_at,
        "finished_at": request.finished_at,
    }


def _record(row) -> CallbackRequest:
    data = dict(row._mapping)
    del data["account"]
    data["status"] = CallbackStatus(data["status"])
    data["crm_context"] = json.loads(data["crm_context"]) if data["crm_context"] else None
    return CallbackRequest(**data)


class CallbackLedger:
    """One account's click-to-call requests."""

    def __init__(self, engine: Engine, account: str = DEFAULT_ACCOUNT):
        self.engine = engine
        self.account = account
        self.mine = table.c.account == account

    def add(self, request: CallbackRequest) -> bool:
        """Store a request unless one with its id exists; True when it was new."""
        return bool(insert_ignoring_duplicates(self.engine, table, [_row(self.account, request)]))

    def start_placing(
        self, request: CallbackRequest, now: datetime, accepted_after: datetime
    ) -> tuple[CallbackRequest, bool]:
        """Record ``request`` if new and move it from ``queued`` to ``placing``, in one transaction.

        Returns (the stored request, True) when this call made the move: only then may the
        operator be called. A request accepted before ``accepted_after`` is not moved.
        """
        with self.engine.begin() as connection:
            insert = dialect_module(self.engine).insert(table).on_conflict_do_nothing()
            connection.execute(insert, _row(self.account, request))
            moved = connection.execute(
                update(table)
                .where(
                    self.mine,
                    table.c.id == request.id,
                    table.c.status == CallbackStatus.QUEUED.value,
                    table.c.created_at >= accepted_after,
                )
                .values(status=CallbackStatus.PLACING.value, placing_at=now)
            ).rowcount
            if moved == 1:
                return replace(request, status=CallbackStatus.PLACING, placing_at=now), True
            return _record(connection.execute(select(table).where(self.mine, table.c.id == request.id)).first()), False

    def get(self, request_id: str) -> CallbackRequest | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(table).where(self.mine, table.c.id == request_id)).first()
        return _record(row) if row else None

    def transition(self, request_id: str, expected: Iterable[CallbackStatus], to: CallbackStatus, **fields) -> bool:
        """Move to ``to`` only from one of ``expected``; True when this call made the change."""
        statement = (
            update(table)
            .where(self.mine, table.c.id == request_id, table.c.status.in_([s.value for s in expected]))
            .values(status=to.value, **fields)
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount == 1

    def counts_since(self, since: datetime) -> dict[str, int]:
        """Click-to-calls accepted since ``since``, by status."""
        statement = (
            select(table.c.status, func.count()).where(self.mine, table.c.created_at >= since).group_by(table.c.status)
        )
        with self.engine.connect() as connection:
            return {status: count for status, count in connection.execute(statement)}

    def recent(self, limit: int = 50) -> list[CallbackRequest]:
        """The latest click-to-calls, newest first."""
        statement = select(table).where(self.mine).order_by(table.c.created_at.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_record(row) for row in connection.execute(statement)]

    def placed_between(self, start: datetime, end: datetime) -> list[CallbackRequest]:
        """Placed click-to-calls not linked to a call yet, placed in ``[start, end]``, newest first."""
        linked = select(calls.c.callback_request_id).where(
            calls.c.account == self.account, calls.c.callback_request_id.is_not(None)
        )
        statement = (
            select(table)
            .where(
                self.mine,
                table.c.status == CallbackStatus.PLACED.value,
                table.c.placing_at >= start,
                table.c.placing_at <= end,
                table.c.id.not_in(linked),
            )
            .order_by(table.c.placing_at.desc())
        )
        with self.engine.connect() as connection:
            return [_record(row) for row in connection.execute(statement)]

    def reap_placing(self, started_before: datetime, now: datetime) -> list[str]:
        """Requests stuck in ``placing`` since before ``started_before`` become ``unknown``."""
        with self.engine.begin() as connection:
            ids = [
                row.id
                for row in connection.execute(
                    select(table.c.id).where(
                        self.mine, table.c.status == CallbackStatus.PLACING.value, table.c.placing_at < started_before
                    )
                )
            ]
            if ids:
                connection.execute(
                    update(table)
                    .where(table.c.id.in_(ids), table.c.status == CallbackStatus.PLACING.value)
                    .values(
                        status=CallbackStatus.UNKNOWN.value,
                        finished_at=now,
                        reason="the worker stopped while placing the call; it was not repeated",
                    )
                )
        return ids


def accounts_placing(engine: Engine) -> list[str]:
    """Every account with a request in ``placing`` (the reaper visits only those)."""
    statement = select(table.c.account).where(table.c.status == CallbackStatus.PLACING.value).distinct()
    with engine.connect() as connection:
        return list(connection.execute(statement).scalars())
