"""The public "call me back" form, the status API, health and metrics."""

from __future__ import annotations

import pytest

from integration import create_app
from integration.settings import load_settings
from tests.conftest import API_TOKEN
from tests.web.helpers import post_signed, queued_jobs
from tests.web.test_click_to_call import assert_problem

FORM = "/callback-requests"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def test_form_encoded_request_rings_the_form_number(http, redis_conn):
    response = http.post(
        FORM,
        data={
            "phone": "8 916 123-45-67",
            "name": "Анна",
            "comment": "after 5 pm",
            "page_url": "https://shop.example/p/1",
        },
    )
    assert response.status_code == 202
    status = http.get(f"/api/callbacks/{response.json['id']}", headers=AUTH).json
    assert (status["from"], status["to"], status["source"], status["status"]) == (
        "4950000000",
        "+79161234567",
        "form",
        "queued",
    )
    assert status["crm"] == {"name": "Анна", "comment": "after 5 pm", "page_url": "https://shop.example/p/1"}


def test_json_request_is_accepted(http, redis_conn):
    assert http.post(FORM, json={"phone": "+7 916 765-43-21"}).status_code == 202


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "phone", "Missing data"),
        ({"phone": "abc"}, "phone", "contains letters"),
        ({"phone": "88095551234"}, "phone", "premium"),
        ({"phone": "89161234567", "name": "x" * 201}, "name", "Longer than maximum"),
    ],
)
def test_form_validation(http, redis_conn, data, field, message):
    body = assert_problem(http.post(FORM, json=data), 422)
    assert message in " ".join(body["errors"][field])
    assert queued_jobs(redis_conn) == 0


def test_malformed_json_is_400(http):
    assert_problem(http.post(FORM, data="{oops", content_type="application/json"), 400)


def test_honeypot_looks_accepted_but_does_nothing(http, redis_conn):
    response = http.post(FORM, data={"phone": "89161234567", "website": "http://spam.example"})
    assert response.status_code == 202
    assert queued_jobs(redis_conn) == 0


def test_rate_limit_per_destination_number(http, redis_conn):
    ids = set()
    for _ in range(3):
        response = http.post(FORM, data={"phone": "89161234567"})
        assert response.status_code == 202
        ids.add(response.json["id"])
    limited = assert_problem(http.post(FORM, data={"phone": "+7 916 123 45 67"}), 429)
    assert "try again in" in limited["detail"]
    response = http.post(FORM, data={"phone": "89161234567"})
    assert 3500 <= int(response.headers["Retry-After"]) <= 3600
    assert http.post(FORM, data={"phone": "89160000001"}).status_code == 202


def test_rate_limit_per_client_ip(service_env, redis_conn):
    http = create_app(
        load_settings(service_env | {"CALLBACK_REQUEST_LIMIT_PER_IP": "5/minute"}, dotenv="/x")
    ).test_client()
    codes = [
        http.post(FORM, data={"phone": f"8916000000{i}"}, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code
        for i in range(7)
    ]
    assert codes == [202] * 5 + [429] * 2
    assert (
        http.post(FORM, data={"phone": "89160000009"}, environ_base={"REMOTE_ADDR": "203.0.113.10"}).status_code == 202
    )


def test_cors_for_configured_origins_only(service_env, redis_conn):
    http = create_app(load_settings(service_env | {"CORS_ORIGINS": "https://shop.example"}, dotenv="/x")).test_client()
    preflight = http.options(FORM, headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = http.post(FORM, json={"phone": "89161234567"}, headers={"Origin": "https://shop.example"})
    assert allowed.status_code == 202 and allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert http.options(FORM, headers={"Origin": "https://evil.example"}).status_code == 403
    assert_problem(http.post(FORM, json={"phone": "89161234567"}, headers={"Origin": "https://evil.example"}), 403)
    assert queued_jobs(redis_conn) == 1


# --- the status API ---------------------------------------------------------------------------


def test_status_api_needs_the_bearer_token(http, redis_conn):
    accepted = post_signed(http, "/webhooks/click-to-call", {"to": "89161234567", "from": "4990000000"}).json
    assert_problem(http.get(f"/api/callbacks/{accepted['id']}"), 401)
    assert_problem(http.get(f"/api/callbacks/{accepted['id']}", headers={"Authorization": "Bearer wrong"}), 401)
    assert_problem(http.get(f"/api/callbacks/{accepted['id']}", headers={"Authorization": API_TOKEN}), 401)
    assert http.get(f"/api/callbacks/{accepted['id']}", headers=AUTH).json["status"] == "queued"
    assert_problem(http.get("/api/callbacks/unknown", headers=AUTH), 404)


def test_api_is_off_without_a_token(service_env, redis_conn):
    env = {k: v for k, v in service_env.items() if k != "API_TOKEN"}
    http = create_app(load_settings(env, dotenv="/x")).test_client()
    assert "API_TOKEN" in assert_problem(http.get("/api/callbacks/x", headers=AUTH), 403)["detail"]


def test_status_of_a_request_nobody_picked_up_becomes_expired(service_env, redis_conn):
    http = create_app(load_settings(service_env | {"CALLBACK_TTL": "0"}, dotenv="/x")).test_client()
    accepted = post_signed(http, "/webhooks/click-to-call", {"to": "89161234567", "from": "4990000000"}).json
    status = http.get(f"/api/callbacks/{accepted['id']}", headers=AUTH).json
    assert status["status"] == "expired" and "no worker" in status["reason"]


# --- health -----------------------------------------------------------------------------------


def test_health_and_readiness(http, redis_conn):
    assert http.get("/healthz").json == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"] == {
        "redis": "ok",
        "database": "ok",
        "operator": "ok (no token pair yet)",
        "accounts": "ok (0 stored accounts served)",
    }


def test_not_ready_names_what_is_wrong(service_env, tmp_path, redis_conn):
    env = service_env | {"DATABASE_URL": f"sqlite:///{tmp_path}/unmigrated.db", "REDIS_URL": "redis://127.0.0.1:1/0"}
    body = assert_problem(create_app(load_settings(env, dotenv="/x")).test_client().get("/readyz"), 503)
    assert body["checks"]["redis"].startswith("unreachable")
    assert "db upgrade" in body["checks"]["database"]


def test_metrics_count_webhooks_by_outcome(http, redis_conn):
    post_signed(http, "/webhooks/click-to-call", {"to": "89161234567", "from": "4990000000"})
    http.post("/webhooks/click-to-call", json={})
    text = http.get("/metrics").get_data(as_text=True)
    assert 'vats_webhooks_total{endpoint="/webhooks/click-to-call",outcome="202"} 1' in text
    assert 'vats_webhooks_total{endpoint="/webhooks/click-to-call",outcome="401"} 1' in text
    assert "# TYPE vats_webhook_seconds histogram" in text
