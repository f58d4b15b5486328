"""Calls → CRM activities: matching policies, exactly-once writes, retries (local CRM)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from integration import delivery
from integration.crm.base import CrmError
from integration.crm.local.adapter import LocalCrm
from integration.ledger.calls import CallLedger
from integration.ledger.db import make_engine
from integration.ledger.deliveries import DeliveryLedger
from integration.ledger.tables import activities, contacts
from integration.ledger.work import WorkKey, WorkKind
from integration.models import CallbackRequest, CallRow, Direction, Match, MatchKind
from integration.phone import parse_phone
from integration.sync import call_from_row
from tests.conftest import start_worker

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
OWN = ("4990000000", "4950000000")


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def stored_call(engine, ext: str = "89161234567", **kw):
    row = CallRow(
        **(
            {"started_at": NOW, "line": "4990000000", "direction": Direction.INBOUND, "ext_num": ext, "duration": 42}
            | kw
        )
    )
    call = call_from_row(row, "RU")
    CallLedger(engine).insert_new([call], NOW)
    return call


def contact(crm: LocalCrm, number: str, name: str, at: datetime):
    crm.clock = lambda: at
    return crm.create_contact(parse_phone(number), name)


def test_every_field_of_an_activity_comes_from_its_own_source():
    call = call_from_row(CallRow(NOW, "4990000000", Direction.OUTBOUND, "89161234567", 42), "RU")
    match = Match(MatchKind.LEAD, ("7",), ("7", "8"))
    request = CallbackRequest(
        "cb1", "webhook", "4990000000", "+79161234567", "89161234567", NOW, crm_user="u5", crm_context={"deal": 3}
    )
    activity = delivery.activity_for(call, match, {"4990000000": "u1"}, request)
    assert (activity.call_id, activity.direction, activity.status) == (call.id, Direction.OUTBOUND, "answered")
    assert (activity.started_at, activity.duration, activity.line) == (NOW, 42, "4990000000")
    assert (activity.ext_e164, activity.ext_raw, activity.contact_ids) == ("+79161234567", "89161234567", ("7",))
    assert (activity.responsible_user, activity.recording_url) == ("u5", None)
    assert (activity.callback_request_id, activity.callback_crm, activity.create_lead) == ("cb1", {"deal": 3}, True)
    plain = delivery.activity_for(call, Match(MatchKind.NONE), {"4990000000": "u1"})
    assert (plain.responsible_user, plain.callback_request_id, plain.callback_crm, plain.create_lead) == (
        "u1",
        None,
        None,
        False,
    )


@pytest.mark.parametrize(
    ("policy", "kind", "chosen"),
    [
        ("most_recent", MatchKind.MULTIPLE, ["new"]),
        ("all", MatchKind.MULTIPLE, ["old", "new"]),
        ("none", MatchKind.NONE, []),
    ],
)
def test_several_contacts_follow_the_policy(engine, policy, kind, chosen):
    crm = LocalCrm(engine)
    people = {
        "old": contact(crm, "+7 916 123-45-67", "old", NOW - timedelta(days=9)),
        "new": contact(crm, "9161234567", "new", NOW),
    }
    match = delivery.match_call(stored_call(engine), crm, delivery.Policies(multiple=policy), OWN, "RU")
    assert match.kind is kind
    assert set(match.contact_ids) == {people[n].id for n in chosen}
    assert set(match.candidates) == {p.id for p in people.values()}


def test_one_contact_in_another_format_is_matched_by_the_last_ten_digits(engine):
    crm = LocalCrm(engine)
    anna = contact(crm, "8 (916) 123-45-67", "Anna", NOW)
    match = delivery.match_call(stored_call(engine, "+79161234567"), crm, delivery.Policies(), OWN, "RU")
    assert (match.kind, match.contact_ids) == (MatchKind.CONTACT, (anna.id,))


def test_unknown_numbers_are_skipped_or_get_one_new_contact(engine):
    crm = LocalCrm(engine)
    call = stored_call(engine)
    assert delivery.match_call(call, crm, delivery.Policies(unknown="skip"), OWN, "RU").kind is MatchKind.NONE
    created = delivery.match_call(call, crm, delivery.Policies(unknown="create_contact"), OWN, "RU")
    assert created.kind is MatchKind.CREATED
    again = delivery.match_call(call, crm, delivery.Policies(unknown="create_contact"), OWN, "RU")
    assert again.kind is MatchKind.CONTACT and again.contact_ids == created.contact_ids


@pytest.mark.parametrize(
    ("ext", "kind"), [("101", MatchKind.INTERNAL), ("84990000000", MatchKind.OWN), ("hidden", MatchKind.UNPARSED)]
)
def test_internal_own_and_unparsed_numbers_are_never_matched(engine, ext, kind):
    crm = LocalCrm(engine)
    contact(crm, "+74990000000", "our own office", NOW)
    assert (
        delivery.match_call(stored_call(engine, ext), crm, delivery.Policies(unknown="create_contact"), OWN, "RU").kind
        is kind
    )


def deliver(engine, call, crm, now=NOW):
    return delivery.deliver_call(
        call.id,
        calls=CallLedger(engine),
        deliveries=DeliveryLedger(engine),
        crm=crm,
        policies=delivery.Policies(),
        own_numbers=OWN,
        users_by_line={"4990000000": "7"},
        region="RU",
        now=now,
    )


def test_a_call_is_written_once_with_its_fields(engine):
    crm = LocalCrm(engine)
    anna = contact(crm, "89161234567", "Anna", NOW)
    call = stored_call(engine)
    assert deliver(engine, call, crm) == "delivered"
    assert deliver(engine, call, crm) == "delivered"
    with engine.connect() as connection:
        [row] = connection.execute(select(activities)).all()
    assert (row.call_id, json.loads(row.contact_ids), row.direction, row.status) == (
        call.id,
        [anna.id],
        "inbound",
        "answered",
    )
    assert (row.started_at, row.duration, row.responsible_user, row.ext_e164) == (NOW, 42, "7", "+79161234567")
    stored = DeliveryLedger(engine).get(call.id, "local")
    assert (stored.status, stored.crm_id, stored.match, stored.attempts) == ("delivered", str(row.id), "contact", 1)


class FlakyCrm(LocalCrm):
    def __init__(self, engine, failures: int, retryable: bool = True):
        super().__init__(engine)
        self.failures, self.retryable = failures, retryable

    def write_activity(self, activity):
        if self.failures:
            self.failures -= 1
            raise CrmError("CRM answered 503", retryable=self.retryable)
        return super().write_activity(activity)


def test_failures_are_retried_with_backoff_then_given_up_after_a_day(engine):
    call = stored_call(engine)
    crm = FlakyCrm(engine, failures=100)
    ledger = DeliveryLedger(engine)
    assert deliver(engine, call, crm) == "pending"
    first = ledger.get(call.id, "local")
    assert first.attempts == 1 and "503" in first.last_error
    assert NOW + timedelta(seconds=1) <= first.next_attempt_at <= NOW + timedelta(seconds=2)
    assert ledger.due("local", NOW) == [] and [d.call_id for d in ledger.due("local", NOW + timedelta(seconds=3))] == [
        call.id
    ]
    assert deliver(engine, call, crm, NOW + timedelta(hours=25)) == "failed"
    assert ledger.get(call.id, "local").status == "failed" and ledger.due("local", NOW + timedelta(days=2)) == []


def test_a_permanent_error_fails_at_once_and_a_recovered_crm_gets_the_call(engine):
    call, other = stored_call(engine), stored_call(engine, "89160000000")
    assert deliver(engine, call, FlakyCrm(engine, failures=1, retryable=False)) == "failed"
    crm = FlakyCrm(engine, failures=1)
    assert deliver(engine, other, crm, NOW) == "pending"
    assert deliver(engine, other, crm, NOW + timedelta(seconds=5)) == "delivered"


@pytest.mark.slow
def test_worker_syncs_and_writes_every_call_once(service_env, control, redis_conn):
    control.post("calls/generate", {"count": 200, "days": 0.8, "seed": 21})
    engine = make_engine(service_env["DATABASE_URL"])
    crm = LocalCrm(engine)
    known = [c for c in control.get("calls") if c["ext_e164"] and c["ext_e164"].startswith("+79")][:20]
    for call in known:
        contact(crm, call["ext_e164"], f"client {call['id']}", NOW)
    worker = start_worker(service_env | {"SYNC_INTERVAL": "1"})
    try:
        deadline = time.time() + 60
        while DeliveryLedger(engine).counts("local").get("delivered", 0) < 200:
            assert time.time() < deadline, DeliveryLedger(engine).counts("local")
            time.sleep(0.3)
    finally:
        worker.terminate()
        worker.wait(20)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(activities)).scalar_one() == 200
        matched = (
            connection.execute(select(activities.c.contact_ids).where(activities.c.contact_ids != "[]")).scalars().all()
        )
        assert connection.execute(select(func.count()).select_from(contacts)).scalar_one() == 20
    assert len(matched) >= len({c["ext_e164"] for c in known})
    engine.dispose()


def test_the_sweeper_finds_calls_without_a_delivery_and_due_retries(service_env, redis_conn):
    from integration import jobs
    from integration.runtime import Runtime
    from integration.services import sweeper
    from integration.settings import load_settings

    runtime = Runtime(load_settings(service_env, dotenv="/x"))
    try:
        orphan = stored_call(runtime.engine)  # as if the sync died before recording its delivery
        assert sweeper.sweep(runtime) == 1
        assert runtime.delivery_ledger.get(orphan.id, "local").status == "pending"
        assert redis_conn.llen("rq:queue:default") == 1
        assert sweeper.sweep(runtime) == 1 and redis_conn.llen("rq:queue:default") == 1  # one job per attempt
        assert jobs.deliver_call(runtime, orphan.id) == "delivered"
        assert sweeper.sweep(runtime) == 0
    finally:
        runtime.engine.dispose()


def test_one_sweeper_queues_every_kind_of_work_through_one_entry_point(service_env, redis_conn):
    from rq.job import Job

    from integration import jobs
    from integration.queues import WORK_JOB, work_job_id
    from integration.runtime import Runtime
    from integration.services import sweeper
    from integration.settings import load_settings

    runtime = Runtime(load_settings(service_env, dotenv="/x"))
    try:
        now = datetime.now(UTC)
        call = stored_call(runtime.engine)  # no delivery yet: the sweeper makes it
        runtime.recording_ledger.ensure([(call.id, "file-1")], now)
        runtime.event_ledger.add("webhook:msg_1", "contact.updated", {"id": "5"}, now)
        runtime.outbox.add("evt_1", "callback.finished", "r1", {}, now)  # the local CRM takes no events
        assert sweeper.sweep(runtime) == 3
        assert sweeper.sweep(runtime) == 3 and redis_conn.llen("rq:queue:default") == 3  # one job per attempt
        queued = {}
        for job_id in redis_conn.lrange("rq:queue:default", 0, -1):
            job = Job.fetch(job_id.decode(), connection=redis_conn, serializer=JSONSerializer)
            queued[job.id] = (job.func_name, tuple(job.args))
        items = [
            ("deliver_call", call.id, "local"),
            ("fetch_recording", call.id, ""),
            ("handle_event", "webhook:msg_1", ""),
        ]
        assert queued == {work_job_id(*item, 0): (WORK_JOB, item) for item in items}
        assert jobs.run_work_item(runtime, "handle_event", "webhook:msg_1", "") == "no rule matched"
        assert jobs.run_work_item(runtime, "deliver_call", call.id, "amocrm").startswith("skipped")  # another CRM's
        assert jobs.run_work_item(runtime, "deliver_call", call.id, "local") == "delivered"
        assert runtime.work_ledger.get(WorkKey(WorkKind.HANDLE_EVENT, "webhook:msg_1")).status == "done"
        assert jobs.deliver_call(runtime, call.id) == "delivered"  # a job queued under its own name before still runs
        # An unforeseen failure (not an IntegrationError) still counts the attempt: the sweeper's
        # next job gets a new id instead of waiting a day for the failed job to expire.
        other = stored_call(runtime.engine, ext="89161230000")
        runtime.delivery_ledger.ensure([other.id], "local", datetime.now(UTC))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("integration.services.deliveries.delivery.deliver_call", _broken_database)
            with pytest.raises(RuntimeError):
                jobs.run_work_item(runtime, "deliver_call", other.id, "local")
        item = runtime.work_ledger.get(WorkKey(WorkKind.DELIVER_CALL, other.id, "local"))
        assert item.status == "pending" and item.attempts == 1 and item.last_error == "RuntimeError"
    finally:
        runtime.engine.dispose()


def _broken_database(*args, **kwargs):
    raise RuntimeError("the database went away mid-write")
