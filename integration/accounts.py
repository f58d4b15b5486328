"""Accounts: one operator contract and one CRM connection each, with their settings and secrets.

The environment (and ``INTEGRATION_CONFIG``) is the account ``default``; every other account is
stored in the ledger database from an **account file**: TOML whose top-level keys are the
per-account settings by their environment names and whose tables are those of
``INTEGRATION_CONFIG``. A document is validated by the same schemas as the environment before
it is stored; its secrets (the settings hidden from ``repr``) are sealed with ``SECRET_KEYS``
and never shown again (``masked``). Every change is written to the audit log, refusals too.
"""

from __future__ import annotations

import contextlib
import json
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integration.config import Settings
from integration.errors import ConfigError, IntegrationError
from integration.keys import DEFAULT_ACCOUNT
from integration.ledger.accounts import AccountLedger, AuditLog, NumbersTaken, StoredAccount
from integration.secretbox import SecretBox, SecretKeyError
from integration.settings import account_settings, secret_names
from integration.timeutil import utc_now

DEFAULT = DEFAULT_ACCOUNT
ACCOUNT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")
MASK = "********"


class AccountError(IntegrationError):
    """An account that does not exist, an id that is taken or malformed."""

    retryable = False


def parse_account_file(text: str, where: str = "account file") -> dict[str, Any]:
    """The TOML of an account file; ``ConfigError`` when it is not TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{where} is not valid TOML: {exc}"]) from None


def check_id(account_id: str) -> str:
    if not ACCOUNT_ID.match(account_id):
        raise AccountError(
            f"account ids are 1–63 lower-case letters, digits and '-', starting with a letter or digit: {account_id!r}"
        )
    return account_id


@dataclass(frozen=True)
class AccountSummary:
    id: str
    enabled: bool
    crm_backend: str
    numbers: tuple[str, ...]
    version: int
    updated_at: datetime | None  # None: the environment's account


class Accounts:
    """Create, read, change and delete stored accounts; every change is audited."""

    def __init__(
        self,
        ledger: AccountLedger,
        audit: AuditLog,
        box: SecretBox,
        deployment: Settings,
        clock: Callable[[], datetime] = utc_now,
    ):
        self.ledger, self.audit, self.box, self.deployment, self.clock = ledger, audit, box, deployment, clock

    # --- reading -------------------------------------------------------------------------------

    def exists(self, account_id: str) -> bool:
        """Whether the account is stored (enabled or not) or is the environment's."""
        return account_id == DEFAULT or self.ledger.get(account_id) is not None

    def document(self, account_id: str) -> dict[str, Any]:
        """The stored account file, secrets opened (for the processes that serve the account)."""
        stored = self._stored(account_id)
        return stored.settings | json.loads(self.box.open(stored.secrets))

    def settings(self, account_id: str) -> Settings:
        """The account's ``Settings`` (``default``: the environment's)."""
        if account_id == DEFAULT:
            return self.deployment
        return account_settings(self.document(account_id), self.deployment, f"account {account_id}")

    def masked(self, account_id: str) -> dict[str, Any]:
        """The stored account file with every secret replaced by ``********``."""
        stored = self._stored(account_id)
        secrets = json.loads(self.box.open(stored.secrets))
        return stored.settings | dict.fromkeys(secrets, MASK)

    def summaries(self) -> list[AccountSummary]:
        """Every account, the environment's first."""
        env = self.deployment
        found = [AccountSummary(DEFAULT, True, env.crm_backend, env.operator_numbers, 0, None)]
        for stored in self.ledger.all():
            backend = str(stored.settings.get("CRM_BACKEND", "local"))
            found.append(
                AccountSummary(stored.id, stored.enabled, backend, _numbers(stored), stored.version, stored.updated_at)
            )
        return found

    # --- changing ------------------------------------------------------------------------------

    def create(self, account_id: str, document: Mapping[str, Any], actor: str) -> Settings:
        """Validate and store a new account (enabled)."""
        with self._audited(actor, account_id, "create") as note:
            self._refuse_default(account_id)
            settings = self._validated(account_id, document)
            public, secrets = self._split(document)
            sealed, numbers = self.box.seal(json.dumps(secrets)), settings.operator_numbers
            with _refused_by_the_database(numbers):
                if not self.ledger.add(account_id, public, sealed, numbers, self.clock()):
                    raise AccountError(f"account {account_id} exists already: use update")
            note(f"settings: {_names(public)}; secrets: {_names(secrets)}")
        return settings

    def update(self, account_id: str, document: Mapping[str, Any], actor: str) -> Settings:
        """Validate and store an account's new file (the whole file: what it omits is unset)."""
        with self._audited(actor, account_id, "update") as note:
            self._refuse_default(account_id)
            before = self.document(account_id)
            settings = self._validated(account_id, document)
            public, secrets = self._split(document)
            sealed, numbers = self.box.seal(json.dumps(secrets)), settings.operator_numbers
            with _refused_by_the_database(numbers):
                self.ledger.replace(account_id, public, sealed, numbers, self.clock())
            changed = sorted(name for name in set(before) | set(document) if before.get(name) != document.get(name))
            note(f"changed: {', '.join(changed) or 'nothing'}")
        return settings

    def set_enabled(self, account_id: str, enabled: bool, actor: str) -> None:
        with self._audited(actor, account_id, "enable" if enabled else "disable"):
            self._refuse_default(account_id)
            if not self.ledger.set_enabled(account_id, enabled, self.clock()):
                raise self._missing(account_id)

    def delete(self, account_id: str, actor: str, forget: Callable[[list[str]], str] = lambda keys: "") -> None:
        """Delete the account and all its rows; ``forget`` removes what lives outside the database
        (its recordings' files by storage key, its Redis keys) and says what it removed."""
        with self._audited(actor, account_id, "delete") as note:
            self._refuse_default(account_id)
            existed, counts, storage_keys = self.ledger.delete(account_id)
            if not existed:
                raise self._missing(account_id)
            elsewhere = forget(storage_keys)
            rows = ", ".join(f"{count} {table}" for table, count in counts.items() if count) or "no rows"
            note(f"deleted: {rows}" + (f"; {elsewhere}" if elsewhere else ""))

    def reseal(self, actor: str) -> tuple[int, list[str]]:
        """Seal every stored account's secrets with the first key: (how many, the ids of those no
        key opens, left as they are)."""
        count, unreadable = 0, []
        with self._audited(actor, None, "secrets.rotate") as note:
            for stored in self.ledger.all():
                try:
                    resealed = self.box.reseal(stored.secrets)
                except SecretKeyError:
                    unreadable.append(stored.id)
                    continue
                count += self.ledger.reseal(stored.id, resealed, stored.version, self.clock())
            note(f"{count} account(s) sealed with the first key; unreadable: {', '.join(unreadable) or 'none'}")
        return count, unreadable

    # --- helpers -------------------------------------------------------------------------------

    def _stored(self, account_id: str) -> StoredAccount:
        stored = self.ledger.get(account_id)
        if stored is None:
            raise self._missing(account_id)
        return stored

    @staticmethod
    def _missing(account_id: str) -> AccountError:
        return AccountError(f"no account {account_id!r} (see `flask --app wsgi accounts list`)")

    @staticmethod
    def _refuse_default(account_id: str) -> None:
        if account_id == DEFAULT:
            raise AccountError("the account 'default' is the environment's: change its settings there")

    def _validated(self, account_id: str, document: Mapping[str, Any]) -> Settings:
        check_id(account_id)
        settings = account_settings(document, self.deployment, f"account {account_id}")
        numbers = settings.operator_numbers
        owners = self.ledger.owners(numbers, account_id) | dict.fromkeys(self.deployment.operator_numbers, DEFAULT)
        _refuse_taken(numbers, owners)
        return settings

    @staticmethod
    def _split(document: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the document without its secrets, its secrets)."""
        hidden = secret_names()
        public = {k: v for k, v in document.items() if k not in hidden}
        return json.loads(json.dumps(public, default=str)), {k: v for k, v in document.items() if k in hidden}

    @contextlib.contextmanager
    def _audited(self, actor: str, account_id: str | None, action: str) -> Iterator[Callable[[str], None]]:
        """One audit entry for the block: ``ok`` with the details it notes, or why it was refused."""
        details: list[str] = []
        result = "error"
        try:
            yield details.append
            result = "ok"
        except ConfigError as exc:
            result = f"refused: {len(exc.problems)} problem(s) in the file"
            raise
        except IntegrationError as exc:
            result = f"refused: {exc}"
            raise
        finally:
            account = account_id if account_id and ACCOUNT_ID.match(account_id) else None
            self.audit.add(self.clock(), actor, account, action, "; ".join(details), result)


def _refuse_taken(numbers: tuple[str, ...], owners: Mapping[str, str]) -> None:
    """``ConfigError`` naming each of ``numbers`` that ``owners`` gives to an account."""
    taken = [number for number in numbers if number in owners]
    if taken:
        raise ConfigError(
            [
                f"OPERATOR_NUMBERS: {n} is account {owners[n]}'s already (a contract number serves one account)"
                for n in taken
            ]
        )


@contextlib.contextmanager
def _refused_by_the_database(numbers: tuple[str, ...]) -> Iterator[None]:
    """A number taken since the check (by a concurrent change) refused as the check refuses it."""
    try:
        yield
    except NumbersTaken as taken:
        _refuse_taken(numbers, taken.owners)
        raise


def _numbers(stored: StoredAccount) -> tuple[str, ...]:
    """A stored account's contract numbers (validated when stored: a list, or comma-separated text)."""
    value = stored.settings.get("OPERATOR_NUMBERS", ())
    items = value.split(",") if isinstance(value, str) else value
    return tuple(str(item).strip() for item in items if str(item).strip())


def _names(values: Mapping[str, Any]) -> str:
    return ", ".join(sorted(values)) or "none"
