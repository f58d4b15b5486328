"""recordings, and whether a delivered call carried its recording

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from integration.ledger.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.id"), primary_key=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("record_file_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", UTCDateTime),
        sa.Column("size", sa.Integer),
        sa.Column("sha256", sa.String(64)),
        sa.Column("storage_key", sa.String(80)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("stored_at", UTCDateTime),
        sa.Column("deleted_at", UTCDateTime),
        sa.Column("announced", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_recordings_due", "recordings", ["status", "next_attempt_at"])
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("with_recording", sa.Boolean))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("with_recording")
    op.drop_table("recordings")
