"""Accounts: one row per account stored in the database (the environment's account ``default``
is not stored), their audit log; a work item's target holds a rule's name (up to 200 characters)

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from integration.ledger.db import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("secrets", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("account", sa.String(63)),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("result", sa.String(200), nullable=False),
    )
    op.create_index("ix_audit_log_account_at", "audit_log", ["account", "at"])
    with op.batch_alter_table("work_items") as batch:
        batch.alter_column("target", type_=sa.String(200), existing_type=sa.String(32), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("work_items") as batch:
        batch.alter_column("target", type_=sa.String(32), existing_type=sa.String(200), existing_nullable=False)
    op.drop_index("ix_audit_log_account_at", "audit_log")
    op.drop_table("audit_log")
    op.drop_table("accounts")
