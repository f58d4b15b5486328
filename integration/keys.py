"""Redis keys per account: a stored account's keys live under ``vats:a:<account>:``; the
environment's account (``default``) keeps the names it always had, so an upgrade loses no
idempotency claim, lock or token."""

from __future__ import annotations

DEFAULT_ACCOUNT = "default"
PREFIX = "vats:"


def scoped(account: str, name: str) -> str:
    """``name`` (a ``vats:…`` key or prefix) as ``account``'s."""
    if account == DEFAULT_ACCOUNT:
        return name
    if not name.startswith(PREFIX):
        raise ValueError(f"not a vats: key: {name!r}")
    return f"{PREFIX}a:{account}:{name[len(PREFIX) :]}"
