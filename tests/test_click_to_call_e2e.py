"""Click-to-call end to end: signed webhooks over HTTP, real RQ worker processes, the sandbox.

The invariant under test: a click-to-call never rings twice.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests

from integration import create_app
from integration.callbacks import JOB
from integration.crm.local.adapter import LocalCrm
from integration.queues import CALLBACKS, make_queue
from integration.runtime import Runtime
from integration.services import calls, deliveries
from integration.settings import load_settings
from tests.conftest import API_TOKEN, kill_worker, run_worker, serve, start_worker
from tests.web.helpers import signed

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
ORDER = {"to": "+7 (916) 123-45-67", "from": "4990000000", "crm": {"deal": 17}}


def status(http, request_id: str) -> dict:
    return http.get(f"/api/callbacks/{request_id}", headers=AUTH).json


def submit(http, body: dict = ORDER, **kw) -> str:
    data, headers = signed(body, **kw)
    response = http.post("/webhooks/click-to-call", data=data, headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.json["id"]


def worker_burst(env: dict) -> None:
    result = run_worker(env)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def e2e_env(service_env, database_url):
    return service_env | {"DATABASE_URL": database_url}


def test_a_signed_webhook_rings_once_with_operator_formats(e2e_env, control, redis_conn):
    http = create_app(load_settings(e2e_env, dotenv="/x")).test_client()
    request_id = submit(http)
    worker_burst(e2e_env)
    calls = control.get("callbacks")
    assert [(c["PhoneTo"], c["PhoneFrom"]) for c in calls] == [("89161234567", "4990000000")]
    final = status(http, request_id)
    assert final["status"] == "placed" and final["request_hash"]
    assert final["placing_at"] and final["finished_at"] and final["crm"] == {"deal": 17}
    worker_burst(e2e_env)  # nothing left to do: still one call
    assert len(control.get("callbacks")) == 1


def test_200_concurrent_deliveries_of_one_webhook_ring_once(app, service_env, control, redis_conn):
    data, headers = signed(ORDER, msg_id="msg_storm")
    with serve(app) as url, ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(
            pool.map(
                lambda _: requests.post(url + "/webhooks/click-to-call", data=data, headers=headers, timeout=30),
                range(200),
            )
        )
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["id"] for a in answers}) == 1
    assert redis_conn.llen(f"rq:queue:{CALLBACKS}") == 1
    worker_burst(service_env)
    assert len(control.get("callbacks")) == 1


def test_a_double_click_rings_once(http, service_env, control):
    first = submit(http, msg_id="click-1")
    time.sleep(1)
    second = submit(http, msg_id="click-2")
    assert first == second
    worker_burst(service_env)
    assert len(control.get("callbacks")) == 1


def test_a_job_that_waited_past_the_ttl_expires_without_ringing(service_env, control, redis_conn):
    env = service_env | {"CALLBACK_TTL": "1"}
    http = create_app(load_settings(env, dotenv="/x")).test_client()
    request_id = submit(http)
    time.sleep(2.2)
    worker_burst(env)
    assert control.get("callbacks") == []
    final = status(http, request_id)
    assert final["status"] == "expired" and "CALLBACK_TTL" in final["reason"]


def test_worker_killed_while_placing_never_rings_again(http, service_env, control, redis_conn):
    # The operator rings the phone, then takes 10 s to answer: the worker dies meanwhile.
    control.post("faults", {"method": "callback/create", "kind": "timeout", "delay": 10})
    env = service_env | {"OPERATOR_READ_TIMEOUT": "30"}
    worker = start_worker(env)
    try:
        request_id = submit(http)
        deadline = time.time() + 30
        while not (status(http, request_id)["status"] == "placing" and control.get("callbacks")):
            assert time.time() < deadline, "the job never started placing"
            time.sleep(0.05)
    finally:
        kill_worker(worker)
    requests.delete(control.url + "/_sandbox/faults", timeout=5)
    # The job is delivered again (an RQ requeue, a retry by hand): it must not call the operator.
    make_queue(CALLBACKS, redis_conn).enqueue_call(JOB, kwargs={"request_id": request_id}, job_id="redelivery")
    worker_burst(service_env)
    assert len(control.get("callbacks")) == 1
    assert control.get("stats")["callback/create"] == 1
    final = status(http, request_id)
    assert final["status"] == "unknown" and "not repeated" in final["reason"]


def test_operator_read_timeout_is_unknown_and_not_retried(http, service_env, control):
    control.post("faults", {"method": "callback/create", "kind": "timeout", "delay": 3})
    request_id = submit(http)
    worker_burst(service_env | {"OPERATOR_READ_TIMEOUT": "1"})
    assert control.get("stats")["callback/create"] == 1
    final = status(http, request_id)
    assert final["status"] == "unknown" and "was not repeated" in final["reason"]


def test_revoked_authorization_fails_with_a_clear_reason(http, service_env, control):
    control.post("authorization-token/revoke")
    request_id = submit(http)
    worker_burst(service_env)
    final = status(http, request_id)
    assert final["status"] == "failed"
    assert "make a new one in the operator's web cabinet" in final["reason"]
    assert service_env["OPERATOR_AUTHORIZATION_TOKEN"] not in final["reason"]
    assert control.get("callbacks") == []


def test_operator_down_fails_after_safe_retries(http, service_env):
    request_id = submit(http)
    worker_burst(service_env | {"OPERATOR_API_URL": "http://127.0.0.1:9", "OPERATOR_MAX_RETRIES": "1"})
    final = status(http, request_id)
    assert final["status"] == "failed" and "no answer from the operator" in final["reason"]


def test_operator_rejection_fails_with_its_message(http, service_env, control):
    control.post("faults", {"method": "callback/create", "kind": "429", "count": None, "retry_after": 600})
    request_id = submit(http)
    worker_burst(service_env)
    final = status(http, request_id)
    assert final["status"] == "failed" and "throttling" in final["reason"]


def test_the_call_a_click_to_call_made_is_linked_to_it(http, service_env, control, redis_conn):
    request_id = submit(http)
    worker_burst(service_env)
    control.post("calls/generate", {"count": 5, "days": 0.05, "seed": 14})  # other calls around it
    runtime = Runtime(load_settings(service_env, dotenv="/x"))
    try:
        result = calls.run_sync(runtime)
        linked = [c for c in map(runtime.call_ledger.get, result.new_ids) if c.callback_request_id]
        assert [(c.callback_request_id, c.ext_e164, c.line) for c in linked] == [
            (request_id, "+79161234567", "4990000000")
        ]
        assert deliveries.deliver_call(runtime, linked[0].id) == "delivered"
        activity = LocalCrm(runtime.engine).activities_page(10, 0)
        assert [a["callback_request_id"] for a in activity] == [request_id]
        # The same request is never linked twice.
        around = linked[0].started_at
        assert runtime.callback_ledger.placed_between(around - timedelta(hours=1), around + timedelta(hours=1)) == []
    finally:
        runtime.engine.dispose()
