"""Flask CLI commands (``flask --app wsgi …``): the groups ``create_app`` registers.

``common`` holds what every command module shares (exit codes, ``fail``, ``friendly_errors``,
the runtime, dates in options); ``operator`` calls the operator by hand; ``ledger`` runs the
ledger's work at once; ``vats`` reviews and applies PBX routing settings; ``keys`` re-seals
stored secrets. The services they call (``integration.vats``, ``integration.services``…) know
nothing of Flask or click.
"""

from __future__ import annotations

from integration.cli.accounts import accounts_group
from integration.cli.keys import secrets_group
from integration.cli.ledger import contacts_group, db_group, reconcile_command, recordings_group, sync_command
from integration.cli.operator import operator_group
from integration.cli.users import users_group
from integration.cli.vats import vats_group

__all__ = [
    "accounts_group",
    "contacts_group",
    "db_group",
    "operator_group",
    "reconcile_command",
    "recordings_group",
    "secrets_group",
    "sync_command",
    "users_group",
    "vats_group",
]
