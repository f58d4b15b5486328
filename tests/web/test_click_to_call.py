"""POST /webhooks/click-to-call: signatures, validation, idempotency (in-process app, real Redis)."""

from __future__ import annotations

import json

import pytest

from integration import create_app
from integration.settings import load_settings
from tests.conftest import OLD_SECRET
from tests.web.helpers import now, post_signed, queued_jobs, signed

PATH = "/webhooks/click-to-call"
GOOD = {"to": "8 (916) 123-45-67", "from": "4990000000"}


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status and body["title"]
    return body


def test_accepted_with_id_and_queued(http, redis_conn):
    response = post_signed(http, PATH, GOOD)
    assert response.status_code == 202
    assert response.json["status"] == "queued" and len(response.json["id"]) == 32
    assert queued_jobs(redis_conn) == 1


def test_a_rotated_secret_is_still_accepted(http, redis_conn):
    assert post_signed(http, PATH, GOOD, secret=OLD_SECRET).status_code == 202


def test_same_webhook_id_gets_the_same_answer_and_one_job(http, redis_conn):
    data, headers = signed(GOOD, msg_id="msg_once")
    answers = {http.post(PATH, data=data, headers=headers).json["id"] for _ in range(5)}
    assert len(answers) == 1 and queued_jobs(redis_conn) == 1


def test_double_click_is_debounced_but_other_numbers_are_not(http, redis_conn):
    first = post_signed(http, PATH, GOOD).json["id"]
    assert post_signed(http, PATH, {"to": "+79161234567", "from": "84990000000"}).json["id"] == first
    assert post_signed(http, PATH, {"to": "+79161234568", "from": "4990000000"}).json["id"] != first
    assert queued_jobs(redis_conn) == 2


def app_with(env: dict) -> object:
    return create_app(load_settings(env, dotenv="/nonexistent/.env")).test_client()


def test_user_is_mapped_to_a_contract_number(service_env, redis_conn, tmp_path):
    config = tmp_path / "integration.toml"
    config.write_text('[users]\n"7" = "4950000000"\n')
    http = app_with(service_env | {"INTEGRATION_CONFIG": str(config)})
    response = post_signed(http, PATH, {"to": "89161234567", "user": 7, "crm": {"deal": 5}})
    assert response.status_code == 202
    job = json.loads(redis_conn.get(f"vats:callback:{response.json['id']}"))
    assert (job["phone_from"], job["crm_user"], job["crm_context"]) == ("4950000000", "7", {"deal": 5})


@pytest.mark.parametrize(
    ("headers", "detail"),
    [  # "{now}" is filled in when the test runs: a timestamp fixed at collection would go stale
        ({}, "headers are required"),
        ({"webhook-id": "m", "webhook-timestamp": "x", "webhook-signature": "v1,AAAA"}, "whole seconds"),
        ({"webhook-id": "m", "webhook-timestamp": "{now-600}", "webhook-signature": "v1,AAAA"}, "5 minutes"),
        ({"webhook-id": "m", "webhook-timestamp": "{now+600}", "webhook-signature": "v1,AAAA"}, "5 minutes"),
        ({"webhook-id": "m", "webhook-timestamp": "{now}", "webhook-signature": "v1,AAAA"}, "no valid signature"),
        ({"webhook-id": "m", "webhook-timestamp": "{now}", "webhook-signature": "garbage,,,"}, "no valid signature"),
        (
            {"webhook-id": "m", "webhook-timestamp": "{now}", "webhook-signature": "v1,%%%notbase64"},
            "no valid signature",
        ),
    ],
)
def test_bad_signatures_are_401_and_enqueue_nothing(http, redis_conn, headers, detail):
    moments = {"{now}": now(), "{now-600}": now() - 600, "{now+600}": now() + 600}
    headers = {k: str(moments[v]) if v in moments else v for k, v in headers.items()}
    body = assert_problem(http.post(PATH, data=json.dumps(GOOD), headers=headers), 401)
    assert detail in body["detail"]
    assert queued_jobs(redis_conn) == 0


def test_tampered_body_is_401(http, redis_conn):
    data, headers = signed(GOOD)
    assert_problem(http.post(PATH, data=data.replace(b"916", b"917"), headers=headers), 401)
    assert queued_jobs(redis_conn) == 0


def test_replay_of_an_old_delivery_is_401(http, redis_conn):
    data, headers = signed(GOOD, timestamp=now() - 301)
    assert_problem(http.post(PATH, data=data, headers=headers), 401)


def test_oversize_body_is_413(http, redis_conn):
    big = {"to": "89161234567", "from": "4990000000", "crm": {"x": "a" * 70_000}}
    assert_problem(post_signed(http, PATH, big), 413)
    assert queued_jobs(redis_conn) == 0


@pytest.mark.parametrize(
    ("body", "status", "field", "message"),
    [
        (b"{not json", 400, None, "not valid JSON"),
        (b"[1, 2]", 422, None, "JSON object"),
        ({"from": "4990000000"}, 422, "to", "Missing data"),
        ({"to": ["89161234567"], "from": "4990000000"}, 422, "to", "phone number as text"),
        ({"to": True, "from": "4990000000"}, 422, "to", "phone number as text"),
        ({"to": "89161234567"}, 422, "from", "exactly one of"),
        ({"to": "89161234567", "from": "4990000000", "user": "7"}, 422, "from", "exactly one of"),
        ({"to": "8 916 123", "from": "4990000000"}, 422, "to", "too few digits"),
        ({"to": "call me", "from": "4990000000"}, 422, "to", "contains letters"),
        ({"to": "101", "from": "4990000000"}, 422, "to", "internal"),
        ({"to": "8 809 555-12-34", "from": "4990000000"}, 422, "to", "premium-rate"),
        ({"to": "+44 20 7946 0958", "from": "4990000000"}, 422, "to", "international"),
        ({"to": "+7 701 123 4567", "from": "4990000000"}, 422, "to", "international"),
        ({"to": "89161234567", "from": "4111111111"}, 422, "from", "contract's numbers"),
        ({"to": "89161234567", "from": "12345"}, 422, "from", "10-digit"),
        ({"to": "89161234567", "user": "999"}, 422, "user", "INTEGRATION_CONFIG"),
        ({"to": "89161234567", "from": "4990000000", "crm": "deal 5"}, 422, "crm", "Not a valid mapping"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_enqueues_nothing(http, redis_conn, body, status, field, message):
    problem = assert_problem(post_signed(http, PATH, body), status)
    if field:
        assert message in " ".join(problem["errors"][field])
        assert field in problem["detail"]
    else:
        assert message in problem["detail"]
    assert queued_jobs(redis_conn) == 0
    assert not list(redis_conn.scan_iter("vats:idempotency:*"))


def test_premium_and_international_can_be_allowed(service_env, redis_conn):
    http = app_with(service_env | {"ALLOW_PREMIUM_NUMBERS": "true", "ALLOW_INTERNATIONAL_NUMBERS": "yes"})
    assert post_signed(http, PATH, {"to": "88095551234", "from": "4990000000"}).status_code == 202
    assert post_signed(http, PATH, {"to": "+442079460958", "from": "4990000000"}).status_code == 202


def test_wrong_method_and_unknown_path_are_problems(http):
    assert_problem(http.get(PATH), 405)
    assert_problem(http.get("/nope"), 404)


def test_a_browser_widget_may_call_from_an_allowed_origin(service_env, redis_conn):
    app = create_app(load_settings(service_env | {"CORS_ORIGINS": "https://example.amocrm.ru"}, dotenv="/x"))
    http = app.test_client()
    allowed = {"Origin": "https://example.amocrm.ru"}
    preflight = http.options(PATH, headers=allowed | {"Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://example.amocrm.ru"
    assert "webhook-signature" in preflight.headers["Access-Control-Allow-Headers"]
    data, headers = signed(GOOD)
    answer = http.post(PATH, data=data, headers=headers | allowed)
    assert answer.status_code == 202 and answer.headers["Access-Control-Allow-Origin"] == "https://example.amocrm.ru"
    stranger = http.options(PATH, headers={"Origin": "https://evil.example"})
    assert stranger.status_code == 403 and "Access-Control-Allow-Origin" not in stranger.headers
    app.extensions["vats"].engine.dispose()
