"""Rules in INTEGRATION_CONFIG, business hours, and CRM events (``POST /webhooks/events``) → actions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration.errors import ConfigError
from integration.rules import BusinessHours
from integration.settings import load_settings
from integration.signatures import sign_headers
from tests.conftest import SECRET, SECRET_KEYS, app_for, config_file

MSK = ZoneInfo("Europe/Moscow")
RULES = """
[users]
"7" = "4990000000"

[business_hours]
days = "mon-fri"
start = "09:00"
end = "19:00"

[[rules]]
name = "call back lost deals"
event = "deal.closed"
when = { status = "lost" }
action = "callback"
delay = "2h"

[[rules]]
name = "attach calls to won deals"
event = "deal.closed"
when = { status = "won" }
action = "attach_calls"
days = 30
"""


def settings_with(tmp_path, toml: str, env: dict | None = None):
    base = {
        "OPERATOR_AUTHORIZATION_TOKEN": "x" * 20,
        "OPERATOR_NUMBERS": "4990000000,4950000000",
        "SECRET_KEYS": SECRET_KEYS,
    }
    return load_settings(base | (env or {}) | config_file(tmp_path, toml), dotenv="/nonexistent")


def test_rules_load_from_the_config(tmp_path):
    settings = settings_with(tmp_path, RULES)
    lost, won = settings.rules
    assert (lost.name, lost.action, lost.delay, lost.when) == (
        "call back lost deals",
        "callback",
        7200,
        {"status": "lost"},
    )
    assert (won.action, won.days) == ("attach_calls", 30)
    assert settings.business_hours == BusinessHours(frozenset({1, 2, 3, 4, 5}), time(9), time(19))
    assert lost.matches("deal.closed", {"status": "lost"}) and not lost.matches("deal.closed", {"status": "won"})
    assert not lost.matches("deal.created", {"status": "lost"})


def test_every_rule_problem_is_reported_with_where_it_is(tmp_path):
    bad = """
[business_hours]
days = "mon-fry"
start = "9am"
end = "08:00"

[[rules]]
event = "Deal Closed"
action = "email"
delay = "soon"
days = 0
colour = "red"

[[rules]]
name = "a"
event = "deal.closed"
action = "callback"

[[rules]]
name = "a"
event = "deal.closed"
action = "callback"
"""
    with pytest.raises(ConfigError) as caught:
        settings_with(tmp_path, bad)
    text = "\n".join(caught.value.problems)
    for expected in (
        "business_hours.days must look like",
        "business_hours.start must be a time",
        "rules #1: event must be an event type",
        "rules #1: action must be one of callback, attach_calls, set_redirect_active, got 'email'",
        "rules #1: delay must be seconds",
        "rules #1: days must be a whole number from 1 to 365",
        "rules #1: unknown keys: colour",
        "two rules are named 'a'",
    ):
        assert expected in text, expected


WEEK = datetime(2026, 11, 23, tzinfo=MSK)  # a Monday


def test_business_hours_move_a_callback_to_the_next_opening():
    hours = BusinessHours()
    assert hours.next_open(WEEK.replace(hour=10), MSK) == WEEK.replace(hour=10)
    assert hours.next_open(WEEK.replace(hour=3), MSK) == WEEK.replace(hour=9)  # never at 3 a.m.
    assert hours.next_open(WEEK.replace(hour=19), MSK) == WEEK.replace(day=24, hour=9)
    friday_night = WEEK.replace(day=27, hour=22)
    assert hours.next_open(friday_night, MSK) == WEEK.replace(day=30, hour=9)  # after the weekend
    utc = friday_night.astimezone(UTC)
    assert hours.next_open(utc, MSK).tzinfo is UTC


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)), st.integers(0, 23))
def test_the_next_opening_is_always_inside_business_hours(moment, start_hour):
    hours = BusinessHours(frozenset({2, 4, 6}), time(start_hour), time(0))
    found = hours.next_open(moment.replace(tzinfo=MSK), MSK)
    assert found >= moment.replace(tzinfo=MSK)
    assert found.isoweekday() in {2, 4, 6} and found.time() >= time(start_hour)
    assert hours.is_open(found, MSK)


# --- POST /webhooks/events → rules, end to end ----------------------------------------------------


@pytest.fixture
def rules_env(service_env, tmp_path):
    return service_env | config_file(tmp_path, RULES)


@pytest.fixture
def events_app(rules_env, redis_conn):
    with app_for(rules_env) as app:
        yield app


def post_event(http, body: dict, msg_id: str = "msg_deal_1"):
    raw = json.dumps(body).encode()
    headers = sign_headers(SECRET, msg_id, raw) | {"Content-Type": "application/json"}
    return http.post("/webhooks/events", data=raw, headers=headers)


LOST = {
    "type": "deal.closed",
    "data": {"deal_id": "42", "status": "lost", "phones": ["8 (916) 123-45-67"], "responsible_user": "7"},
}


def test_events_are_accepted_once_and_validated(events_app, redis_conn):
    http = events_app.test_client()
    first, again = post_event(http, LOST), post_event(http, LOST)
    assert first.status_code == again.status_code == 202 and first.json == again.json == {
        "id": "msg_deal_1",
        "status": "accepted",
    }
    assert redis_conn.llen("rq:queue:default") == 1  # one handle_event job
    bad = post_event(http, {"type": "deal.closed", "data": {"deal_id": "1", "status": "maybe"}}, "msg_bad")
    assert bad.status_code == 422 and "status" in bad.json["errors"]["data"]
    assert post_event(http, {"type": "Deal!", "data": {}}, "msg_bad2").json["errors"]["type"]
    unsigned = http.post("/webhooks/events", json=LOST)
    assert unsigned.status_code == 401 and unsigned.mimetype == "application/problem+json"


def test_a_lost_deal_schedules_a_callback_inside_business_hours(
    events_app, rules_env, redis_conn, monkeypatch, control
):
    import integration.services.rules as service
    from integration.ledger.work import WorkKey, WorkKind

    rt = events_app.extensions["vats"]
    friday_evening = datetime(2026, 11, 27, 18, 30, tzinfo=MSK)  # + 2 h = 20:30: closed until Monday 09:00
    monkeypatch.setattr(service, "utc_now", lambda: friday_evening.astimezone(UTC))
    post_event(events_app.test_client(), LOST)
    outcome = service.handle_event(rt, "webhook:msg_deal_1")
    assert "callback 4990000000 → +79161234567 at 2026-11-30T06:00:00+00:00" in outcome  # 09:00 MSK
    assert service.handle_event(rt, "webhook:msg_deal_1") == outcome  # handled once
    item = rt.work_ledger.get(WorkKey(WorkKind.RULE_CALLBACK, "webhook:msg_deal_1", "call back lost deals"))
    assert item.status == "pending" and item.next_attempt_at == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    # Run early by mistake (Sunday 03:00): the callback moves, nothing rings.
    monkeypatch.setattr(service, "utc_now", lambda: datetime(2026, 11, 29, 3, 0, tzinfo=MSK).astimezone(UTC))
    assert service.rule_callback(rt, "webhook:msg_deal_1", "call back lost deals").startswith(
        "moved to 2026-11-30T06:00"
    )
    moved = rt.work_ledger.get(WorkKey(WorkKind.RULE_CALLBACK, "webhook:msg_deal_1", "call back lost deals"))
    assert moved.created_at == moved.next_attempt_at == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # a full window there
    # At Monday 09:00 it places the callback, once, through the click-to-call path.
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=MSK).astimezone(UTC)
    monkeypatch.setattr(service, "utc_now", lambda: monday)
    monkeypatch.setattr(rt.intake, "clock", lambda: monday)
    placed = service.rule_callback(rt, "webhook:msg_deal_1", "call back lost deals")
    assert placed.startswith("queued: ")
    assert service.rule_callback(rt, "webhook:msg_deal_1", "call back lost deals") == placed  # placed once
    record = rt.intake.accepted(placed.split(": ")[1])
    assert (record.phone_from, record.phone_to, record.source, record.crm_user) == (
        "4990000000",
        "+79161234567",
        "rule",
        "7",
    )
    assert record.crm_context == {"event": "webhook:msg_deal_1", "rule": "call back lost deals", "deal": "42"}


def test_a_scheduled_callback_survives_an_emptied_redis_and_a_real_worker_places_it(
    events_app, redis_conn, monkeypatch
):
    """The callback's time is kept in the ledger (a work item), not in Redis, which keeps nothing
    on disk: the sweeper queues it when due, and an RQ worker runs it with its runtime."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    import integration.services.rules as service
    import integration.services.sweeper as sweeper
    from integration.jobs import RuntimeJob
    from integration.queues import DEFAULT, make_queue
    from integration.runtimes import AccountRuntimes

    rt = events_app.extensions["vats"]
    friday_evening = datetime(2026, 11, 27, 18, 30, tzinfo=MSK)
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=MSK).astimezone(UTC)
    monkeypatch.setattr(service, "utc_now", lambda: friday_evening.astimezone(UTC))
    post_event(events_app.test_client(), LOST)
    service.handle_event(rt, "webhook:msg_deal_1")
    redis_conn.flushdb()  # a Redis restart: every queued and scheduled job is gone
    monkeypatch.setattr(sweeper, "utc_now", lambda: monday - timedelta(seconds=1))
    assert sweeper.sweep(rt) == 0  # not due yet
    for module in (sweeper, service):
        monkeypatch.setattr(module, "utc_now", lambda: monday)
    monkeypatch.setattr(rt.intake, "clock", lambda: monday)
    assert sweeper.sweep(rt) == 1
    queue = make_queue(DEFAULT, redis_conn)
    plain = queue.enqueue_call("integration.phone.ascii_digits", args=("٤٢",))  # not an entry point
    job_class = RuntimeJob.bound_to(AccountRuntimes(rt))
    SimpleWorker([queue], connection=redis_conn, serializer=JSONSerializer, job_class=job_class).work(burst=True)
    item = rt.work_ledger.get(service.callback_key("webhook:msg_deal_1", "call back lost deals"))
    assert item.status == "done" and item.result.startswith("queued: ")
    record = rt.intake.accepted(item.result.split(": ")[1])
    assert (record.phone_from, record.phone_to, record.source) == ("4990000000", "+79161234567", "rule")
    assert job_class.fetch(plain.id, connection=redis_conn, serializer=JSONSerializer).return_value() == "42"
    assert sweeper.sweep(rt) == 0  # done: never placed twice


def test_a_won_deal_gets_its_contacts_calls_attached(events_app, redis_conn, monkeypatch, control):
    import integration.services.calls as calls
    import integration.services.rules as service

    rt = events_app.extensions["vats"]
    control.post("calls/generate", {"count": 40, "days": 10, "seed": 12})
    calls.run_sync(rt, datetime.now(UTC) - timedelta(days=11))
    known = next(c for c in control.get("calls") if c["ext_e164"] and c["ext_e164"].startswith("+79"))
    expected = [c for c in control.get("calls") if c["ext_e164"] == known["ext_e164"]]
    won = {
        "type": "deal.closed",
        "data": {"deal_id": "77", "status": "won", "phones": [known["ext_num"]], "responsible_user": "7"},
    }
    post_event(events_app.test_client(), won, "msg_won")
    outcome = service.handle_event(rt, "webhook:msg_won")
    attached = rt.crm.deal_call_ids("77")
    assert f"{len(attached)} call(s) attached" in outcome and attached
    assert all(rt.call_ledger.get(call_id).ext_e164 == known["ext_e164"] for call_id in attached)
    assert len(attached) == len(expected)


def test_an_event_no_rule_matches_is_recorded_as_such(events_app, monkeypatch):
    import integration.services.rules as service

    rt = events_app.extensions["vats"]
    post_event(events_app.test_client(), {"type": "contact.updated", "data": {"id": "5"}}, "msg_other")
    assert service.handle_event(rt, "webhook:msg_other") == "no rule matched"
    assert rt.event_ledger.get("webhook:msg_other").handled_at is not None
    assert rt.event_ledger.unhandled(datetime.now(UTC) + timedelta(minutes=5)) == []


def test_attach_to_a_webhook_crm_is_retried_until_taken(rules_env, redis_conn, monkeypatch):
    import responses

    import integration.services.rules as service
    from integration.crm.webhook.adapter import event_id
    from integration.runtime import Runtime

    env = rules_env | {
        "CRM_BACKEND": "webhook",
        "CRM_WEBHOOK_URL": "https://crm.test/hook",
        "CRM_WEBHOOK_SECRET": SECRET,
    }
    rt = Runtime(load_settings(env, dotenv="/nonexistent"))
    won = {"deal_id": "9", "status": "won", "phones": ["+79161234567"]}
    rt.event_ledger.add("webhook:msg_w", "deal.closed", won, datetime.now(UTC))
    with responses.RequestsMock() as mock:
        mock.post("https://crm.test/hook", status=503)
        with pytest.raises(Exception, match="HTTP 503"):
            service.handle_event(rt, "webhook:msg_w")
        assert rt.event_ledger.get("webhook:msg_w").handled_at is None  # the sweeper runs it again
        mock.replace("POST", "https://crm.test/hook", json={"ok": True})
        assert "0 call(s) attached" in service.handle_event(rt, "webhook:msg_w")
        ids = {call.request.headers["webhook-id"] for call in mock.calls}
        sent = json.loads(mock.calls[-1].request.body)
    expected_id = event_id("deal.calls_attached", "webhook:msg_w:attach calls to won deals")
    assert ids == {expected_id}  # the same webhook-id on every attempt
    assert sent["type"] == "deal.calls_attached" and sent["data"]["deal_id"] == "9"
    rt.engine.dispose()
