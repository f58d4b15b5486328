"""Each stored account's contract numbers in a table of their own (``account_numbers``): checking a
new account's numbers is one indexed query, and the primary key refuses a number to a second
account even when two are created at once. Filled from the stored accounts' OPERATOR_NUMBERS; a
number two accounts list stays the earlier-created one's (a warning names it).

Revision ID: 0013
Revises: 0012
"""

import json
import logging

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic")


def upgrade() -> None:
    op.create_table(
        "account_numbers",
        sa.Column("number", sa.String(10), primary_key=True),
        sa.Column("account", sa.String(63), sa.ForeignKey("accounts.id"), nullable=False),
    )
    op.create_index("ix_account_numbers_account", "account_numbers", ["account"])
    stored = op.get_bind().execute(sa.text("SELECT id, settings FROM accounts ORDER BY created_at, id"))
    owners: dict[str, str] = {}
    for account, settings in stored:
        for number in _numbers(json.loads(settings)):
            if owners.setdefault(number, account) != account:
                log.warning(
                    "account_numbers: %s stays account %s's (account %s lists it too)", number, owners[number], account
                )
    if owners:
        numbers = sa.table("account_numbers", sa.column("number"), sa.column("account"))
        op.bulk_insert(numbers, [{"number": n, "account": a} for n, a in owners.items()])


def downgrade() -> None:
    op.drop_index("ix_account_numbers_account", "account_numbers")
    op.drop_table("account_numbers")


def _numbers(settings: dict) -> list[str]:
    """OPERATOR_NUMBERS as stored: a list, or comma-separated text."""
    value = settings.get("OPERATOR_NUMBERS", ())
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]
