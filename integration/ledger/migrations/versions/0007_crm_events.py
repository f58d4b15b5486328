"""CRM events and the local CRM's deal ↔ call links

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from integration.ledger.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crm_events",
        sa.Column("id", sa.String(160), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("handled_at", UTCDateTime),
        sa.Column("outcome", sa.Text),
    )
    op.create_table(
        "deal_calls",
        sa.Column("deal_id", sa.String(64), primary_key=True),
        sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.id"), primary_key=True),
        sa.Column("attached_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("deal_calls")
    op.drop_table("crm_events")
