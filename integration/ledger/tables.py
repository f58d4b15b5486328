"""Table definitions (SQLAlchemy Core). Change them only together with a migration."""

from __future__ import annotations

from sqlalchemy import Column, Index, MetaData, String, Table, Text

from integration.ledger.db import UTCDateTime

metadata = MetaData()

callback_requests = Table(
    "callback_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("source", String(16), nullable=False),
    Column("idempotency_key", String(255)),
    Column("phone_from", String(10), nullable=False),
    Column("phone_to", String(20), nullable=False),
    Column("phone_to_raw", String(64), nullable=False, default=""),
    Column("operator_phone_to", String(24), nullable=False),
    Column("crm_user", String(64)),
    Column("crm_context", Text),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("request_hash", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("placing_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
)
Index("ix_callback_requests_status", callback_requests.c.status, callback_requests.c.placing_at)
Index("ix_callback_requests_created_at", callback_requests.c.created_at)
