"""The ``webhook`` CRM backend: signed events, stable ids, retries, exactly once end to end."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
import requests
import responses

from integration.crm.base import CrmError
from integration.crm.schemas import CALL_COMPLETED_SCHEMA, CALLBACK_FINISHED_SCHEMA, RECORDING_READY_SCHEMA
from integration.crm.webhook.adapter import WebhookCrm, event_id
from integration.ledger.db import make_engine
from integration.ledger.deliveries import DeliveryLedger
from integration.ledger.outbox import Outbox
from integration.ledger.recordings import RecordingLedger
from integration.models import Activity, CallStatus, Direction
from integration.signatures import SignatureVerifier
from tests.conftest import LINK_KEY, SECRET, serve, start_worker
from tests.receiver import Receiver

URL = "https://crm.test/hook"
ACTIVITY = Activity(
    call_id="rec:bec3e80f",
    direction=Direction.INBOUND,
    status=CallStatus.ANSWERED,
    started_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    duration=42,
    line="4990000000",
    ext_e164="+79161234567",
    ext_raw="89161234567",
    contact_ids=("5",),
    responsible_user="7",
)


@responses.activate
def test_call_completed_is_signed_and_matches_its_json_schema():
    responses.post(URL, json={"ok": True})
    msg_id = WebhookCrm(URL, SECRET).write_activity(ACTIVITY)
    request = responses.calls[0].request
    assert (
        SignatureVerifier([SECRET]).verify(request.body, request.headers)
        == msg_id
        == event_id("call.completed", "rec:bec3e80f")
    )
    event = __import__("json").loads(request.body)
    jsonschema.validate(event, CALL_COMPLETED_SCHEMA)
    assert event["data"] == {
        "call_id": "rec:bec3e80f",
        "direction": "inbound",
        "status": "answered",
        "started_at": "2026-11-20T09:00:00+00:00",
        "duration": 42,
        "line": "4990000000",
        "external": {"e164": "+79161234567", "raw": "89161234567"},
        "responsible_user": "7",
        "contact_ids": ["5"],
        "recording_url": None,
        "callback": None,
    }


@pytest.mark.parametrize(
    ("answer", "retryable"),
    [
        ({"status": 503}, True),
        ({"status": 500}, True),
        ({"status": 429}, True),
        ({"status": 400}, False),
        ({"status": 404}, False),
        ({"body": requests.exceptions.ReadTimeout()}, True),
        ({"body": requests.exceptions.ConnectionError()}, True),
    ],
)
@responses.activate
def test_failures_say_whether_a_retry_may_help(answer, retryable):
    responses.post(URL, **answer)
    with pytest.raises(CrmError) as caught:
        WebhookCrm(URL, SECRET).write_activity(ACTIVITY)
    assert caught.value.retryable is retryable
    assert SECRET not in str(caught.value)


@responses.activate
def test_every_attempt_of_an_event_has_the_same_webhook_id():
    responses.post(URL, status=500)
    responses.post(URL, status=200)
    crm = WebhookCrm(URL, SECRET)
    with pytest.raises(CrmError):
        crm.write_activity(ACTIVITY)
    crm.write_activity(ACTIVITY)
    assert len({c.request.headers["webhook-id"] for c in responses.calls}) == 1


@pytest.mark.slow
def test_every_call_reaches_a_flaky_receiver_exactly_once(service_env, control, redis_conn):
    receiver = Receiver(SECRET, fail_rate=0.2, fail_after_store_rate=0.15, seed=3)
    control.post("calls/generate", {"count": 300, "days": 0.8, "seed": 31})
    with serve(receiver.app) as url:
        env = service_env | {
            "CRM_BACKEND": "webhook",
            "CRM_WEBHOOK_URL": url + "/hook",
            "CRM_WEBHOOK_SECRET": SECRET,
            "SYNC_INTERVAL": "1",
            "RECORDING_LINK_KEYS": LINK_KEY,
        }
        worker = start_worker(env)
        recorded = [c for c in control.get("calls") if c["record_file_id"]]
        try:
            engine = make_engine(env["DATABASE_URL"])
            recordings, outbox = RecordingLedger(engine), Outbox(engine)
            deadline = time.time() + 120
            while (
                DeliveryLedger(engine).counts("webhook").get("delivered", 0) < 300
                or recordings.counts().get("stored", 0) < len(recorded)
                or recordings.unannounced()
                or outbox.due(datetime.now(UTC) + timedelta(days=1))
            ):
                assert time.time() < deadline, (DeliveryLedger(engine).counts("webhook"), recordings.counts())
                time.sleep(0.5)
        finally:
            worker.terminate()
            worker.wait(20)
            engine.dispose()
    completed = receiver.of_type("call.completed")
    # This test places no click-to-call: one placed on its sandbox came from another run's job
    # (a shared Redis database), and became a call in the history beyond the 300 made here.
    assert control.get("callbacks") == [], "a worker ran another test run's click-to-calls"
    twice = {subject: ids for subject, ids in receiver.ids_by_subject.items() if len(ids) > 1}
    assert not twice, twice  # the same event always carries the same webhook-id
    assert len(completed) == 300
    assert sum(receiver.attempts.values()) > 300  # the faults really happened
    # Each recording reaches the CRM once: in call.completed when it was stored first, else as
    # recording.ready (one webhook-id), with the sandbox's bytes behind it.
    ready = {event["data"]["call_id"]: event["data"] for event in receiver.of_type("recording.ready").values()}
    links = {event["data"]["call_id"]: event["data"]["recording_url"] for event in completed.values()}
    assert recorded and len(ready) + sum(1 for url in links.values() if url) == len(recorded)
    for call in recorded:
        call_id = f"rec:{call['record_file_id']}"
        assert (links[call_id] is None) == (call_id in ready)
        if call_id in ready:
            assert ready[call_id]["sha256"] == call["recording_sha256"]
    for event in receiver.of_type("recording.ready").values():
        jsonschema.validate(event, RECORDING_READY_SCHEMA)
    canonical = {(c["num"], c["started_at"][:19]): c for c in control.get("calls")}
    for event in completed.values():
        data = event["data"]
        truth = canonical[(data["line"], data["started_at"][:19])]
        assert (data["duration"], data["external"]["raw"], data["external"]["e164"]) == (
            truth["duration"],
            truth["ext_num"],
            truth["ext_e164"],
        )


@responses.activate
def test_a_call_made_by_a_click_to_call_carries_its_crm_context():
    from dataclasses import replace

    responses.post(URL, json={})
    WebhookCrm(URL, SECRET).write_activity(replace(ACTIVITY, callback_request_id="c0ffee", callback_crm={"deal": 42}))
    event = __import__("json").loads(responses.calls[0].request.body)
    jsonschema.validate(event, CALL_COMPLETED_SCHEMA)
    assert event["data"]["callback"] == {"id": "c0ffee", "crm": {"deal": 42}}


def test_click_to_call_outcomes_reach_the_crm_as_callback_finished(service_env, control, redis_conn):
    from integration import create_app
    from integration.runtime import Runtime
    from integration.services import sweeper
    from integration.settings import load_settings
    from tests.conftest import run_worker
    from tests.web.helpers import signed

    receiver = Receiver(SECRET, fail_rate=1.0)  # the CRM is down at first
    with serve(receiver.app) as url:
        env = service_env | {"CRM_BACKEND": "webhook", "CRM_WEBHOOK_URL": url + "/hook", "CRM_WEBHOOK_SECRET": SECRET}
        http = create_app(load_settings(env, dotenv="/x")).test_client()
        data, headers = signed({"to": "89161234567", "from": "4990000000", "crm": {"deal": 9}})
        request_id = http.post("/webhooks/click-to-call", data=data, headers=headers).json["id"]
        assert run_worker(env).returncode == 0
        event = event_id("callback.finished", request_id)
        runtime = Runtime(load_settings(env, dotenv="/x"))
        assert runtime.outbox.get(event).status == "pending" and receiver.attempts[event] == 1
        receiver.stop_failing()
        time.sleep(2.1)  # the first retry is due within 2 s
        assert sweeper.sweep(runtime) == 1
        assert run_worker(env).returncode == 0
        runtime.engine.dispose()
    assert list(receiver.events) == [event]
    sent = receiver.events[event]
    jsonschema.validate(sent, CALLBACK_FINISHED_SCHEMA)
    assert (sent["data"]["id"], sent["data"]["status"], sent["data"]["crm"]) == (request_id, "placed", {"deal": 9})
    assert len(control.get("callbacks")) == 1
