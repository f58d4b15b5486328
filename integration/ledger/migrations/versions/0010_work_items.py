"""One work-item ledger: the work state of deliveries, outbox events, recording fetches and CRM
events moves into ``work_items``; their domain data stays where it is

Status mapping (old → work item): a delivery ``delivered`` → ``done``; an outbox event
``delivered`` → ``done`` (result ``sent``), ``included`` → ``done`` (result ``included``); a
recording ``pending``/``failed`` → the same, ``stored``/``deleted`` → ``done`` (and the recording
keeps ``stored``/``deleted`` as its own state, NULL until stored); a CRM event handled → ``done``
(``failed`` when its outcome says so), its outcome → the result; not handled → ``pending``.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from integration.ledger.db import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = "kind, subject, target, status, attempts, next_attempt_at, last_error, result, created_at, finished_at"


def upgrade() -> None:
    op.create_table(
        "work_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("subject", sa.String(160), nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("result", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.UniqueConstraint("kind", "subject", "target", name="uq_work_items_key"),
    )
    op.create_index("ix_work_items_due", "work_items", ["status", "next_attempt_at"])
    op.execute(
        f"INSERT INTO work_items ({COLUMNS}) SELECT 'deliver_call', call_id, crm,"
        " CASE status WHEN 'delivered' THEN 'done' ELSE status END, attempts, next_attempt_at, last_error,"
        " NULL, created_at, delivered_at FROM deliveries"
    )
    op.execute(
        f"INSERT INTO work_items ({COLUMNS}) SELECT 'send_event', id, '',"
        " CASE status WHEN 'delivered' THEN 'done' WHEN 'included' THEN 'done' ELSE status END,"
        " attempts, next_attempt_at, last_error,"
        " CASE status WHEN 'delivered' THEN 'sent' WHEN 'included' THEN 'included' END, created_at, delivered_at"
        " FROM outbox"
    )
    op.execute(
        f"INSERT INTO work_items ({COLUMNS}) SELECT 'fetch_recording', call_id, '',"
        " CASE status WHEN 'stored' THEN 'done' WHEN 'deleted' THEN 'done' ELSE status END,"
        " attempts, next_attempt_at, last_error, NULL, created_at, stored_at FROM recordings"
    )
    op.execute(
        f"INSERT INTO work_items ({COLUMNS}) SELECT 'handle_event', id, '',"
        " CASE WHEN handled_at IS NULL THEN 'pending' WHEN outcome LIKE 'failed: %' THEN 'failed' ELSE 'done' END,"
        " CASE WHEN handled_at IS NULL THEN 0 ELSE 1 END, CASE WHEN handled_at IS NULL THEN received_at END,"
        " CASE WHEN outcome LIKE 'failed: %' THEN outcome END, outcome, received_at, handled_at FROM crm_events"
    )

    op.drop_index("ix_deliveries_due", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        for name in ("status", "attempts", "last_error", "next_attempt_at", "delivered_at"):
            batch.drop_column(name)
    op.drop_index("ix_outbox_due", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        for name in ("status", "attempts", "last_error", "next_attempt_at", "delivered_at"):
            batch.drop_column(name)
    op.drop_index("ix_recordings_due", table_name="recordings")
    with op.batch_alter_table("recordings") as batch:
        for name in ("attempts", "last_error", "next_attempt_at"):
            batch.drop_column(name)
        batch.alter_column("status", existing_type=sa.String(12), nullable=True)
    op.execute("UPDATE recordings SET status = NULL WHERE status NOT IN ('stored', 'deleted')")
    with op.batch_alter_table("crm_events") as batch:
        batch.drop_column("handled_at")
        batch.drop_column("outcome")


def _restore(table: str, kind: str, assignments: dict[str, str], where: str) -> None:
    """Copy work state back into ``table`` from its work items (``w``), one correlated subquery per
    column (``UPDATE … FROM`` would need SQLite 3.33)."""
    values = ", ".join(
        f"{column} = (SELECT {expression} FROM work_items w WHERE w.kind = '{kind}' AND {where})"
        for column, expression in assignments.items()
    )
    op.execute(f"UPDATE {table} SET {values}")


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("status", sa.String(12)))
        batch.add_column(sa.Column("attempts", sa.Integer))
        batch.add_column(sa.Column("last_error", sa.Text))
        batch.add_column(sa.Column("next_attempt_at", UTCDateTime))
        batch.add_column(sa.Column("delivered_at", UTCDateTime))
    _restore(
        "deliveries",
        "deliver_call",
        {
            "status": "CASE w.status WHEN 'done' THEN 'delivered' ELSE w.status END",
            "attempts": "w.attempts",
            "last_error": "w.last_error",
            "next_attempt_at": "w.next_attempt_at",
            "delivered_at": "CASE w.status WHEN 'done' THEN w.finished_at END",
        },
        "w.subject = deliveries.call_id AND w.target = deliveries.crm",
    )
    op.execute(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = created_at WHERE status IS NULL"
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("status", existing_type=sa.String(12), nullable=False)
        batch.alter_column("attempts", existing_type=sa.Integer, nullable=False)
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])

    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("status", sa.String(12)))
        batch.add_column(sa.Column("attempts", sa.Integer))
        batch.add_column(sa.Column("last_error", sa.Text))
        batch.add_column(sa.Column("next_attempt_at", UTCDateTime))
        batch.add_column(sa.Column("delivered_at", UTCDateTime))
    _restore(
        "outbox",
        "send_event",
        {
            "status": "CASE WHEN w.status = 'done' AND w.result = 'included' THEN 'included'"
            " WHEN w.status = 'done' THEN 'delivered' ELSE w.status END",
            "attempts": "w.attempts",
            "last_error": "w.last_error",
            "next_attempt_at": "w.next_attempt_at",
            "delivered_at": "CASE w.status WHEN 'done' THEN w.finished_at END",
        },
        "w.subject = outbox.id",
    )
    op.execute("UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = created_at WHERE status IS NULL")
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("status", existing_type=sa.String(12), nullable=False)
        batch.alter_column("attempts", existing_type=sa.Integer, nullable=False)
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])

    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer))
        batch.add_column(sa.Column("last_error", sa.Text))
        batch.add_column(sa.Column("next_attempt_at", UTCDateTime))
    _restore(
        "recordings",
        "fetch_recording",
        {
            "status": "COALESCE(recordings.status, w.status)",
            "attempts": "w.attempts",
            "last_error": "w.last_error",
            "next_attempt_at": "w.next_attempt_at",
        },
        "w.subject = recordings.call_id",
    )
    op.execute("UPDATE recordings SET status = 'pending' WHERE status IS NULL")
    op.execute("UPDATE recordings SET attempts = 0, next_attempt_at = created_at WHERE attempts IS NULL")
    with op.batch_alter_table("recordings") as batch:
        batch.alter_column("status", existing_type=sa.String(12), nullable=False)
        batch.alter_column("attempts", existing_type=sa.Integer, nullable=False)
    op.create_index("ix_recordings_due", "recordings", ["status", "next_attempt_at"])

    with op.batch_alter_table("crm_events") as batch:
        batch.add_column(sa.Column("handled_at", UTCDateTime))
        batch.add_column(sa.Column("outcome", sa.Text))
    _restore(
        "crm_events",
        "handle_event",
        {"handled_at": "w.finished_at", "outcome": "CASE WHEN w.status = 'pending' THEN NULL ELSE w.result END"},
        "w.subject = crm_events.id",
    )
    op.drop_index("ix_work_items_due", table_name="work_items")
    op.drop_table("work_items")
