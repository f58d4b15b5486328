"""link calls to the click-to-call requests that made them

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("callback_request_id", sa.String(32)))
        batch.create_index("ix_calls_callback_request_id", ["callback_request_id"])
    with op.batch_alter_table("activities") as batch:
        batch.add_column(sa.Column("callback_request_id", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("activities") as batch:
        batch.drop_column("callback_request_id")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_callback_request_id")
        batch.drop_column("callback_request_id")
