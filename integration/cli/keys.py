"""``flask --app wsgi secrets rotate``: seal every stored secret with the first of ``SECRET_KEYS``."""

from __future__ import annotations

import click
from flask.cli import AppGroup

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
    tokens = RedisTokenStore(runtime.redis, runtime.secret_box).reseal()
    crm = runtime.crm
    crm_tokens = crm.reseal_secrets() if isinstance(crm, StoresSecrets) else 0
    click.echo(f"sealed with the first key: {tokens} operator token pair(s), {crm_tokens} {crm.name} token pair(s)")
