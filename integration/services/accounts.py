"""Deleting an account everywhere: its rows (one transaction), its recordings' files, its Redis
keys and its contract's token pair."""

from __future__ import annotations

from integration.accounts import AccountError
from integration.errors import ConfigError
from integration.keys import scoped
from integration.operator.auth import RedisTokenStore, contract_key
from integration.runtime import Runtime


def delete_account(rt: Runtime, account_id: str, actor: str) -> None:
    """Delete ``account_id`` and all its data (``rt``: the process's runtime, the environment's)."""
    try:
        token: str | None = rt.accounts.settings(account_id).operator_authorization_token
    except (AccountError, ConfigError):  # no such account (the deletion says so, audited), or a file gone stale
        token = None

    def forget(storage_keys: list[str]) -> str:
        for key in storage_keys:
            rt.recording_store.delete(key)
        names = list(rt.redis.scan_iter(match=scoped(account_id, "vats:") + "*", count=1000))
        removed = rt.redis.delete(*names) if names else 0
        if token is not None:
            removed += RedisTokenStore(rt.redis, rt.secret_box).forget(contract_key(token))
        return f"{len(storage_keys)} recording file(s), {removed} Redis key(s)"

    rt.accounts.delete(account_id, actor, forget)
