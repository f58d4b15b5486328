"""``flask --app wsgi secrets rotate``: seal every stored secret with the first of ``SECRET_KEYS``."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from integration.cli.accounts import actor
from integration.cli.common import current_runtime, friendly_errors
from integration.crm.base import StoresSecrets
from integration.operator.auth import RedisTokenStore

secrets_group = AppGroup("secrets", help="Secrets at rest, sealed with SECRET_KEYS.")


@secrets_group.command("rotate")
@friendly_errors
def rotate_command() -> None:
    """Seal every stored secret again with the first key of SECRET_KEYS.

    Rotate keys in three steps: put the new key first in SECRET_KEYS (keep the old ones after it)
    and restart; run this; then drop the old keys."""
    runtime = current_runtime()
    tokens, unreadable = RedisTokenStore(runtime.redis, runtime.secret_box).reseal()
    crm = runtime.crm
    crm_tokens = crm.reseal_secrets() if isinstance(crm, StoresSecrets) else 0
    accounts, unreadable_accounts = runtime.accounts.reseal(actor())
    click.echo(
        f"sealed with the first key: {tokens} operator token pair(s), {crm_tokens} {crm.name} token pair(s), "
        f"{accounts} stored account(s)"
    )
    if unreadable_accounts:
        click.echo(
            f"warning: no key of SECRET_KEYS opens the secrets of account(s) {', '.join(unreadable_accounts)}: "
            "left as they are (update them from their account files)",
            err=True,
        )
    if unreadable:
        click.echo(
            f"warning: {unreadable} operator token pair(s) no key of SECRET_KEYS opens were left as they are "
            "(their contracts' calls fail until SECRET_KEYS has the key again, or the pair is deleted from Redis)",
            err=True,
        )
