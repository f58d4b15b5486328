"""POST /widget/amocrm/click-to-call: amoCRM one-time tokens, the caller's own number, limits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from integration.config import RateLimit
from integration.crm.amocrm import settings_of
from integration.errors import ConfigError
from integration.settings import load_settings
from tests.conftest import ROOT, app_for, config_file
from tests.web.helpers import queued_jobs
from tests.web.test_click_to_call import assert_problem
from tests.widget_tokens import (
    ACCOUNT_ID,
    ACCOUNT_URL,
    CLIENT_SECRET,
    REDIRECT_URI,
    USER_ID,
    USERS,
    forged,
    mint,
    payload,
    widget_env,
)

PATH = "/widget/amocrm/click-to-call"


@pytest.fixture
def env(service_env, tmp_path) -> dict[str, str]:
    return widget_env(service_env, tmp_path)


@pytest.fixture
def widget_app(env, redis_conn):
    with app_for(env) as app:
        yield app


@pytest.fixture
def http(widget_app):
    return widget_app.test_client()


def call(http, token: str | None, body: object = None, **headers: str):
    data = json.dumps({"to": "8 916 123-45-67"} if body is None else body)
    auth = {"X-Auth-Token": token} if token is not None else {}
    return http.post(PATH, data=data, content_type="application/json", headers=auth | headers)


def refused(response, fragment: str, status: int = 401) -> dict:
    problem = assert_problem(response, status)
    assert fragment in problem["detail"], problem["detail"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("X-Auth-Token")
    return problem


def test_a_valid_token_rings_the_users_own_number(widget_app, http, redis_conn):
    response = call(http, mint(), {"to": "8 916 123-45-67", "crm": {"entity": "contacts", "id": 406322}})
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.json["status"] == "queued" and queued_jobs(redis_conn) == 1
    record = widget_app.extensions["vats"].intake.accepted(response.json["id"])
    assert (record.phone_from, record.phone_to, record.source, record.crm_user) == (
        "4990000000",
        "+79161234567",
        "amocrm-widget",
        USER_ID,
    )
    assert record.crm_context == {
        "amocrm": {"account_id": ACCOUNT_ID, "user_id": USER_ID},
        "crm": {"entity": "contacts", "id": 406322},
    }


def test_another_user_rings_their_own_number(widget_app, http, redis_conn):
    response = call(http, mint(user_id=42))
    assert response.status_code == 202
    assert widget_app.extensions["vats"].intake.accepted(response.json["id"]).phone_from == "4950000000"


@pytest.mark.parametrize("field", ["from", "user", "phone_from", "account_id"])
def test_the_body_cannot_choose_the_caller(http, redis_conn, field):
    problem = assert_problem(call(http, mint(), {"to": "89161234567", field: "4950000000"}), 422)
    assert list(problem["errors"]) == [field]
    assert "signed-in amoCRM user" in problem["errors"][field][0]
    assert queued_jobs(redis_conn) == 0


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "to", "Missing data"),
        ({"to": "88095551234"}, "to", "premium"),
        ({"to": ["89161234567"]}, "to", "phone number as text"),
        ({"to": "89161234567", "crm": "lead 5"}, "crm", "Not a valid mapping"),
    ],
)
def test_the_destination_is_validated_like_click_to_call(http, redis_conn, body, field, message):
    problem = assert_problem(call(http, mint(), body), 422)
    assert message in " ".join(problem["errors"][field])
    assert queued_jobs(redis_conn) == 0


def test_malformed_bodies_are_problems(http, redis_conn):
    assert_problem(
        http.post(PATH, data="{oops", content_type="application/json", headers={"X-Auth-Token": mint()}), 400
    )
    assert "JSON object" in assert_problem(call(http, mint(), ["89161234567"]), 422)["detail"]
    assert "JSON object" in assert_problem(call(http, mint(), "89161234567"), 422)["detail"]
    assert queued_jobs(redis_conn) == 0


def test_a_missing_or_empty_header_is_401(http, redis_conn):
    refused(call(http, None), "X-Auth-Token header is missing")
    refused(call(http, " "), "X-Auth-Token header is missing")
    assert queued_jobs(redis_conn) == 0


def now() -> int:
    return int(time.time())


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        (lambda: mint(exp=now() - 31, iat=now() - 700, nbf=now() - 700), "expired"),
        (lambda: mint(nbf=now() + 120), "not yet valid"),
        (lambda: mint(iat=now() + 120), "not yet valid"),
        (lambda: mint(secret="another-integration-secret-0123456789abcdef-0123456789"), "bad signature"),
        (lambda: forged({"alg": "none", "typ": "JWT"}), "HS256"),
        (lambda: forged({"alg": "RS256", "typ": "JWT"}, signature="c2lnbmF0dXJl"), "HS256"),
        (lambda: mint(algorithm="HS512"), "HS256"),
        (lambda: mint(iss="https://other.amocrm.ru"), "another amoCRM account"),
        (lambda: mint(iss="https://example.amocrm.ru.evil.example"), "another amoCRM account"),
        (lambda: mint(iss="http://example.amocrm.ru"), "another amoCRM account"),
        (lambda: mint(account_id=31000000), "AMOCRM_ACCOUNT_ID"),
        (lambda: mint(user_id="7; DROP"), "'user_id' must be a positive whole number"),
        (lambda: mint(user_id=True), "'user_id' must be a positive whole number"),
        (lambda: mint(exp="tomorrow"), "'exp' must be a Unix timestamp"),
        (lambda: mint(jti=""), "'jti'"),
        (lambda: "not-a-jwt", "not a JWT"),
        (lambda: "a.b.c", "not a JWT"),
    ],
    ids=[
        "expired", "nbf-future", "iat-future", "wrong-key", "alg-none", "rs256", "hs512", "other-account",
        "look-alike-host", "other-scheme", "other-account-id", "user-id-text", "user-id-bool", "exp-text",
        "empty-jti", "garbage", "garbage-parts",
    ],
)  # fmt: skip
def test_bad_tokens_are_401_and_never_echoed(http, redis_conn, token, fragment):
    value = token()
    problem = refused(call(http, value), fragment)
    assert value not in json.dumps(problem) and CLIENT_SECRET not in json.dumps(problem)
    assert queued_jobs(redis_conn) == 0


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "jti", "iss", "account_id", "user_id"])
def test_every_required_claim_must_be_there(http, redis_conn, claim):
    refused(call(http, mint(**{claim: None})), f"the '{claim}' claim is missing")
    assert queued_jobs(redis_conn) == 0


def test_a_token_is_accepted_once(http, redis_conn):
    token = mint()
    assert call(http, token).status_code == 202
    refused(call(http, token, {"to": "+7 916 765-43-21"}), "already used")
    assert queued_jobs(redis_conn) == 1
    ttl = redis_conn.ttl(f"vats:amocrm:jti:{payload(token)['jti']}")
    assert 600 < ttl <= 630  # the token's remaining lifetime plus the leeway


def test_a_token_used_here_is_refused_by_another_process(http, env, redis_conn):
    token = mint()
    assert call(http, token).status_code == 202
    script = (
        "import json, os, sys\n"
        "from integration import create_app\n"
        "from integration.settings import load_settings\n"
        "app = create_app(load_settings(json.loads(sys.argv[1]), dotenv='/nonexistent/.env'))\n"
        "answer = app.test_client().post('/widget/amocrm/click-to-call', json={'to': '89161234567'},\n"
        "                               headers={'X-Auth-Token': sys.argv[2]})\n"
        "print(answer.status_code, answer.get_json(force=True)['detail'])\n"
    )
    process_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(env), token],
        cwd=ROOT,
        env=process_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("401 the token was already used")
    assert queued_jobs(redis_conn) == 1


def test_a_user_without_a_number_is_refused(http, redis_conn):
    problem = assert_problem(call(http, mint(user_id=555)), 403)
    assert "amoCRM user 555 has no contract number in INTEGRATION_CONFIG [users]" in problem["detail"]
    assert queued_jobs(redis_conn) == 0


def test_each_user_is_rate_limited(env, redis_conn):
    with app_for(env | {"WIDGET_CALL_LIMIT_PER_USER": "2/minute"}) as app:
        http = app.test_client()
        numbers = ["89161234561", "89161234562", "89161234563"]
        codes = [call(http, mint(), {"to": number}).status_code for number in numbers]
        assert codes == [202, 202, 429]
        limited = call(http, mint(), {"to": "89161234564"})
        problem = assert_problem(limited, 429)
        assert "try again in" in problem["detail"] and 1 <= int(limited.headers["Retry-After"]) <= 60
        assert call(http, mint(user_id=42), {"to": "89161234565"}).status_code == 202
        assert queued_jobs(redis_conn) == 3


def test_without_the_integration_secret_the_endpoint_is_off(service_env, tmp_path, redis_conn):
    env = service_env | config_file(tmp_path, USERS) | {"AMOCRM_BASE_URL": ACCOUNT_URL}
    with app_for(env) as app:
        problem = assert_problem(call(app.test_client(), mint()), 403)
    assert "disabled" in problem["detail"] and "AMOCRM_CLIENT_SECRET" in problem["detail"]
    assert queued_jobs(redis_conn) == 0


def test_the_audience_is_checked_when_the_redirect_uri_is_set(env, redis_conn):
    with app_for(env | {"AMOCRM_REDIRECT_URI": REDIRECT_URI}) as app:
        http = app.test_client()
        refused(call(http, mint(aud="https://other-integration.example")), "wrong audience")
        refused(call(http, mint(aud=None)), "wrong audience")
        assert call(http, mint(aud="https://bridge.example")).status_code == 202


def test_the_account_origin_may_call_and_read_every_answer(http, redis_conn):
    origin = {"Origin": ACCOUNT_URL}
    preflight = http.options(PATH, headers=origin | {"Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert "X-Auth-Token" in preflight.headers["Access-Control-Allow-Headers"]
    assert preflight.headers["Access-Control-Allow-Origin"] == ACCOUNT_URL
    accepted = call(http, mint(), **origin)
    assert accepted.status_code == 202 and accepted.headers["Access-Control-Allow-Origin"] == ACCOUNT_URL
    failed = call(http, mint(user_id=555), **origin)
    assert failed.status_code == 403 and failed.headers["Access-Control-Allow-Origin"] == ACCOUNT_URL
    stranger = http.options(PATH, headers={"Origin": "https://evil.example"})
    assert stranger.status_code == 403 and "Access-Control-Allow-Origin" not in stranger.headers


def test_the_widget_settings_are_checked_at_start_up(env):
    settings = load_settings(env, dotenv="/nonexistent/.env")  # CRM_BACKEND local: the widget still works
    amocrm = settings_of(settings)
    assert amocrm is not None
    assert (settings.crm_backend, amocrm.account_id) == ("local", ACCOUNT_ID)
    assert amocrm.widget_call_limit_per_user == RateLimit(30, 60)
    bad = env | {"AMOCRM_ACCOUNT_ID": "example", "WIDGET_CALL_LIMIT_PER_USER": "lots"}
    with pytest.raises(ConfigError) as error:
        load_settings(bad, dotenv="/nonexistent/.env")
    assert [p.split()[0] for p in error.value.problems] == ["AMOCRM_ACCOUNT_ID", "WIDGET_CALL_LIMIT_PER_USER"]
