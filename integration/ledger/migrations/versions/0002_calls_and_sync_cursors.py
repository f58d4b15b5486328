"""calls and sync cursors

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from integration.ledger.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("line", sa.String(10), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("duration", sa.Integer, nullable=False),
        sa.Column("ext_raw", sa.String(64), nullable=False),
        sa.Column("ext_e164", sa.String(20)),
        sa.Column("ext_internal", sa.Boolean, nullable=False),
        sa.Column("service", sa.String(64)),
        sa.Column("record_file_id", sa.String(64)),
        sa.Column("is_read", sa.Integer),
        sa.Column("first_seen_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_index("ix_calls_line_started_at", "calls", ["line", "started_at"])
    op.create_index("ix_calls_ext_e164", "calls", ["ext_e164"])
    op.create_table(
        "sync_cursors",
        sa.Column("line", sa.String(10), primary_key=True),
        sa.Column("synced_until", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_cursors")
    op.drop_table("calls")
