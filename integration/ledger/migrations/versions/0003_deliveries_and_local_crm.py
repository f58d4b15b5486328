"""deliveries, and the local CRM's contacts and activities

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from integration.ledger.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.id"), primary_key=True),
        sa.Column("crm", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("crm_id", sa.String(128)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", UTCDateTime),
        sa.Column("match", sa.String(16)),
        sa.Column("candidates", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("delivered_at", UTCDateTime),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("phone_e164", sa.String(20), nullable=False),
        sa.Column("phone_key", sa.String(10), nullable=False),
        sa.Column("phone_raw", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_contacts_phone_key", "contacts", ["phone_key"])
    op.create_table(
        "activities",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(64), nullable=False, unique=True),
        sa.Column("contact_ids", sa.Text, nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("duration", sa.Integer, nullable=False),
        sa.Column("line", sa.String(10), nullable=False),
        sa.Column("ext_e164", sa.String(20)),
        sa.Column("ext_raw", sa.String(64), nullable=False),
        sa.Column("responsible_user", sa.String(64)),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_activities_started_at", "activities", ["started_at"])


def downgrade() -> None:
    op.drop_table("activities")
    op.drop_table("contacts")
    op.drop_table("deliveries")
