"""Every account's runtime in one process: built on first use, rebuilt when the account changes.

The environment's account (``default``) is the process's own runtime. A stored account gets a
``Runtime`` of its own settings that shares the process's Redis, database, metrics and secret box;
it is rebuilt when the account's stored version changes, which each process notices within
``refresh_every`` seconds (no restart), and refused once the account is disabled or deleted.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from integration.accounts import DEFAULT, AccountError
from integration.runtime import Runtime


class AccountRuntimes:
    def __init__(
        self,
        default: Runtime,
        *,
        refresh_every: float = 5.0,
        most: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.default = default
        self.refresh_every, self.most, self.clock = refresh_every, most, clock
        self._versions: dict[str, tuple[int, bool]] = {}
        self._fingerprint: tuple | None = None
        self._read_at: float | None = None
        self._built: OrderedDict[str, tuple[int, Runtime]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def metrics(self):
        """The deployment's metrics (every account's runtime shares them)."""
        return self.default.metrics

    def get(self, account_id: str) -> Runtime:
        """The account's runtime; ``AccountError`` when there is no such account, or it is disabled."""
        if account_id == DEFAULT:
            return self.default
        with self._lock:
            self._refresh_if_due()
            version, enabled = self._versions.get(account_id, (0, False))
            if not enabled:
                raise AccountError(f"no account {account_id!r}")
            built = self._built.get(account_id)
            if built is None or built[0] != version:
                settings = self.default.accounts.settings(account_id)
                built = self._built[account_id] = (version, Runtime(settings, shared=self.default, account=account_id))
            self._built.move_to_end(account_id)
            while len(self._built) > self.most:  # the least recently used go; rebuilt when needed
                self._built.popitem(last=False)
            return built[1]

    def versions(self) -> dict[str, tuple[int, bool]]:
        """Each stored account's (version, enabled) as last read; a new dict only when one changed."""
        with self._lock:
            self._refresh_if_due()
            return self._versions

    def enabled_ids(self) -> list[str]:
        """The accounts being served: ``default`` and every enabled stored account."""
        with self._lock:
            self._refresh_if_due()
            return [DEFAULT, *sorted(i for i, (_, enabled) in self._versions.items() if enabled)]

    def refresh(self) -> None:
        """Read the stored accounts' versions now, if any changed (the next ``get`` rebuilds what
        changed); ``versions()`` is a new dict only then."""
        ledger = self.default.accounts.ledger
        fingerprint = ledger.fingerprint()
        if fingerprint != self._fingerprint:
            self._versions, self._fingerprint = ledger.versions(), fingerprint
            for gone in [i for i in self._built if self._versions.get(i, (0, False))[1] is False]:
                del self._built[gone]
        self._read_at = self.clock()

    def _refresh_if_due(self) -> None:
        if self._read_at is None or self.clock() - self._read_at >= self.refresh_every:
            self.refresh()
