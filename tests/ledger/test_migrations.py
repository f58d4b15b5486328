"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from integration.ledger.db import downgrade, make_engine, upgrade
from integration.ledger.tables import metadata


def test_the_migrated_schema_is_the_declared_one(database_url):
    engine = make_engine(database_url)
    assert _drift(engine) == []
    engine.dispose()


def test_calls_keep_only_the_indexes_their_queries_use(database_url):
    engine = make_engine(database_url)
    assert _calls_indexes(engine) == {"ix_calls_started_at", "ix_calls_callback_request_id"}
    assert "IS NOT NULL" in _definition(engine, "ix_calls_callback_request_id")  # only linked calls
    engine.dispose()


def test_the_last_migration_can_be_undone_and_redone(database_url):
    engine = make_engine(database_url)
    downgrade(engine, "0008")
    assert "ix_calls_ext_e164" in _calls_indexes(engine)
    upgrade(engine)
    assert _drift(engine) == []
    engine.dispose()


def _drift(engine) -> list:
    """What differs between the database's schema and ``tables.py`` (nothing, when current)."""
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), metadata)


def _calls_indexes(engine) -> set[str]:
    return {index["name"] for index in inspect(engine).get_indexes("calls")}


def _definition(engine, index: str) -> str:
    query = (
        "SELECT sql FROM sqlite_master WHERE name = :name"
        if engine.dialect.name == "sqlite"
        else "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
    )
    with engine.connect() as connection:
        return connection.execute(text(query), {"name": index}).scalar_one()
