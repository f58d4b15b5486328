"""Every call the operator reports reaches the CRM exactly once, even when the operator, the CRM,
Redis and a worker fail part-way: 2,000 calls over three weeks on three lines."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from integration.ledger.db import make_engine
from integration.ledger.deliveries import DeliveryLedger
from integration.runtime import Runtime
from integration.services.calls import reconcile_day
from integration.settings import load_settings
from tests.conftest import LINK_KEY, SECRET, kill_worker, serve, start_worker
from tests.receiver import Receiver

CALLS = 2000


def wait_until(check, timeout: float, what) -> None:
    """Poll ``check``; ``what`` says what did not happen (a callable: the state at the time)."""
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, what() if callable(what) else what
        time.sleep(0.3)


def stop(workers) -> None:
    """SIGTERM the workers still running and wait for them to finish their jobs."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(30)


@pytest.mark.slow
def test_chaos_then_reconcile_leaves_every_call_delivered_exactly_once(service_env, control, redis_conn):
    control.post("calls/generate", {"count": CALLS, "days": 21, "seed": 77})
    receiver = Receiver(SECRET, fail_rate=0.15, fail_after_store_rate=0.15, seed=5)
    with serve(receiver.app) as url:
        env = service_env | {
            "CRM_BACKEND": "webhook",
            "CRM_WEBHOOK_URL": url + "/hook",
            "CRM_WEBHOOK_SECRET": SECRET,
            "SYNC_INTERVAL": "1",
            "SYNC_FIRST_WINDOW": str(22 * 86400),
            "OPERATOR_MAX_RETRIES": "1",
        }
        control.post("faults", {"method": "request/getcalllist", "kind": "500", "count": None, "rate": 0.3})
        engine = make_engine(env["DATABASE_URL"])
        deliveries = DeliveryLedger(engine)
        workers = [start_worker(env), start_worker(env)]
        try:
            wait_until(lambda: deliveries.counts("webhook").get("delivered", 0) > 300, 90, "no deliveries under faults")
            kill_worker(workers[0])  # a worker dies mid-run
            wait_until(lambda: deliveries.counts("webhook").get("delivered", 0) > 800, 90, "stalled after the kill")
            redis_conn.flushdb()  # Redis loses its queues, locks, tokens and keys mid-run
            time.sleep(3)
        finally:
            stop(workers)
        # The faults stop; a reconcile of every day leaves the CRM matching the operator.
        requests.delete(control.url + "/_sandbox/faults", timeout=5)
        receiver.stop_failing()
        runtime = Runtime(load_settings(env, dotenv="/x"))
        today = datetime.now(UTC).astimezone(runtime.settings.tz).date()
        for offset in range(22, -1, -1):
            report = reconcile_day(runtime, today - timedelta(days=offset))
            assert report.counts.get("pending", 0) == report.counts.get("failed", 0) == 0, report
        runtime.engine.dispose()
        engine.dispose()
    canonical = control.get("calls")
    completed, ids = receiver.of_type("call.completed"), receiver.ids_of("call.completed")
    assert len(completed) == len(canonical) == CALLS
    assert len(ids) == CALLS and all(len(one) == 1 for one in ids.values())
    assert sum(receiver.attempts.values()) > CALLS
    keys = {(e["data"]["line"], e["data"]["started_at"][:19]) for e in completed.values()}
    assert keys == {(c["num"], c["started_at"][:19]) for c in canonical}


def through_chaos(env: dict[str, str], crm: str, stand_in) -> Runtime:
    """Two workers deliver to ``stand_in`` while it fails; one is SIGKILLed mid-run. Then the
    faults stop, a reconcile delivers what is left, and the recordings and their events follow.
    Returns the runtime (its engine disposed) for the checks."""
    from integration import delivery
    from integration.services.recordings import announce_recording
    from integration.services.recordings import fetch_recording as fetch_recording_now

    runtime = Runtime(load_settings(env, dotenv="/x"))
    deliveries = runtime.delivery_ledger
    workers = [start_worker(env), start_worker(env)]
    try:
        wait_until(lambda: deliveries.counts(crm).get("delivered", 0) > 60, 90, "no deliveries")
        kill_worker(workers[0])  # a worker dies mid-run
        wait_until(lambda: deliveries.counts(crm).get("delivered", 0) > 150, 90, "stalled after the kill")
    finally:
        stop(workers)
    stand_in.stop_failing()
    today = datetime.now(UTC).astimezone(runtime.settings.tz).date()
    for day in (today - timedelta(days=1), today):
        report = reconcile_day(runtime, day)
        assert report.counts.get("pending", 0) == report.counts.get("failed", 0) == 0, report
    later = datetime.now(UTC) + timedelta(days=3)
    runtime.recording_ledger.ensure(runtime.recording_ledger.missing(), datetime.now(UTC))
    for recording in runtime.recording_ledger.due(later):  # a killed worker's download
        fetch_recording_now(runtime, recording.call_id)
    for recording in runtime.recording_ledger.unannounced():
        announce_recording(runtime, recording.call_id)
    for event in runtime.outbox.due(datetime.now(UTC) + timedelta(days=1)):
        assert delivery.send_event(
            event.id, outbox=runtime.outbox, crm=runtime.crm, now=datetime.now(UTC), deliveries=deliveries
        ) in ("delivered", "included")
    runtime.engine.dispose()
    return runtime


def chaos_env(service_env: dict[str, str], **extra: str) -> dict[str, str]:
    return service_env | {
        "RECORDING_LINK_KEYS": LINK_KEY,
        "PUBLIC_URL": "https://bridge.example",
        "SYNC_INTERVAL": "1",
        **extra,
    }


@pytest.mark.slow
def test_bitrix24_gets_every_call_once_through_faults_and_a_killed_worker(service_env, control, redis_conn):
    """Register, finish and attachRecord through a portal that throttles 5 % of requests, fails
    15 % and loses the answer of another 15 %, with a worker killed mid-run; once the faults stop,
    a reconcile leaves one Bitrix24 call per operator call, finished once, with its recording."""
    from tests.bitrix_stand_in import BitrixStandIn

    control.post("calls/generate", {"count": 200, "days": 0.5, "seed": 41, "recording_size": 2000})
    portal = BitrixStandIn(limit_rate=0.05, fail_rate=0.15, fail_after_rate=0.15, seed=9)
    with serve(portal.app) as url:
        env = chaos_env(
            service_env, CRM_BACKEND="bitrix24", BITRIX24_WEBHOOK_URL=f"{url}/rest/1/hook", BITRIX24_RATE="500"
        )
        through_chaos(env, "bitrix24", portal)
    recorded = [c for c in control.get("calls") if c["record_file_id"]]
    by_call: dict[str, list[str]] = {}
    for call_id, params in portal.registered.items():
        by_call.setdefault(params["EXTERNAL_CALL_ID"], []).append(call_id)
    assert len(by_call) == 200 and all(len(ids) == 1 for ids in by_call.values())  # registered once
    assert sorted(portal.finished.values()) == [1] * 200  # finished once
    attached = {portal.registered[call_id]["EXTERNAL_CALL_ID"] for call_id in portal.records}
    assert attached == {f"rec:{c['record_file_id']}" for c in recorded}  # every recording, attached
    assert len(portal.calls) > 200 * 3  # the faults really happened


@pytest.mark.slow
def test_amocrm_gets_every_call_once_through_faults_and_a_killed_worker(service_env, control, redis_conn):
    """Calls, incoming leads and recordings through an account that throttles 5 % of requests,
    fails 15 % and loses the answer of another 15 %, with a worker killed mid-run; once the faults
    stop, a reconcile leaves one call note (or one incoming lead) per operator call, with its
    recording."""
    from tests.amocrm_stand_in import AmoStandIn

    control.post("calls/generate", {"count": 200, "days": 0.5, "seed": 43, "recording_size": 2000})
    account = AmoStandIn(limit_rate=0.05, fail_rate=0.15, fail_after_rate=0.15, seed=11)
    known = sorted({c["ext_e164"] for c in control.get("calls") if c["ext_e164"]})[::2]
    for n, number in enumerate(known):  # half the numbers have a contact; the others make leads
        account.add_contact(f"Customer {n}", number)
    with serve(account.app) as url:
        env = chaos_env(
            service_env,
            CRM_BACKEND="amocrm",
            AMOCRM_BASE_URL=url,
            AMOCRM_LONG_LIVED_TOKEN="long-lived",
            AMOCRM_RATE="500",
            MATCH_UNKNOWN="create_lead",
        )
        runtime = through_chaos(env, "amocrm", account)
    ids = [c.id for c in runtime.call_ledger.between(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))]
    logged = {call_id: runtime.delivery_ledger.get(call_id, "amocrm") for call_id in ids}
    stored = set(runtime.recording_ledger.stored_for(ids))
    runtime.engine.dispose()
    assert len(logged) == 200 and {d.status for d in logged.values()} == {"delivered"}
    leads = {u["source_uid"] for u in account.unsorted}
    assert len(leads) == len(account.unsorted)  # no incoming lead twice
    for call_id, d in logged.items():
        notes = account.call_notes(call_id)
        if d.match == "lead":
            assert call_id in leads and len(notes) == 1, (call_id, notes)
        elif d.crm_id:
            assert len(notes) == 1, (call_id, d, notes)  # one call note, never two
        else:
            assert not notes and d.match in ("internal", "unparsed")
        if call_id in stored and notes:
            assert "/recordings/" in notes[0]["params"].get("link", ""), call_id  # every recording, added
    assert {d.match for d in logged.values()} >= {"contact", "lead"}
    assert len(account.requests) > 200 * 2  # the faults really happened
    assert ("GET", "contacts/notes") in account.requests  # and retries looked before sending again
