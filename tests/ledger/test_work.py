"""Work items: one table, one retry policy, one query for what is due (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integration.ledger import work
from integration.ledger.db import make_engine
from integration.ledger.work import WorkKey, WorkKind, WorkLedger

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def ledger(database_url):
    engine = make_engine(database_url)
    yield WorkLedger(engine)
    engine.dispose()


def test_retry_delays_start_quick_then_grow_and_are_jittered():
    assert all(1.0 <= work.retry_delay(attempt) <= 2.0 for attempt in range(5))
    assert [work.retry_delay(attempt, rng=lambda: 1.0) for attempt in range(4, 9)] == [2, 4, 8, 16, 32]
    assert work.retry_delay(6, rng=lambda: 0.0) == 4.0
    assert work.retry_delay(30) <= 1800


def test_a_crm_dropping_a_third_of_requests_delays_no_call_by_minutes():
    # seven failures in a row happen to one call in about 2,000 when a third of the writes fail
    assert sum(work.retry_delay(attempt, rng=lambda: 1.0) for attempt in range(7)) < 30
    # and the retries still reach across the 24-hour window without hammering the CRM
    waited, attempts = 0.0, 0
    while waited < work.RETRY_WINDOW.total_seconds():
        waited += work.retry_delay(attempts, rng=lambda: 0.5)
        attempts += 1
    assert 50 <= attempts <= 120


def test_one_policy_for_every_kind_with_a_longer_window_for_recordings():
    assert {work.window(kind) for kind in WorkKind if kind != WorkKind.FETCH_RECORDING} == {timedelta(hours=24)}
    assert work.window(WorkKind.FETCH_RECORDING) == timedelta(hours=48)
    later = NOW + timedelta(hours=30)
    assert work.next_attempt(WorkKind.DELIVER_CALL, 3, NOW, later, retryable=True) is None
    assert work.next_attempt(WorkKind.FETCH_RECORDING, 3, NOW, later, retryable=True) > later
    assert work.next_attempt(WorkKind.FETCH_RECORDING, 0, NOW, NOW, retryable=False) is None


def test_items_are_made_once_retried_under_the_policy_then_given_up(ledger):
    delivery = WorkKey(WorkKind.DELIVER_CALL, "call:1", "local")
    ledger.ensure([delivery, delivery], NOW)
    ledger.ensure([delivery], NOW + timedelta(hours=1))  # a second ensure changes nothing
    item = ledger.get(delivery)
    assert (item.status, item.attempts, item.next_attempt_at, item.created_at) == ("pending", 0, NOW, NOW)
    at = ledger.fail_attempt(delivery, "CRM answered 503", NOW, retryable=True)
    assert NOW + timedelta(seconds=1) <= at <= NOW + timedelta(seconds=2)
    item = ledger.get(delivery)
    assert (item.status, item.attempts, item.last_error, item.next_attempt_at) == ("pending", 1, "CRM answered 503", at)
    assert ledger.fail_attempt(delivery, "still 503", NOW + timedelta(hours=25), retryable=True) is None
    item = ledger.get(delivery)
    assert (item.status, item.attempts, item.finished_at) == ("failed", 2, NOW + timedelta(hours=25))
    assert ledger.due(NOW + timedelta(days=3)) == []


def test_due_lists_every_kind_in_one_query_and_can_be_narrowed(ledger):
    keys = [
        WorkKey(WorkKind.DELIVER_CALL, "call:1", "local"),
        WorkKey(WorkKind.DELIVER_CALL, "call:1", "amocrm"),
        WorkKey(WorkKind.SEND_EVENT, "evt_1"),
        WorkKey(WorkKind.FETCH_RECORDING, "call:1"),
        WorkKey(WorkKind.HANDLE_EVENT, "webhook:msg_1"),
    ]
    ledger.ensure(keys, NOW)
    assert ledger.due(NOW - timedelta(seconds=1)) == []
    assert {item.key for item in ledger.due(NOW)} == set(keys)
    narrowed = ledger.due(NOW, kinds={WorkKind.DELIVER_CALL: "local", WorkKind.HANDLE_EVENT: None})
    assert {item.key for item in narrowed} == {keys[0], keys[4]}
    assert ledger.finish(keys[0], NOW, "ok") and not ledger.finish(keys[0], NOW)  # done once
    assert (ledger.get(keys[0]).status, ledger.get(keys[0]).result) == ("done", "ok")
    assert keys[0] not in {item.key for item in ledger.due(NOW)}


def test_a_failed_item_can_be_retried_with_a_fresh_window(ledger):
    fetch = WorkKey(WorkKind.FETCH_RECORDING, "call:2")
    ledger.ensure([fetch], NOW)
    assert ledger.fail_attempt(fetch, "not audio", NOW, retryable=False) is None
    later = NOW + timedelta(days=5)
    ledger.retry([fetch], later)
    item = ledger.get(fetch)
    assert (item.status, item.next_attempt_at, item.created_at, item.finished_at) == ("pending", later, later, None)
