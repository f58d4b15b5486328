"""callback requests

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from integration.ledger.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "callback_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("phone_from", sa.String(10), nullable=False),
        sa.Column("phone_to", sa.String(20), nullable=False),
        sa.Column("phone_to_raw", sa.String(64), nullable=False),
        sa.Column("operator_phone_to", sa.String(24), nullable=False),
        sa.Column("crm_user", sa.String(64)),
        sa.Column("crm_context", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("request_hash", sa.String(255)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("placing_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
    )
    op.create_index("ix_callback_requests_status", "callback_requests", ["status", "placing_at"])
    op.create_index("ix_callback_requests_created_at", "callback_requests", ["created_at"])


def downgrade() -> None:
    op.drop_table("callback_requests")
