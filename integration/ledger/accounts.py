"""Stored accounts (their settings, their sealed secrets, enabled or not) and the audit log.

This module stores what it is given: validating a document and sealing its secrets is
``integration.accounts``' job.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from integration.ledger.tables import (
    account_numbers,
    accounts,
    activities,
    audit_log,
    callback_requests,
    calls,
    console_users,
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
    console_users,
)


class NumbersTaken(Exception):
    """Contract numbers that are other accounts' already: ``owners`` maps each to its account."""

    def __init__(self, owners: dict[str, str]):
        super().__init__(", ".join(f"{number} is account {account}'s" for number, account in owners.items()))
        self.owners = owners


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

    def add(self, account_id: str, settings: dict, secrets: str, numbers: Collection[str], now: datetime) -> bool:
        """Store a new account (enabled) with its contract numbers; False when the id is taken,
        ``NumbersTaken`` when a number is another account's."""
        try:
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
                _claim(connection, account_id, numbers)
        except IntegrityError:  # a concurrent create took the id or a number first
            if self.get(account_id):
                return False
            self._refuse(account_id, numbers)
            raise
        return True

    def get(self, account_id: str) -> StoredAccount | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(accounts).where(accounts.c.id == account_id)).first()
        return _account(row) if row else None

    def owners(self, numbers: Collection[str], other_than: str) -> dict[str, str]:
        """Which of ``numbers`` are stored accounts' other than ``other_than``: {number: account}."""
        statement = select(account_numbers).where(
            account_numbers.c.number.in_(list(numbers)), account_numbers.c.account != other_than
        )
        with self.engine.connect() as connection:
            return {row.number: row.account for row in connection.execute(statement)}

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

    def replace(self, account_id: str, settings: dict, secrets: str, numbers: Collection[str], now: datetime) -> bool:
        """New settings, secrets and contract numbers for an account; False when there is no such
        account, ``NumbersTaken`` when a number is another account's."""
        values = {"settings": json.dumps(settings, ensure_ascii=False), "secrets": secrets}
        try:
            with self.engine.begin() as connection:
                if not self._changed(connection, account_id, now, values):
                    return False
                connection.execute(delete(account_numbers).where(account_numbers.c.account == account_id))
                _claim(connection, account_id, numbers)
        except IntegrityError:
            self._refuse(account_id, numbers)
            raise
        return True

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
            connection.execute(delete(account_numbers).where(account_numbers.c.account == account_id))
            existed = connection.execute(delete(accounts).where(accounts.c.id == account_id)).rowcount == 1
        return existed, counts, keys

    def _change(self, account_id: str, now: datetime, **values) -> bool:
        with self.engine.begin() as connection:
            return self._changed(connection, account_id, now, values)

    @staticmethod
    def _changed(connection: Connection, account_id: str, now: datetime, values: dict) -> bool:
        statement = (
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(**values, version=accounts.c.version + 1, updated_at=now)
        )
        return connection.execute(statement).rowcount == 1

    def _refuse(self, account_id: str, numbers: Collection[str]) -> None:
        """After a refused write: ``NumbersTaken`` naming the numbers other accounts hold."""
        owners = self.owners(numbers, account_id)
        if owners:
            raise NumbersTaken(owners) from None


def _claim(connection: Connection, account_id: str, numbers: Collection[str]) -> None:
    """Record the account's numbers, in order: concurrent claims wait on each other instead of
    deadlocking."""
    rows = [{"number": number, "account": account_id} for number in sorted(set(numbers))]
    if rows:
        connection.execute(insert(account_numbers), rows)


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
