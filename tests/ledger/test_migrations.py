"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

import json
import logging
from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import DateTime, MetaData, Table, inspect, select, text

from integration.ledger.db import downgrade, make_engine, upgrade
from integration.ledger.tables import metadata


def test_the_migrated_schema_is_the_declared_one(database_url):
    engine = make_engine(database_url)
    assert _drift(engine) == []
    engine.dispose()


def test_calls_keep_only_the_indexes_their_queries_use(database_url):
    engine = make_engine(database_url)
    assert _calls_indexes(engine) == {
        "ix_calls_account_started_status",
        "ix_calls_account_ext_key",
        "ix_calls_callback_request_id",
    }
    assert "IS NOT NULL" in _definition(engine, "ix_calls_callback_request_id")  # only linked calls
    engine.dispose()


def test_the_0009_migration_can_be_undone_and_redone(database_url):
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


# --- 0010: the work state of four ledgers moves into work_items, and back ---------------------

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
T2 = T0 + timedelta(hours=1)

OLD_ROWS = {  # at 0009: a row in every state, with the work state each carried
    "deliveries": [
        {
            "call_id": "c1",
            "crm": "local",
            "status": "pending",
            "crm_id": None,
            "attempts": 0,
            "last_error": None,
            "next_attempt_at": T0,
            "match": None,
            "candidates": None,
            "created_at": T0,
            "delivered_at": None,
            "with_recording": None,
        },
        {
            "call_id": "c2",
            "crm": "local",
            "status": "pending",
            "crm_id": "b24-7",
            "attempts": 3,
            "last_error": "CRM answered 503",
            "next_attempt_at": T1,
            "match": None,
            "candidates": None,
            "created_at": T0,
            "delivered_at": None,
            "with_recording": True,
        },
        {
            "call_id": "c3",
            "crm": "local",
            "status": "delivered",
            "crm_id": "41",
            "attempts": 1,
            "last_error": None,
            "next_attempt_at": None,
            "match": "contact",
            "candidates": '["5"]',
            "created_at": T0,
            "delivered_at": T1,
            "with_recording": False,
        },
        {
            "call_id": "c3",
            "crm": "amocrm",
            "status": "failed",
            "crm_id": None,
            "attempts": 9,
            "last_error": "refused",
            "next_attempt_at": None,
            "match": None,
            "candidates": None,
            "created_at": T0,
            "delivered_at": None,
            "with_recording": None,
        },
    ],
    "outbox": [
        {
            "id": "evt_pending",
            "type": "callback.finished",
            "subject": "r1",
            "data": '{"a": 1}',
            "status": "pending",
            "attempts": 2,
            "last_error": "timeout",
            "next_attempt_at": T1,
            "created_at": T0,
            "delivered_at": None,
        },
        {
            "id": "evt_sent",
            "type": "callback.finished",
            "subject": "r2",
            "data": "{}",
            "status": "delivered",
            "attempts": 1,
            "last_error": None,
            "next_attempt_at": None,
            "created_at": T0,
            "delivered_at": T1,
        },
        {
            "id": "evt_included",
            "type": "recording.ready",
            "subject": "c3",
            "data": "{}",
            "status": "included",
            "attempts": 0,
            "last_error": None,
            "next_attempt_at": None,
            "created_at": T0,
            "delivered_at": T1,
        },
        {
            "id": "evt_failed",
            "type": "callback.finished",
            "subject": "r3",
            "data": "{}",
            "status": "failed",
            "attempts": 40,
            "last_error": "HTTP 500",
            "next_attempt_at": None,
            "created_at": T0,
            "delivered_at": None,
        },
    ],
    "recordings": [
        {
            "call_id": "c1",
            "id": "p1",
            "record_file_id": "f1",
            "status": "pending",
            "attempts": 2,
            "last_error": "not ready yet",
            "next_attempt_at": T1,
            "size": None,
            "sha256": None,
            "storage_key": None,
            "created_at": T0,
            "stored_at": None,
            "deleted_at": None,
            "announced": False,
        },
        {
            "call_id": "c2",
            "id": "p2",
            "record_file_id": "f2",
            "status": "stored",
            "attempts": 1,
            "last_error": None,
            "next_attempt_at": None,
            "size": 1000,
            "sha256": "ab" * 32,
            "storage_key": "p2.mp3",
            "created_at": T0,
            "stored_at": T1,
            "deleted_at": None,
            "announced": True,
        },
        {
            "call_id": "c3",
            "id": "p3",
            "record_file_id": "f3",
            "status": "failed",
            "attempts": 1,
            "last_error": "not audio",
            "next_attempt_at": None,
            "size": None,
            "sha256": None,
            "storage_key": None,
            "created_at": T0,
            "stored_at": None,
            "deleted_at": None,
            "announced": False,
        },
        {
            "call_id": "c4",
            "id": "p4",
            "record_file_id": "f4",
            "status": "deleted",
            "attempts": 1,
            "last_error": None,
            "next_attempt_at": None,
            "size": 10,
            "sha256": "cd" * 32,
            "storage_key": "p4.mp3",
            "created_at": T0,
            "stored_at": T1,
            "deleted_at": T2,
            "announced": True,
        },
    ],
    "crm_events": [
        {
            "id": "webhook:new",
            "type": "deal.closed",
            "data": '{"deal_id": "1"}',
            "received_at": T0,
            "handled_at": None,
            "outcome": None,
        },
        {
            "id": "webhook:done",
            "type": "deal.closed",
            "data": "{}",
            "received_at": T0,
            "handled_at": T1,
            "outcome": "rule x: 2 call(s) attached",
        },
        {
            "id": "webhook:failed",
            "type": "deal.closed",
            "data": "{}",
            "received_at": T0,
            "handled_at": T2,
            "outcome": "failed: CRM refused",
        },
    ],
}

EXPECTED_ITEMS = {  # (kind, subject, target): (status, attempts, next attempt, last error, result, created, finished)
    ("deliver_call", "c1", "local"): ("pending", 0, T0, None, None, T0, None),
    ("deliver_call", "c2", "local"): ("pending", 3, T1, "CRM answered 503", None, T0, None),
    ("deliver_call", "c3", "local"): ("done", 1, None, None, None, T0, T1),
    ("deliver_call", "c3", "amocrm"): ("failed", 9, None, "refused", None, T0, None),
    ("send_event", "evt_pending", ""): ("pending", 2, T1, "timeout", None, T0, None),
    ("send_event", "evt_sent", ""): ("done", 1, None, None, "sent", T0, T1),
    ("send_event", "evt_included", ""): ("done", 0, None, None, "included", T0, T1),
    ("send_event", "evt_failed", ""): ("failed", 40, None, "HTTP 500", None, T0, None),
    ("fetch_recording", "c1", ""): ("pending", 2, T1, "not ready yet", None, T0, None),
    ("fetch_recording", "c2", ""): ("done", 1, None, None, None, T0, T1),
    ("fetch_recording", "c3", ""): ("failed", 1, None, "not audio", None, T0, None),
    ("fetch_recording", "c4", ""): ("done", 1, None, None, None, T0, T1),
    ("handle_event", "webhook:new", ""): ("pending", 0, T0, None, None, T0, None),
    ("handle_event", "webhook:done", ""): ("done", 1, None, None, "rule x: 2 call(s) attached", T0, T1),
    ("handle_event", "webhook:failed", ""): (
        "failed",
        1,
        None,
        "failed: CRM refused",
        "failed: CRM refused",
        T0,
        T2,
    ),
}

DOMAIN = {  # what stays in each old table (the recording's own state: stored, deleted or NULL)
    "deliveries": ("call_id", "crm", "crm_id", "match", "candidates", "created_at", "with_recording"),
    "outbox": ("id", "type", "subject", "data", "created_at"),
    "recordings": (
        "call_id",
        "id",
        "record_file_id",
        "size",
        "sha256",
        "storage_key",
        "created_at",
        "stored_at",
        "deleted_at",
        "announced",
    ),
    "crm_events": ("id", "type", "data", "received_at"),
}


def test_0010_moves_every_work_state_into_work_items_and_back(database_url):
    engine = make_engine(database_url)
    downgrade(engine, "0009")
    old = MetaData()
    old.reflect(engine, only=[*OLD_ROWS, "calls"])
    with engine.begin() as connection:
        connection.execute(old.tables["calls"].insert(), [_call(f"c{n}") for n in range(1, 5)])
        for name, rows in OLD_ROWS.items():
            connection.execute(old.tables[name].insert(), [_naive(row) for row in rows])

    upgrade(engine)
    assert _drift(engine) == []
    items = _rows(engine, "work_items")
    assert {(i["kind"], i["subject"], i["target"]): _work_state(i) for i in items} == EXPECTED_ITEMS
    for name, columns in DOMAIN.items():
        assert _by_key(_rows(engine, name), columns) == _by_key(OLD_ROWS[name], columns), name
    assert {r["call_id"]: r["status"] for r in _rows(engine, "recordings")} == {
        "c1": None,
        "c2": "stored",
        "c3": None,
        "c4": "deleted",
    }

    downgrade(engine, "0009")
    for name, rows in OLD_ROWS.items():
        assert _by_key(_rows(engine, name), tuple(rows[0])) == _by_key(rows, tuple(rows[0])), name
    upgrade(engine)
    assert _drift(engine) == [] and len(_rows(engine, "work_items")) == len(EXPECTED_ITEMS)
    engine.dispose()


def _call(call_id: str) -> dict:
    return {
        "id": call_id,
        "line": "4990000000",
        "direction": "in",
        "status": "answered",
        "started_at": _naive_time(T0),
        "duration": 5,
        "ext_raw": "1",
        "ext_e164": None,
        "ext_internal": False,
        "first_seen_at": _naive_time(T0),
    }


def _naive_time(value: datetime) -> datetime:
    return value.replace(tzinfo=None)


def _naive(row: dict) -> dict:
    """Reflected tables know no UTCDateTime: they take the naive UTC wall clock the ledger stores."""
    return {key: _naive_time(value) if isinstance(value, datetime) else value for key, value in row.items()}


def _aware(value, is_time: bool):
    if is_time and isinstance(value, str):  # SQLite may hand a reflected DATETIME back as text
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _rows(engine, name: str) -> list[dict]:
    table = Table(name, MetaData(), autoload_with=engine)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(select(table))]
    times = {column.name for column in table.columns if isinstance(column.type, DateTime)}
    return [{key: _aware(value, key in times) for key, value in row.items()} for row in rows]


def _work_state(item: dict) -> tuple:
    names = ("status", "attempts", "next_attempt_at", "last_error", "result", "created_at", "finished_at")
    return tuple(item[name] for name in names)


def _by_key(rows: list[dict], columns: tuple) -> dict:
    """Rows by their first two columns, each as its ``columns`` (booleans as SQLite returns them)."""
    picked = [{c: (int(row[c]) if isinstance(row[c], bool) else row[c]) for c in columns} for row in rows]
    return {(row[columns[0]], row[columns[1]]): row for row in picked}


# --- 0011: accounts, the audit log, and rule names as work-item targets --------------------------


def test_0011_adds_accounts_and_widens_the_work_item_target(database_url):
    engine = make_engine(database_url)
    downgrade(engine, "0010")
    assert not {"accounts", "audit_log"} & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert _drift(engine) == []
    long_rule = "call back every lost deal of the wholesale department within two working hours " * 2
    with engine.begin() as connection:  # PostgreSQL refused a rule name over 32 characters before
        connection.execute(
            text(
                "INSERT INTO work_items (kind, subject, target, status, attempts, created_at)"
                " VALUES ('rule_callback', 'webhook:msg_1', :target, 'pending', 0, :now)"
            ),
            {"target": long_rule, "now": datetime.now(UTC)},
        )
    engine.dispose()


# --- 0013: the stored accounts' contract numbers in a table of their own ---------------------------


def test_0013_fills_account_numbers_from_the_accounts_stored_before_it(database_url, caplog):
    engine = make_engine(database_url)
    downgrade(engine, "0012")
    assert "account_numbers" not in inspect(engine).get_table_names()
    stored = {  # OPERATOR_NUMBERS as a list or as comma-separated text; 4993330000 listed twice
        "acme": (T0, ["4991110000", "4991110001"]),
        "beta": (T1, "4992220000, 4993330000"),
        "gamma": (T2, ["4993330000", "4994440000"]),
    }
    with engine.begin() as connection:
        for account, (created, numbers) in stored.items():
            connection.execute(
                text(
                    "INSERT INTO accounts (id, enabled, settings, secrets, version, created_at, updated_at)"
                    " VALUES (:id, :enabled, :settings, 'sealed', 1, :at, :at)"
                ),
                {"id": account, "enabled": True, "settings": json.dumps({"OPERATOR_NUMBERS": numbers}), "at": created},
            )

    with caplog.at_level(logging.WARNING, logger="alembic"):
        upgrade(engine)
    assert _drift(engine) == []
    assert {row["number"]: row["account"] for row in _rows(engine, "account_numbers")} == {
        "4991110000": "acme",
        "4991110001": "acme",
        "4992220000": "beta",
        "4993330000": "beta",  # the earlier account's…
        "4994440000": "gamma",
    }
    assert "4993330000 stays account beta's (account gamma lists it too)" in caplog.text  # …and a warning

    downgrade(engine, "0012")
    assert "account_numbers" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert len(_rows(engine, "account_numbers")) == 5
    engine.dispose()


# --- 0015: a call's number's match key, indexed ------------------------------------------------


def test_0015_fills_each_calls_match_key_as_the_ledger_writes_it(database_url):
    engine = make_engine(database_url)
    downgrade(engine, "0014")
    numbers = {"c1": "+79161234567", "c2": "+4930123456", "c3": "+1234", "c4": None}
    with engine.begin() as connection:
        for call_id, e164 in numbers.items():
            connection.execute(
                text(
                    "INSERT INTO calls (account, id, line, direction, status, started_at, duration, ext_raw,"
                    " ext_e164, ext_internal, first_seen_at) VALUES ('default', :id, '4990000000', 'inbound',"
                    " 'answered', :at, 5, 'x', :e164, :internal, :at)"
                ),
                {"id": call_id, "e164": e164, "internal": e164 is None, "at": T0},
            )
    upgrade(engine)
    assert _drift(engine) == []
    keys = {row["id"]: row["ext_key"] for row in _rows(engine, "calls")}
    assert keys == {"c1": "9161234567", "c2": "4930123456", "c3": "1234", "c4": None}
    assert keys == {c: (e[1:][-10:] if e else None) for c, e in numbers.items()}  # as CallLedger writes it
    engine.dispose()
