"""Console users (``console_users``): email, role, the account they belong to (none: the whole
deployment) and a scrypt password hash.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

from integration.ledger.db import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("email", sa.String(254), primary_key=True),
        sa.Column("account", sa.String(63)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("password_changed_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_console_users_account", "console_users", ["account"])


def downgrade() -> None:
    op.drop_index("ix_console_users_account", "console_users")
    op.drop_table("console_users")
