"""Engines and schema migrations."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path

from sqlalchemy import Connection, DateTime, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import TypeDecorator

from integration.timeutil import wall_clock_text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
logging.getLogger("alembic").setLevel(logging.WARNING)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger")
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return datetime.combine(value, value.time())  # naive; a quarter of what replace(tzinfo=None) costs

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return datetime.combine(value, value.time(), UTC) if value is not None else None

    def bind_processor(self, dialect):
        """SQLite keeps a DATETIME as text in SQLAlchemy's default format, which is exactly
        ``isoformat(" ", "microseconds")``: written directly (``wall_clock_text``), a call's start
        costs a fifth as much to bind (a test holds the two equal)."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is not None and value.tzinfo is not UTC:  # a UTC wall clock is written as it is
                value = self.process_bind_param(value, dialect)
            if value is None:
                return None
            fraction = f".{value.microsecond:06d}" if value.microsecond else ".000000"  # the operator's are whole
            return wall_clock_text(value, " ") + fraction

        return process


def make_engine(url: str) -> Engine:
    """An engine for ``DATABASE_URL``: SQLite gets WAL and a busy timeout, its folder is created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-32768")  # 32 MiB of pages (default 2): the ledger's indexes stay in memory
        cursor.execute(
            "PRAGMA wal_autocheckpoint=8000"
        )  # 32 MiB of WAL: hot index pages are written back once, not each batch
        cursor.close()

    return engine


def _alembic_config(engine: Engine):
    from alembic.config import Config  # imported here: only migrations and readiness need it

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent)."""
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (rolling a release back)."""
    from alembic import command

    command.downgrade(_alembic_config(engine), revision)


DatabaseError = SQLAlchemyError
"""Every failure of the database or its driver, for callers that report it (the CLI) without
knowing SQLAlchemy."""


def database_status(engine: Engine) -> str:
    """The database as readiness reports it: ``ok``, what to do about the schema, or
    ``unreachable (<error>)``."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return schema_problem(engine) or "ok"
    except SQLAlchemyError as exc:
        return f"unreachable ({type(exc).__name__})"


def schema_problem(engine: Engine) -> str | None:
    """None when the schema is current, else what to do about it."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        return f"the database schema is at {current or 'nothing'}, not {head}: run `flask --app wsgi db upgrade`"
    return None


def dialect_module(engine: Engine):
    """The dialect module whose ``insert`` has ON CONFLICT: postgresql or sqlite."""
    return postgresql if engine.dialect.name == "postgresql" else sqlite


def insert_new(connection: Connection, target: Table, names: Sequence[str], rows: Sequence[tuple]) -> list:
    """INSERT … ON CONFLICT DO NOTHING of many rows, each a tuple of the ``names`` columns' values
    (distinct primary keys); returns the primary keys of the rows that were new, in the rows'
    order. A concurrent writer of the same keys is harmless.

    For big batches SQLAlchemy's per-row parameter and result handling costs more than the insert
    itself, so the driver runs statements written once per batch, and only the columns' bind
    processors (UTC datetimes, booleans) are applied, column by column.
    """
    if not rows:
        return []
    dialect = connection.dialect
    [key] = target.primary_key.columns
    key_at = names.index(key.name)
    columns = _bound_columns(dialect, target, names, rows)
    insert = _Insert(
        table=_quoted(dialect, target),
        names=", ".join(_quoted_column(dialect, n) for n in names),
        key=_quoted_column(dialect, key.name),
        staging=_quoted_column(dialect, f"incoming_{target.name}"),
    )
    driver = connection.connection.driver_connection  # the driver's own, in the same transaction
    if dialect.name == "postgresql":
        new_keys = _copy_then_insert(driver, insert, columns)
    else:
        new_keys = _insert_under_lock(driver, insert, columns, key_at)
    return [row[key_at] for row in rows if row[key_at] in new_keys]


@dataclass(frozen=True)
class _Insert:
    """The quoted names a bulk insert's statements are written with."""

    table: str
    names: str  # the inserted columns, comma-separated
    key: str  # the primary key column
    staging: str  # PostgreSQL's temporary table

    @property
    def into(self) -> str:
        return f"INSERT INTO {self.table} ({self.names})"


def _copy_then_insert(driver, insert: _Insert, columns: list[Sequence]) -> set:
    """PostgreSQL: a binary ``COPY`` into a temporary table, then one ``INSERT … SELECT`` returning
    the new keys."""
    with driver.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE {insert.staging} (LIKE {insert.table}) ON COMMIT DROP")
        cursor.execute(f"SELECT {insert.names} FROM {insert.staging} LIMIT 0")
        types = [column.type_code for column in cursor.description]  # binary COPY needs the types
        with cursor.copy(f"COPY {insert.staging} ({insert.names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in zip(*columns, strict=True):
                copy.write_row(row)
        cursor.execute(
            f"{insert.into} SELECT {insert.names} FROM {insert.staging} ON CONFLICT DO NOTHING RETURNING {insert.key}"
        )
        new_keys = {found for (found,) in cursor.fetchall()}
        cursor.execute(f"DROP TABLE {insert.staging}")  # a second batch in the same transaction makes its own
    return new_keys


def _insert_under_lock(driver, insert: _Insert, columns: list[Sequence], key_at: int) -> set:
    """SQLite, holding its write lock: which keys are stored already, then multi-row ``VALUES`` (as
    many rows as its 32,766 parameters allow).

    No ``RETURNING``: its rows come back one step at a time, each handing Python's GIL back and
    forth; this way each statement is one step that runs without the GIL, which the sync's
    background writer relies on.
    """
    if not driver.in_transaction:  # else an earlier write of this transaction holds the lock already
        driver.execute("BEGIN IMMEDIATE")
    keys = columns[key_at]
    known: set = set()
    stored = f"SELECT json_group_array({insert.key}) FROM {insert.table} WHERE {insert.key} IN "
    for start in range(0, len(keys), SQLITE_MAX_PARAMETERS):
        part = keys[start : start + SQLITE_MAX_PARAMETERS]
        [(found,)] = driver.execute(f"{stored}({', '.join('?' * len(part))})", part)
        known.update(json.loads(found))
    per_statement = SQLITE_MAX_PARAMETERS // len(columns)
    one_row = "(" + ", ".join("?" * len(columns)) + ")"
    inserted = 0
    for start in range(0, len(keys), per_statement):
        chunk = [column[start : start + per_statement] for column in columns]
        params = tuple(chain.from_iterable(zip(*chunk, strict=True)))
        values = ", ".join([one_row] * len(chunk[0]))
        inserted += driver.execute(f"{insert.into} VALUES {values} ON CONFLICT DO NOTHING", params).rowcount
    if inserted != len(keys) - len(known):  # impossible under the write lock; never guess
        raise RuntimeError(f"{insert.table}: {inserted} rows inserted, {len(keys) - len(known)} expected")
    return set(keys) - known


SQLITE_MAX_PARAMETERS = 32766  # SQLITE_MAX_VARIABLE_NUMBER since SQLite 3.32


def _bound_columns(dialect, target: Table, names: Sequence[str], rows: Sequence[tuple]) -> list[Sequence]:
    """The rows' values column by column, as the driver takes them (the columns' bind processors;
    a column of one shared value, such as a batch's ``now``, is processed once)."""
    columns: list[Sequence] = list(zip(*rows, strict=True))
    for at, name in enumerate(names):
        process = target.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is None:
            continue
        column = columns[at]
        if all(value is column[0] for value in column):
            columns[at] = [process(column[0])] * len(column)
        else:
            columns[at] = list(map(process, column))
    return columns


def _quoted(dialect, table: Table) -> str:
    return dialect.identifier_preparer.format_table(table)


def _quoted_column(dialect, name: str) -> str:
    return dialect.identifier_preparer.quote(name)


def insert_ignoring_duplicates(engine: Engine, target: Table, rows: list[dict]) -> list[tuple]:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL; returns the new primary keys."""
    if not rows:
        return []
    statement = dialect_module(engine).insert(target).on_conflict_do_nothing().returning(*target.primary_key.columns)
    with engine.begin() as connection:
        return [tuple(row) for row in connection.execute(statement, rows)]
