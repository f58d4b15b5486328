"""Console users as stored: email, role, account (None: the whole deployment), password hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from integration.ledger.tables import console_users


class UserExists(Exception):
    """A user with that email is stored already."""


@dataclass(frozen=True)
class StoredUser:
    email: str
    account: str | None
    role: str
    password_hash: str
    created_at: datetime
    password_changed_at: datetime


class UserLedger:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, user: StoredUser) -> None:
        """``UserExists`` when the email is taken (also by another process at the same moment)."""
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(console_users).values(**user.__dict__))
        except IntegrityError:
            raise UserExists(user.email) from None

    def get(self, email: str) -> StoredUser | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(console_users).where(console_users.c.email == email)).first()
        return StoredUser(**row._mapping) if row else None

    def all(self) -> list[StoredUser]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(console_users).order_by(console_users.c.email))
            return [StoredUser(**row._mapping) for row in rows]

    def set_password(self, email: str, password_hash: str, at: datetime) -> bool:
        with self.engine.begin() as connection:
            changed = connection.execute(
                update(console_users)
                .where(console_users.c.email == email)
                .values(password_hash=password_hash, password_changed_at=at)
            )
        return changed.rowcount == 1

    def remove(self, email: str) -> bool:
        with self.engine.begin() as connection:
            return connection.execute(delete(console_users).where(console_users.c.email == email)).rowcount == 1
