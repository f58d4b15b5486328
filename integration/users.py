"""Console users: who may sign in, to which account, to read (``viewer``) or act (``admin``).

A user without an account administers the deployment: every account, and creating them.
Creating, changing and removing users is audited like accounts are.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from integration.accounts import DEFAULT, AccountError, check_id
from integration.errors import IntegrationError
from integration.ledger.accounts import AuditLog
from integration.ledger.users import StoredUser, UserExists, UserLedger
from integration.passwords import hash_password, password_problem, verify_password
from integration.timeutil import utc_now

ROLES = ("admin", "viewer")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")


class UserError(IntegrationError):
    """A user that cannot be made or changed as asked: ``field`` names what to fix."""

    retryable = False

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class User:
    """A signed-in person: what they may see and do."""

    email: str
    role: str
    account: str | None  # None: every account

    @property
    def acts(self) -> bool:
        return self.role == "admin"

    @property
    def deployment_wide(self) -> bool:
        return self.account is None

    def sees(self, account: str) -> bool:
        return self.account is None or self.account == account


def _user(stored: StoredUser) -> User:
    return User(stored.email, stored.role, stored.account)


class ConsoleUsers:
    def __init__(
        self,
        ledger: UserLedger,
        audit: AuditLog,
        account_exists: Callable[[str], bool],
        clock: Callable[[], datetime] = utc_now,
    ):
        self.ledger, self.audit, self.account_exists, self.clock = ledger, audit, account_exists, clock

    def create(self, email: str, role: str, account: str | None, password: str, actor: str) -> User:
        email = email.strip().lower()
        result = "error"
        try:
            if not EMAIL.match(email) or len(email) > 254:
                raise UserError("email", f"{email!r} is not an email address")
            if role not in ROLES:
                raise UserError("role", f"must be one of: {', '.join(ROLES)}")
            if account is not None:
                try:
                    check_id(account)
                except AccountError as exc:
                    raise UserError("account", str(exc)) from None
                if account != DEFAULT and not self.account_exists(account):
                    raise UserError("account", f"no account {account!r} (see `flask --app wsgi accounts list`)")
            problem = password_problem(password)
            if problem:
                raise UserError("password", problem)
            now = self.clock()
            try:
                self.ledger.add(StoredUser(email, account, role, hash_password(password), now, now))
            except UserExists:
                raise UserError("email", f"a user {email} exists already") from None
            result = "ok"
        except UserError as exc:
            result = f"refused: {exc}"
            raise
        finally:
            detail = f"{email} as {role} of {account or 'every account'}"
            self.audit.add(self.clock(), actor, account, "user.create", detail, result)
        return User(email, role, account)

    def authenticate(self, email: str, password: str) -> User | None:
        """The user when the password is theirs; None otherwise (taking as long either way)."""
        stored = self.ledger.get(email.strip().lower())
        if not verify_password(password, stored.password_hash if stored else None) or stored is None:
            return None
        return _user(stored)

    def get(self, email: str) -> User | None:
        stored = self.ledger.get(email.strip().lower())
        return _user(stored) if stored else None

    def signed_in(self, email: str, since: datetime) -> User | None:
        """The user of a session started at ``since``; None once the user is deleted or their
        password changed after it."""
        stored = self.ledger.get(email)
        if stored is None or stored.password_changed_at > since:
            return None
        return _user(stored)

    def all(self) -> list[User]:
        return [_user(stored) for stored in self.ledger.all()]

    def set_password(self, email: str, password: str, actor: str) -> None:
        problem = password_problem(password)
        if problem:
            raise UserError("password", problem)
        if not self.ledger.set_password(email, hash_password(password), self.clock()):
            raise UserError("email", f"no user {email}")
        self.audit.add(self.clock(), actor, None, "user.password", email, "ok")

    def remove(self, email: str, actor: str) -> None:
        stored = self.ledger.get(email)
        if stored is None or not self.ledger.remove(email):
            raise UserError("email", f"no user {email}")
        self.audit.add(self.clock(), actor, stored.account, "user.delete", email, "ok")
