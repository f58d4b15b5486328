"""Every ledger row carries its account: an ``account`` column on every table (existing rows are
the environment's account, ``default``); calls are listed by account and time; a work item is
one account's (its key: account, kind, subject, target).

Ids stay as they are: calls, deliveries, recordings and outbox events are named by contract
numbers, which serve one account each; ids that come from outside (CRM events' webhook-ids,
click-to-call idempotency) are qualified by a stored account's id when they are made.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLES = (
    "callback_requests",
    "calls",
    "sync_cursors",
    "deliveries",
    "contacts",
    "activities",
    "outbox",
    "recordings",
    "crm_events",
    "deal_calls",
    "work_items",
)


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("account", sa.String(63), nullable=False, server_default="default"))
    op.drop_index("ix_calls_started_at", "calls")
    op.create_index("ix_calls_account_started_at", "calls", ["account", "started_at"])
    op.create_index("ix_contacts_account_phone_key", "contacts", ["account", "phone_key"])
    op.drop_index("ix_contacts_phone_key", "contacts")
    with op.batch_alter_table("work_items") as batch:
        batch.drop_constraint("uq_work_items_key", type_="unique")
        batch.create_unique_constraint("uq_work_items_key", ["account", "kind", "subject", "target"])


def downgrade() -> None:
    with op.batch_alter_table("work_items") as batch:
        batch.drop_constraint("uq_work_items_key", type_="unique")
        batch.create_unique_constraint("uq_work_items_key", ["kind", "subject", "target"])
    op.create_index("ix_contacts_phone_key", "contacts", ["phone_key"])
    op.drop_index("ix_contacts_account_phone_key", "contacts")
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.drop_index("ix_calls_account_started_at", "calls")
    for table in TABLES:  # SQLite ≥ 3.35 drops a column in place (a batch copy would trip the foreign keys)
        op.execute(f"ALTER TABLE {table} DROP COLUMN account")
