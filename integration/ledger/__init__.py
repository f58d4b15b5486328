"""The SQL ledger: what must never be lost or duplicated (SQLAlchemy Core, Alembic migrations)."""
