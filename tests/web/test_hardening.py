"""Defects found by attacking a deployment (issue #14): every bad input gets a clear 4xx."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import requests

from integration import create_app
from integration.errors import AuthorizationRevoked
from integration.settings import load_settings
from tests.conftest import API_TOKEN, SECRET, app_for, serve
from tests.web.helpers import post_signed, queued_jobs, signed
from tests.web.test_click_to_call import assert_problem

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
FORM = "/callback-requests"
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


# --- 1. other scripts' digits are the same number ----------------------------------------------


@pytest.mark.parametrize("script", [ARABIC_INDIC, DEVANAGARI, FULLWIDTH], ids=["arabic", "devanagari", "fullwidth"])
def test_every_spelling_of_a_number_shares_the_forms_per_number_limit(http, redis_conn, script):
    for _ in range(3):
        assert http.post(FORM, data={"phone": "89161234567"}).status_code == 202
    for respelled in ("89161234567".translate(script), "8916" + "1234567".translate(script)):
        assert_problem(http.post(FORM, data={"phone": respelled}), 429)
    assert queued_jobs(redis_conn) == 1  # the debounce saw one number too


def test_a_respelled_click_to_call_is_the_same_request_in_ascii(http, redis_conn):
    first = post_signed(http, "/webhooks/click-to-call", {"to": "89161234567", "from": "4990000000"})
    again = post_signed(
        http, "/webhooks/click-to-call", {"to": "89161234567".translate(ARABIC_INDIC), "from": "٤٩٩٠٠٠٠٠٠٠"}
    )
    assert first.status_code == again.status_code == 202 and again.json["id"] == first.json["id"]
    status = http.get(f"/api/callbacks/{first.json['id']}", headers=AUTH).json
    assert status["to"] == "+79161234567" and status["from"] == "4990000000"


# --- 3. rate limits ----------------------------------------------------------------------------


def _form_app(service_env, **settings: str):
    return create_app(load_settings(service_env | settings, dotenv="/x"))


def test_refused_requests_use_up_no_ones_allowance(service_env, redis_conn):
    """An IP over its limit cannot lock a number out of the form."""
    http = _form_app(service_env, CALLBACK_REQUEST_LIMIT_PER_IP="2/hour").test_client()
    attacker = {"REMOTE_ADDR": "203.0.113.66"}
    for _ in range(2):
        assert http.post(FORM, data={"phone": "89160000001"}, environ_base=attacker).status_code == 202
    for _ in range(5):
        assert_problem(http.post(FORM, data={"phone": "89161234567"}, environ_base=attacker), 429)
    victim = {"REMOTE_ADDR": "198.51.100.7"}
    assert http.post(FORM, data={"phone": "89161234567"}, environ_base=victim).status_code == 202


def test_a_total_limit_caps_a_distributed_flood_and_is_counted(service_env, redis_conn):
    app = _form_app(service_env, CALLBACK_REQUEST_LIMIT_TOTAL="3/hour")
    http = app.test_client()
    codes = [
        http.post(FORM, data={"phone": f"8916000000{i}"}, environ_base={"REMOTE_ADDR": f"203.0.113.{i}"}).status_code
        for i in range(5)
    ]
    assert codes == [202, 202, 202, 429, 429]
    metrics = http.get("/metrics").get_data(as_text=True)
    assert 'vats_callback_requests_total{outcome="limited_total"} 2' in metrics
    assert 'vats_callback_requests_total{outcome="accepted"} 3' in metrics


def test_a_forwarded_value_that_is_not_an_ip_is_not_a_key(service_env, redis_conn):
    http = _form_app(service_env, TRUSTED_PROXIES="1", CALLBACK_REQUEST_LIMIT_PER_IP="2/hour").test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    codes = [
        http.post(
            FORM, data={"phone": f"8916000000{i}"}, headers={"X-Forwarded-For": f"junk-{i}"}, environ_base=proxy
        ).status_code
        for i in range(3)
    ]
    assert codes == [202, 202, 429]  # every junk value counted against the proxy's own address


def test_ipv6_clients_are_grouped_by_their_64(service_env, redis_conn):
    http = _form_app(service_env, CALLBACK_REQUEST_LIMIT_PER_IP="2/hour").test_client()
    codes = [
        http.post(
            FORM, data={"phone": f"8916000000{i}"}, environ_base={"REMOTE_ADDR": f"2001:db8:1:2::{i + 1:x}"}
        ).status_code
        for i in range(3)
    ]
    assert codes == [202, 202, 429]
    other_network = {"REMOTE_ADDR": "2001:db8:1:3::1"}
    assert http.post(FORM, data={"phone": "89160000009"}, environ_base=other_network).status_code == 202


# --- 4. input that used to be a 500 ------------------------------------------------------------


def _nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def test_signature_headers_are_read_strictly(http, redis_conn):
    data, headers = signed({"to": "89161234567", "from": "4990000000"})
    for stamp in ("9" * 400, "١٧٠٠٠٠٠٠٠٠", "+1700000000", " 1700000000", "1e9"):
        answer = http.post("/webhooks/click-to-call", data=data, headers=headers | {"webhook-timestamp": stamp})
        assert "webhook-timestamp" in assert_problem(answer, 401)["detail"]


@pytest.mark.parametrize("path", ["/webhooks/click-to-call", "/webhooks/events"])
@pytest.mark.parametrize("depth", [40, 20_000])
def test_deeply_nested_json_is_a_422_naming_the_body(http, redis_conn, path, depth):
    body = b'{"to": "89161234567", "from": "4990000000", "crm": {"a": ' + _nested(depth) + b"}}"
    problem = assert_problem(post_signed(http, path, body), 422 if depth < 1000 else 422)
    assert "body" in problem["errors"]


def test_nested_json_on_the_form_and_vats_plan(http, redis_conn):
    assert (
        "body" in assert_problem(http.post(FORM, data=_nested(20_000), content_type="application/json"), 422)["errors"]
    )
    plan = http.post("/api/vats/4990000000/plan", data=_nested(20_000), content_type="application/json", headers=AUTH)
    assert "body" in assert_problem(plan, 422)["errors"]


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=²", "limit"),
        ("limit=٣", "limit"),
        ("offset=" + "9" * 30, "offset"),
        ("offset=-1", "offset"),
        ("since=0001-01-01", "since"),
        ("until=9999-12-31", "until"),
        ("since=0001-01-01T00:00%2B05:00", "since"),
        ("number=" + "٩" * 40, "number"),
    ],
)
def test_api_queries_that_used_to_be_500s(http, redis_conn, query, field):
    problem = assert_problem(http.get(f"/api/calls?{query}", headers=AUTH), 422)
    assert field in problem["errors"] and field in problem["detail"]


def test_bitrix24_form_with_a_name_both_value_and_table(service_env, redis_conn):
    with app_for(service_env | {"BITRIX24_APP_TOKEN": "bx-token"}) as app:
        http = app.test_client()
        unauthenticated = http.post(
            "/webhooks/bitrix24", data="a=1&a[b]=2", content_type="application/x-www-form-urlencoded"
        )
        assert_problem(unauthenticated, 401)  # the token is checked before the body is read
        body = "auth[application_token]=bx-token&event=ONEXTERNALCALLSTART&data=1&data[CALL_ID]=2"
        problem = assert_problem(
            http.post("/webhooks/bitrix24", data=body, content_type="application/x-www-form-urlencoded"), 422
        )
        assert "data" in problem["errors"]


def test_recording_links_with_odd_parameters_are_403(service_env, redis_conn, tmp_path):
    env = service_env | {"RECORDING_LINK_KEYS": "k" * 40, "RECORDINGS_DIR": str(tmp_path)}
    with app_for(env) as app:
        http = app.test_client()
        for query in ("sig=abc&exp=²", "sig=ä" * 2, "sig=" + "A" * 43 + "&exp=" + "9" * 40, "sig=%ff%fe"):
            assert_problem(http.get(f"/recordings/{'0' * 32}.mp3?{query}"), 403)


# --- 5. chunked bodies over MAX_BODY_BYTES -----------------------------------------------------


def test_a_chunked_body_over_the_limit_is_413_not_cut(service_env, redis_conn):
    with app_for(service_env | {"MAX_BODY_BYTES": "1024"}) as app, serve(app) as url:
        big = json.dumps({"phone": "89161234567", "comment": "x" * 900, "name": "y" * 200}).encode()
        chunks = (big[i : i + 100] for i in range(0, len(big), 100))
        answer = requests.post(url + FORM, data=chunks, headers={"Content-Type": "application/json"}, timeout=10)
        assert answer.status_code == 413 and answer.headers["Content-Type"] == "application/problem+json"
        small = json.dumps({"phone": "89161234567"}).encode()
        answer = requests.post(
            url + FORM, data=iter([small[:10], small[10:]]), headers={"Content-Type": "application/json"}, timeout=10
        )
        assert answer.status_code == 202, answer.text


def test_a_signed_chunked_body_over_the_limit_is_413_not_401(service_env, redis_conn):
    with app_for(service_env | {"MAX_BODY_BYTES": "1024"}) as app, serve(app) as url:
        data, headers = signed({"to": "89161234567", "from": "4990000000", "crm": {"note": "z" * 2000}})
        answer = requests.post(
            url + "/webhooks/click-to-call", data=iter([data[:500], data[500:]]), headers=headers, timeout=10
        )
        assert answer.status_code == 413


# --- 6. CORS on every answer -------------------------------------------------------------------


def test_errors_to_an_allowed_origin_carry_cors_headers(service_env, redis_conn):
    origin = {"Origin": "https://shop.example"}
    env = service_env | {"CORS_ORIGINS": "https://shop.example", "CALLBACK_REQUEST_LIMIT_PER_NUMBER": "1/hour"}
    with app_for(env) as app:
        http = app.test_client()
        answers = [
            http.post(FORM, data={"phone": "12"}, headers=origin),  # 422
            http.post(FORM, data={"phone": "89161234567"}, headers=origin),  # 202
            http.post(FORM, data={"phone": "89161234567"}, headers=origin),  # 429
            http.post("/webhooks/click-to-call", json={"to": "1"}, headers=origin),  # 401
        ]
        assert [a.status_code for a in answers] == [422, 202, 429, 401]
        for answer in answers:
            assert answer.headers["Access-Control-Allow-Origin"] == "https://shop.example"
            assert "Retry-After" in answer.headers["Access-Control-Expose-Headers"]
            assert "Origin" in answer.headers["Vary"]
        stranger = http.post(FORM, data={"phone": "12"}, headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in stranger.headers


# --- 7. event types ----------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["a" * 65, "deal.closed\n", "Deal.Closed", "x." + "y" * 63])
def test_event_types_are_capped(http, redis_conn, event_type):
    problem = assert_problem(post_signed(http, "/webhooks/events", {"type": event_type, "data": {}}), 422)
    assert "type" in problem["errors"]


# --- 9. Range headers a server cannot read are ignored -----------------------------------------


# (tests/test_recordings.py serves a real recording; see test_unreadable_ranges_get_the_whole_file)


# --- 10. smaller ones --------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["+7 840 226-12-34", "+7 940 123-45-67", "8 940 123 45 67"])
def test_abkhazian_numbers_are_international_for_the_toll_fraud_rule(http, redis_conn, number):
    problem = assert_problem(post_signed(http, "/webhooks/click-to-call", {"to": number, "from": "4990000000"}), 422)
    assert "Abkhazia" in problem["errors"]["to"][0]


def test_abkhazian_numbers_are_dialled_when_international_is_allowed(service_env, redis_conn):
    with app_for(service_env | {"ALLOW_INTERNATIONAL_NUMBERS": "true"}) as app:
        answer = post_signed(app.test_client(), "/webhooks/click-to-call", {"to": "+79401234567", "from": "4990000000"})
        assert answer.status_code == 202, answer.text


def test_readiness_tells_the_token_state_and_nothing_secret(service_env, redis_conn, control):
    with app_for(service_env) as app:
        tokens = app.extensions["vats"].operator.tokens
        tokens.access_token()  # a pair is stored
        ready = app.test_client().get("/readyz").get_data(as_text=True)
        pair = asdict(tokens.store.load(tokens.key))
    redis_conn.delete("vats:tokens:" + tokens.key)
    control.post("authorization-token/revoke")
    with app_for(service_env) as app:
        with pytest.raises(AuthorizationRevoked):
            app.extensions["vats"].operator.tokens.access_token()
        not_ready = app.test_client().get("/readyz")
    assert_problem(not_ready, 503)
    assert "revoked" in not_ready.json["checks"]["operator"]
    stored = [value for value in pair.values() if isinstance(value, str) and len(value) > 20]
    assert len(stored) >= 2  # the access and refresh tokens
    secrets = [service_env["OPERATOR_AUTHORIZATION_TOKEN"], SECRET, API_TOKEN, *stored]
    for text in (ready, not_ready.get_data(as_text=True)):
        assert not [secret for secret in secrets if secret in text]
