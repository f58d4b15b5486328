"""Calls found in the operator's history, and the sync cursor per line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select, update
from sqlalchemy.pool import SingletonThreadPool

from integration.ledger import deliveries
from integration.ledger.db import dialect_module, insert_new
from integration.ledger.tables import DEFAULT_ACCOUNT, calls, sync_cursors, work_items
from integration.ledger.work import joined_on
from integration.models import Call, CallStatus, Direction
from integration.phone import MATCH_KEY_DIGITS

_COLUMNS = (
    "account",
    "id",
    "line",
    "direction",
    "status",
    "started_at",
    "duration",
    "ext_raw",
    "ext_e164",
    "ext_internal",
    "service",
    "record_file_id",
    "is_read",
    "first_seen_at",
    "ext_key",
)


def _values(account: str, call: Call, now: datetime) -> tuple:
    """A call as the ``_COLUMNS`` of its ledger row."""
    return (
        account,
        call.id,
        call.line,
        call.direction.value,
        call.status.value,
        call.started_at,
        call.duration,
        call.ext_raw,
        call.ext_e164,
        call.ext_internal,
        call.service,
        call.record_file_id,
        call.is_read,
        now,
        call.ext_e164[1:][-MATCH_KEY_DIGITS:] if call.ext_e164 else None,  # the number's match key
    )


def _call(row) -> Call:
    data = {key: value for key, value in row._mapping.items() if key in Call.__dataclass_fields__}
    data["direction"] = Direction(data["direction"])
    data["status"] = CallStatus(data["status"])
    return Call(**data)


class CallLedger:
    """One account's calls (every query is the account's)."""

    def __init__(self, engine: Engine, account: str = DEFAULT_ACCOUNT):
        self.engine = engine
        self.account = account
        self.mine = calls.c.account == account
        # An in-memory SQLite database is one per thread: a background writer would not see it.
        self.writes_from_any_thread = not isinstance(engine.pool, SingletonThreadPool)

    def insert_new(self, found: Iterable[Call], now: datetime) -> list[str]:
        """Store the calls not seen before; returns the ids of those that were new."""
        batch = {call.id: call for call in found}
        if not batch:
            return []
        with self.engine.begin() as connection:
            return insert_new(connection, calls, _COLUMNS, [_values(self.account, c, now) for c in batch.values()])

    def with_recordings(self, call_ids: list[str]) -> list[tuple[str, str]]:
        """(call id, operator record file id) of those calls that have a recording."""
        found: list = []  # rows (id, record_file_id)
        with self.engine.connect() as connection:
            for start in range(0, len(call_ids), 500):
                found += connection.execute(
                    select(calls.c.id, calls.c.record_file_id).where(
                        self.mine, calls.c.id.in_(call_ids[start : start + 500]), calls.c.record_file_id.is_not(None)
                    )
                ).all()
        return [(call_id, file_id) for call_id, file_id in found]

    def with_numbers(self, match_keys: list[str], since: datetime) -> list[str]:
        """Ids of calls since ``since`` whose external number ends with one of ``match_keys``."""
        if not match_keys:
            return []
        statement = (
            select(calls.c.id)
            .where(self.mine, calls.c.ext_key.in_(match_keys), calls.c.started_at >= since)
            .order_by(calls.c.started_at)
        )
        with self.engine.connect() as connection:
            return list(connection.execute(statement).scalars())

    def link_callback(self, call_id: str, request_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(calls).where(self.mine, calls.c.id == call_id).values(callback_request_id=request_id)
            )

    def get(self, call_id: str) -> Call | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(calls).where(self.mine, calls.c.id == call_id)).first()
        return _call(row) if row else None

    def count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(calls).where(self.mine)).scalar_one()

    def between(self, start: datetime, end: datetime) -> list[Call]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(calls)
                .where(self.mine, calls.c.started_at >= start, calls.c.started_at < end)
                .order_by(calls.c.started_at)
            )
            return [_call(row) for row in rows]

    def page(self, conditions: list, limit: int, offset: int, crm: str) -> list[tuple[Call, str | None]]:
        """Calls newest first, each with its delivery status for ``crm``."""
        joined = calls.outerjoin(work_items, joined_on(deliveries.KIND, calls.c.account, calls.c.id, crm))
        statement = (
            select(calls, deliveries.delivery_status().label("delivery"))
            .select_from(joined)
            .where(self.mine, *conditions)
            .order_by(calls.c.started_at.desc(), calls.c.id)
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [(_call(row), row.delivery) for row in rows]

    def cursors(self, lines: Sequence[str]) -> dict[str, datetime]:
        """How far each line's history has been synced (lines never synced are absent)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(sync_cursors).where(sync_cursors.c.account == self.account, sync_cursors.c.line.in_(list(lines)))
            )
            return {row.line: row.synced_until for row in rows}

    def sync_state(self, lines: Sequence[str]) -> dict[str, tuple[datetime, datetime]]:
        """Each synced line's cursor and when a sync last moved it."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(sync_cursors).where(sync_cursors.c.account == self.account, sync_cursors.c.line.in_(list(lines)))
            )
            return {row.line: (row.synced_until, row.updated_at) for row in rows}

    def per_hour(self, since: datetime, until: datetime) -> dict[tuple[datetime, str], int]:
        """Calls started in ``[since, until)`` counted by UTC hour and status."""
        hour = _hour(self.engine.dialect.name).label("hour")
        statement = (
            select(hour, calls.c.status, func.count())
            .where(self.mine, calls.c.started_at >= since, calls.c.started_at < until)
            .group_by(hour, calls.c.status)
        )
        with self.engine.connect() as connection:
            return {(_as_hour(h), status): count for h, status, count in connection.execute(statement)}

    def advance(self, lines: Sequence[str], until: datetime, now: datetime) -> None:
        """Move the cursors of ``lines`` forward to ``until`` (never backwards)."""
        statement = dialect_module(self.engine).insert(sync_cursors)
        statement = statement.on_conflict_do_update(
            index_elements=[sync_cursors.c.line],
            set_={"synced_until": statement.excluded.synced_until, "updated_at": statement.excluded.updated_at},
            where=sync_cursors.c.synced_until < statement.excluded.synced_until,
        )
        with self.engine.begin() as connection:
            rows = [{"account": self.account, "line": line, "synced_until": until, "updated_at": now} for line in lines]
            connection.execute(statement, rows)


DELIVERY_STATES = ("pending", deliveries.DELIVERED, "failed", "none")


def _hour(dialect: str):
    """A call's start cut to its hour (UTC), in the dialect's cheapest SQL: SQLite keeps the
    start as text, whose first 13 characters are the hour (``2026-11-30 21``)."""
    if dialect == "sqlite":
        return func.substr(calls.c.started_at, 1, 13)
    return func.date_trunc("hour", calls.c.started_at)


def _as_hour(value: str | datetime) -> datetime:
    """``_hour``'s value as an aware UTC datetime."""
    if isinstance(value, str):
        return datetime.strptime(value, "%Y-%m-%d %H").replace(tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def call_filters(
    *,
    line: str | None = None,
    match_key: str | None = None,
    direction: str | None = None,
    status: str | None = None,
    delivery: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list:
    """SQL conditions for listing calls (``page``'s: ``delivery`` is of its joined delivery)."""
    conditions = []
    if line:
        conditions.append(calls.c.line == line)
    if match_key:
        conditions.append(calls.c.ext_key == match_key)
    if direction:
        conditions.append(calls.c.direction == direction)
    if status:
        conditions.append(calls.c.status == status)
    if delivery == "none":
        conditions.append(work_items.c.id.is_(None))
    elif delivery == deliveries.DELIVERED:  # most calls: the newest are found at once
        conditions.append(work_items.c.status == "done")
    elif delivery:
        # Pending and failed are the few: found from the items' side (indexed by status), then
        # the joined item of this CRM checked exactly.
        few = select(work_items.c.subject).where(work_items.c.kind == deliveries.KIND, work_items.c.status == delivery)
        conditions += [calls.c.id.in_(few), work_items.c.status == delivery]
    if since:
        conditions.append(calls.c.started_at >= since)
    if until:
        conditions.append(calls.c.started_at < until)
    return conditions


def syncs_by_account(engine: Engine) -> dict[str, tuple[datetime, datetime]]:
    """Every account's oldest line cursor and when a sync last moved one of its cursors."""
    statement = select(
        sync_cursors.c.account, func.min(sync_cursors.c.synced_until), func.max(sync_cursors.c.updated_at)
    ).group_by(sync_cursors.c.account)
    with engine.connect() as connection:
        return {account: (until, moved) for account, until, moved in connection.execute(statement)}
