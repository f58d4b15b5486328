"""Stored accounts (their settings, their sealed secrets, enabled or not) and the audit log.

This module stores what it is given: validating a document and sealing its secrets is
``integration.accounts``' job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, func, insert, select, update

from integration.ledger.tables import (
    accounts,
    activities,
    audit_log,
    callback_requests,
    calls,
    contacts,
    crm_events,
    deal_calls,
    deliveries,
    outbox,
    recordings,
    sync_cursors,
    work_items,
)

# Every table of an account's data, those that refer to calls before the calls.
DATA_TABLES = (
    deal_calls,
    activities,
    contacts,
    deliveries,
    recordings,
    outbox,
    crm_events,
    work_items,
    callback_requests,
    sync_cursors,
    calls,
)


@dataclass(frozen=True)
class StoredAccount:
    id: str
    enabled: bool
    settings: dict
    secrets: str  # sealed JSON
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    account: str | None
    action: str
    detail: str
    result: str


def _account(row) -> StoredAccount:
    values = dict(row._mapping)
    return StoredAccount(**values | {"settings": json.loads(values["settings"])})


class AccountLedger:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, account_id: str, settings: dict, secrets: str, now: datetime) -> bool:
        """Store a new account (enabled); False when the id is taken."""
        with self.engine.begin() as connection:
            if connection.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first():
                return False
            connection.execute(
                insert(accounts).values(
                    id=account_id,
                    enabled=True,
                    settings=json.dumps(settings, ensure_ascii=False),
                    secrets=secrets,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
        return True

    def get(self, account_id: str) -> StoredAccount | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(accounts).where(accounts.c.id == account_id)).first()
        return _account(row) if row else None

    def all(self) -> list[StoredAccount]:
        with self.engine.connect() as connection:
            return [_account(row) for row in connection.execute(select(accounts).order_by(accounts.c.id))]

    def fingerprint(self) -> tuple:
        """One row that changes whenever any account is created, changed or deleted: a process
        rereads ``versions`` only when it does."""
        statement = select(func.count(), func.sum(accounts.c.version), func.max(accounts.c.updated_at))
        with self.engine.connect() as connection:
            return tuple(connection.execute(statement).one())

    def versions(self) -> dict[str, tuple[int, bool]]:
        """Every account's (version, enabled): what a process compares to reload what changed."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(accounts.c.id, accounts.c.version, accounts.c.enabled))
            return {row.id: (row.version, row.enabled) for row in rows}

    def replace(self, account_id: str, settings: dict, secrets: str, now: datetime) -> bool:
        """New settings and secrets for an account; False when there is no such account."""
        return self._change(account_id, now, settings=json.dumps(settings, ensure_ascii=False), secrets=secrets)

    def set_enabled(self, account_id: str, enabled: bool, now: datetime) -> bool:
        return self._change(account_id, now, enabled=enabled)

    def reseal(self, account_id: str, secrets: str, expected_version: int, now: datetime) -> bool:
        """Store re-sealed secrets unless the account changed meanwhile (then it was sealed anew)."""
        with self.engine.begin() as connection:
            statement = (
                update(accounts)
                .where(accounts.c.id == account_id, accounts.c.version == expected_version)
                .values(secrets=secrets, updated_at=now)
            )
            return connection.execute(statement).rowcount == 1

    def delete(self, account_id: str) -> tuple[bool, dict[str, int], list[str]]:
        """Delete an account and every row of its data, in one transaction: (whether it existed,
        rows deleted per table, the storage keys of its recordings, for the caller to remove)."""
        with self.engine.begin() as connection:
            stored = recordings.c.account == account_id
            keys = list(
                connection.execute(
                    select(recordings.c.storage_key).where(stored, recordings.c.storage_key.is_not(None))
                ).scalars()
            )
            counts = {
                table.name: connection.execute(delete(table).where(table.c.account == account_id)).rowcount
                for table in DATA_TABLES
            }
            existed = connection.execute(delete(accounts).where(accounts.c.id == account_id)).rowcount == 1
        return existed, counts, keys

    def _change(self, account_id: str, now: datetime, **values) -> bool:
        with self.engine.begin() as connection:
            statement = (
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(**values, version=accounts.c.version + 1, updated_at=now)
            )
            return connection.execute(statement).rowcount == 1


class AuditLog:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, at: datetime, actor: str, account: str | None, action: str, detail: str, result: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                insert(audit_log).values(
                    at=at, actor=actor[:200], account=account, action=action, detail=detail, result=result[:200]
                )
            )

    def recent(self, account: str | None = None, limit: int = 50) -> list[AuditEntry]:
        """The latest entries, newest first (of one account when ``account`` is given)."""
        statement = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if account is not None:
            statement = statement.where(audit_log.c.account == account)
        with self.engine.connect() as connection:
            return [AuditEntry(**row._mapping) for row in connection.execute(statement)]
