"""Recordings per call: pending → stored (→ deleted by retention), or failed.

A recording's own state (``stored``, ``deleted``; NULL before) and file are here; fetching it is
its ``fetch_recording`` work item, whose state (pending, failed) a recording not stored shows."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select, update

from integration.ledger import work
from integration.ledger.db import dialect_module
from integration.ledger.tables import DEFAULT_ACCOUNT, calls, recordings, work_items
from integration.ledger.work import WorkKey, WorkKind, WorkStatus

PENDING, STORED, FAILED, DELETED = "pending", "stored", "failed", "deleted"
KIND = WorkKind.FETCH_RECORDING


@dataclass(frozen=True)
class Recording:
    call_id: str
    id: str
    record_file_id: str
    status: str
    attempts: int
    created_at: datetime
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    size: int | None = None
    sha256: str | None = None
    storage_key: str | None = None
    stored_at: datetime | None = None
    deleted_at: datetime | None = None
    announced: bool = False


def public_id(call_id: str) -> str:
    """The recording's id in links: stable, URL-safe, and says nothing about the call."""
    return hashlib.sha256(f"recording:{call_id}".encode()).hexdigest()[:32]


def key(call_id: str) -> WorkKey:
    return WorkKey(KIND, call_id)


_JOINED = recordings.join(work_items, work.joined_on(KIND, recordings.c.account, recordings.c.call_id))
_STATUS = func.coalesce(recordings.c.status, work_items.c.status)  # its own state, else its fetch's
_SELECTED = select(
    recordings.c.call_id,
    recordings.c.id,
    recordings.c.record_file_id,
    _STATUS.label("status"),
    work_items.c.attempts,
    recordings.c.created_at,
    work_items.c.last_error,
    work_items.c.next_attempt_at,
    recordings.c.size,
    recordings.c.sha256,
    recordings.c.storage_key,
    recordings.c.stored_at,
    recordings.c.deleted_at,
    recordings.c.announced,
).select_from(_JOINED)


class RecordingLedger:
    """One account's recordings."""

    def __init__(self, engine: Engine, account: str = DEFAULT_ACCOUNT):
        self.engine = engine
        self.account = account
        self.mine = recordings.c.account == account

    def ensure(self, found: Iterable[tuple[str, str]], now: datetime) -> None:
        """A pending recording (and its fetch) for each (call id, operator record file id) not known yet."""
        found = list(found)
        rows = [
            {
                "account": self.account,
                "call_id": call_id,
                "id": public_id(call_id),
                "record_file_id": record_file_id,
                "created_at": now,
                "announced": False,
            }
            for call_id, record_file_id in found
        ]
        if not rows:
            return
        with self.engine.begin() as connection:
            connection.execute(dialect_module(self.engine).insert(recordings).on_conflict_do_nothing(), rows)
            work.add_items(connection, [key(call_id) for call_id, _ in found], now, account=self.account)

    def missing(self, limit: int = 500) -> list[tuple[str, str]]:
        """Calls with a recording id that have no recording row yet."""
        joined = calls.outerjoin(recordings, recordings.c.call_id == calls.c.id)
        statement = (
            select(calls.c.id, calls.c.record_file_id)
            .select_from(joined)
            .where(calls.c.account == self.account, calls.c.record_file_id.is_not(None), recordings.c.call_id.is_(None))
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(statement)]

    def get(self, call_id: str) -> Recording | None:
        return self._one(recordings.c.call_id == call_id)

    def by_public_id(self, recording_id: str) -> Recording | None:
        return self._one(recordings.c.id == recording_id)

    def stored_for(self, call_ids: list[str]) -> dict[str, Recording]:
        """The stored recordings of these calls, by call id."""
        if not call_ids:
            return {}
        with self.engine.connect() as connection:
            rows = connection.execute(
                _SELECTED.where(self.mine, recordings.c.call_id.in_(call_ids), recordings.c.status == STORED)
            )
            return {row.call_id: Recording(**row._mapping) for row in rows}

    def mark_stored(self, call_id: str, size: int, sha256: str, storage_key: str, now: datetime) -> bool:
        """The file, together with its fetch done (one transaction)."""
        with self.engine.begin() as connection:
            if not work.finish(connection, key(call_id), now, account=self.account):
                return False
            connection.execute(
                update(recordings)
                .where(self.mine, recordings.c.call_id == call_id)
                .values(status=STORED, size=size, sha256=sha256, storage_key=storage_key, stored_at=now)
            )
            return True

    def fail_attempt(self, call_id: str, error: str, now: datetime, *, retryable: bool) -> datetime | None:
        """Count a failed attempt under the retry policy; returns the next attempt's time, or None
        when the recording is given up (``failed``)."""
        return work.WorkLedger(self.engine, self.account).fail_attempt(key(call_id), error, now, retryable=retryable)

    def unannounced(self, limit: int = 500) -> list[Recording]:
        """Stored recordings whose ``recording.ready`` event is not in the outbox yet."""
        return self._many(
            _SELECTED.where(self.mine, recordings.c.status == STORED, recordings.c.announced.is_(False)).limit(limit)
        )

    def mark_announced(self, call_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(recordings).where(self.mine, recordings.c.call_id == call_id).values(announced=True)
            )

    def mark_deleted(self, call_id: str, now: datetime) -> bool:
        return self._move(call_id, [STORED], status=DELETED, deleted_at=now)

    def retry(self, call_ids: list[str], now: datetime) -> None:
        """Failed recordings of these calls become pending again (a backfill asks once more)."""
        with self.engine.begin() as connection:
            failed = list(
                connection.execute(
                    select(work_items.c.subject).where(
                        work_items.c.account == self.account,
                        work_items.c.kind == KIND,
                        work_items.c.subject.in_(call_ids),
                        work_items.c.status == WorkStatus.FAILED.value,
                    )
                ).scalars()
            )
            if not failed:
                return
            connection.execute(
                update(work_items)
                .where(work_items.c.kind == KIND, work_items.c.subject.in_(failed))
                .values(status=WorkStatus.PENDING.value, next_attempt_at=now, created_at=now, finished_at=None)
            )
            connection.execute(
                update(recordings).where(self.mine, recordings.c.call_id.in_(failed)).values(created_at=now)
            )

    def due(self, now: datetime, limit: int = 500) -> list[Recording]:
        return self._many(
            _SELECTED.where(
                self.mine, work_items.c.status == WorkStatus.PENDING.value, work_items.c.next_attempt_at <= now
            )
            .order_by(work_items.c.next_attempt_at)
            .limit(limit)
        )

    def stored_before(self, moment: datetime, limit: int = 500) -> list[Recording]:
        return self._many(
            _SELECTED.where(self.mine, recordings.c.status == STORED, recordings.c.stored_at < moment).limit(limit)
        )

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_STATUS, func.count()).select_from(_JOINED).where(self.mine).group_by(_STATUS)
            )
            return {status: count for status, count in rows}

    def _one(self, condition) -> Recording | None:
        with self.engine.connect() as connection:
            row = connection.execute(_SELECTED.where(self.mine, condition)).first()
        return Recording(**row._mapping) if row else None

    def _many(self, statement) -> list[Recording]:
        with self.engine.connect() as connection:
            return [Recording(**row._mapping) for row in connection.execute(statement)]

    def _move(self, call_id: str, sources: list[str], **values) -> bool:
        statement = (
            update(recordings)
            .where(self.mine, recordings.c.call_id == call_id, recordings.c.status.in_(sources))
            .values(**values)
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount == 1
