"""The callback ledger on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest

from integration.ledger.callbacks import CallbackLedger
from integration.ledger.db import make_engine, schema_problem
from integration.models import CallbackRequest, CallbackStatus

NOW = datetime(2026, 11, 27, 9, 30, 15, 123456, tzinfo=UTC)


def request(**kw) -> CallbackRequest:
    values = dict(
        id="r1",
        source="webhook",
        phone_from="4990000000",
        phone_to="+79161234567",
        operator_phone_to="89161234567",
        created_at=NOW,
        phone_to_raw="8 916 123-45-67",
        crm_user="7",
        crm_context={"deal": 42, "name": "Анна"},
    )
    return CallbackRequest(**(values | kw))


@pytest.fixture
def ledger(database_url):
    engine = make_engine(database_url)
    yield CallbackLedger(engine)
    engine.dispose()


def test_add_is_idempotent_and_round_trips(ledger):
    assert ledger.add(request())
    assert not ledger.add(request(phone_to="+70000000000"))
    stored = ledger.get("r1")
    assert stored == request()
    assert stored.created_at.tzinfo is not None and stored.created_at == NOW
    assert ledger.get("missing") is None


def test_transitions_are_compare_and_set(ledger):
    ledger.add(request())
    assert ledger.transition("r1", [CallbackStatus.QUEUED], CallbackStatus.PLACING, placing_at=NOW)
    assert not ledger.transition("r1", [CallbackStatus.QUEUED], CallbackStatus.PLACING, placing_at=NOW)
    assert ledger.transition("r1", [CallbackStatus.PLACING], CallbackStatus.PLACED, request_hash="h==", finished_at=NOW)
    stored = ledger.get("r1")
    assert (stored.status, stored.request_hash, stored.placing_at) == (CallbackStatus.PLACED, "h==", NOW)


def test_reaping_stuck_placing(ledger):
    ledger.add(request(id="old"))
    ledger.add(request(id="new"))
    ledger.add(request(id="done"))
    ledger.transition("old", [CallbackStatus.QUEUED], CallbackStatus.PLACING, placing_at=NOW - timedelta(minutes=10))
    ledger.transition("new", [CallbackStatus.QUEUED], CallbackStatus.PLACING, placing_at=NOW)
    assert ledger.reap_placing(NOW - timedelta(minutes=5), NOW) == ["old"]
    assert ledger.get("old").status is CallbackStatus.UNKNOWN and "not repeated" in ledger.get("old").reason
    assert ledger.get("new").status is CallbackStatus.PLACING
    assert ledger.get("done").status is CallbackStatus.QUEUED


def test_schema_is_current(ledger):
    assert schema_problem(ledger.engine) is None


def test_missing_schema_is_reported(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/empty.db")
    assert "flask --app wsgi db upgrade" in schema_problem(engine)
