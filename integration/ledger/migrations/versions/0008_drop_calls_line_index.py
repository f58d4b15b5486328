"""Drop the calls (line, started_at) index: the few contract lines are filtered on the
started_at index, and every insert of a call paid for maintaining it

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_calls_line_started_at", table_name="calls")


def downgrade() -> None:
    op.create_index("ix_calls_line_started_at", "calls", ["line", "started_at"])
