"""Periodic work: one run per interval, however many schedulers run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from integration import jobs
from integration.models import CallbackRequest, CallbackStatus
from integration.queues import PERIODIC
from integration.runtime import Runtime
from integration.runtimes import AccountRuntimes
from integration.scheduler import Periodic, Scheduler, enqueue_due
from integration.settings import load_settings

TASK = Periodic("probe", "integration.jobs.reap_stuck_callbacks", every=60)


def test_two_schedulers_at_once_enqueue_one_run_per_interval(redis_conn):
    now = 1_800_000_000.0
    results: list[list[str]] = []
    barrier = threading.Barrier(8)

    def tick() -> None:
        barrier.wait()
        results.append(enqueue_due(redis_conn, now, [TASK]))

    threads = [threading.Thread(target=tick) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(r) for r in results) == 1
    assert redis_conn.llen(f"rq:queue:{PERIODIC}") == 1
    assert enqueue_due(redis_conn, now + 30, [TASK]) in ([], [f"periodic-probe-{TASK.bucket(now + 30)}"])
    assert enqueue_due(redis_conn, now + 61, [TASK]) == [f"periodic-probe-{TASK.bucket(now + 61)}"]


def test_offsets_spread_tasks_inside_the_interval():
    assert 0 <= TASK.offset < 60
    assert TASK.bucket(TASK.offset + 59.9) == TASK.bucket(TASK.offset)


def test_reaper_job_marks_stuck_placing_unknown(service_env, redis_conn):
    runtime = Runtime(
        load_settings(
            service_env | {"OPERATOR_READ_TIMEOUT": "1", "OPERATOR_CONNECT_TIMEOUT": "1", "OPERATOR_MAX_RETRIES": "0"},
            dotenv="/x",
        )
    )
    try:
        ledger = runtime.callback_ledger
        old = datetime.now(UTC) - timedelta(minutes=5)
        ledger.add(
            CallbackRequest(
                id="stuck",
                source="webhook",
                phone_from="4990000000",
                phone_to="+79161234567",
                operator_phone_to="89161234567",
                created_at=old,
            )
        )
        ledger.transition("stuck", [CallbackStatus.QUEUED], CallbackStatus.PLACING, placing_at=old)
        runtimes = AccountRuntimes(runtime)
        assert jobs.reap_stuck_callbacks(runtimes) == 1
        assert ledger.get("stuck").status is CallbackStatus.UNKNOWN
        assert jobs.reap_stuck_callbacks(runtimes) == 0
    finally:
        runtime.engine.dispose()


def test_jitter_moves_each_run_within_its_interval_the_same_way_for_every_scheduler():
    task = Periodic("sync_calls", "integration.jobs.sync_calls", every=60, jitter=10)
    starts = []
    for bucket in range(1000, 1020):
        begin = bucket * 60 + task.offset
        start = next(begin + s for s in range(0, 60) if task.due(begin + s))
        assert task.due(start + 1) and task.bucket(start) == bucket
        starts.append(start - begin)
    assert all(0 <= s <= 10 for s in starts) and len(set(starts)) > 3  # spread, not one fixed phase


def test_one_scheduler_leads_and_another_takes_over_when_it_stops(redis_conn):
    now = 1_800_000_000.0
    first, second = Scheduler(redis_conn, [TASK]), Scheduler(redis_conn, [TASK])
    assert first.run_once(now) == [f"periodic-probe-{TASK.bucket(now)}"]
    assert second.run_once(now + 61) == []  # stands by: the first leads
    first.stop()  # hands over at once
    assert second.run_once(now + 61) == [f"periodic-probe-{TASK.bucket(now + 61)}"]
    assert first.run_once(now + 122) == []
