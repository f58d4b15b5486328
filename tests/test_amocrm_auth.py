"""amoCRM OAuth: refresh-token rotation with many workers gives exactly one refresh."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from itertools import count
from pathlib import Path

import pytest
from flask import Flask, request

from integration.crm.amocrm.auth import AmoOAuth, AmoTokens, TokenPair
from integration.crm.base import CrmError
from integration.secretbox import SecretBox, new_key
from tests.conftest import ROOT, SECRET_KEYS, TEST_REDIS_URL, serve

BOX = SecretBox([SECRET_KEYS])

FIXTURES = Path(__file__).parent / "fixtures" / "amocrm"


class OAuthStandIn:
    """amoCRM's token endpoint: every refresh token works once (rotation), as amoCRM does."""

    def __init__(self):
        self.lock = threading.Lock()
        self.valid_refresh = {"refresh-0"}
        self.grants: list[dict] = []
        self.serial = count(1)
        self.app = Flask("amocrm-oauth")
        self.app.add_url_rule("/oauth2/access_token", view_func=self.token, methods=["POST"])

    def token(self):
        body = request.get_json()
        with self.lock:
            self.grants.append(body)
            time.sleep(0.2)  # a slow token endpoint widens any race
            if body["grant_type"] == "refresh_token" and body["refresh_token"] not in self.valid_refresh:
                return {"hint": "Token has been revoked", "title": "Некорректный запрос"}, 400
            if body["grant_type"] == "authorization_code" and body["code"] != "good-code":
                return {"hint": "Authorization code has been revoked"}, 400
            self.valid_refresh.discard(body.get("refresh_token"))
            n = next(self.serial)
            self.valid_refresh.add(f"refresh-{n}")
            documented = json.loads((FIXTURES / "token_response.json").read_text())
            return documented | {"access_token": f"access-{n}", "refresh_token": f"refresh-{n}", "expires_in": 86400}


@pytest.fixture
def oauth_url():
    stand_in = OAuthStandIn()
    with serve(stand_in.app) as url:
        yield stand_in, url


WORKER = """
import sys
import redis
from integration.crm.amocrm.auth import AmoOAuth, AmoTokens
from integration.secretbox import SecretBox, new_key
oauth = AmoOAuth(sys.argv[1], "client", "secret", "https://bridge.example/amocrm/oauth")
tokens = AmoTokens(redis.Redis.from_url(sys.argv[2]), oauth, box=SecretBox([sys.argv[3]]))
print(tokens.access_token())
"""


def test_eight_workers_after_expiry_make_exactly_one_refresh(oauth_url, redis_conn):
    stand_in, url = oauth_url
    redis_conn.set(
        "vats:amocrm:tokens", json.dumps({"access_token": "old", "refresh_token": "refresh-0", "expires_at": 0})
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, TEST_REDIS_URL, SECRET_KEYS],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = {worker.communicate(timeout=60)[0].strip() for worker in workers}
    assert all(worker.returncode == 0 for worker in workers)
    assert outputs == {"access-1"}  # everyone uses the one new token
    assert [g["grant_type"] for g in stand_in.grants] == ["refresh_token"]
    expected = json.loads((FIXTURES / "token_request_refresh.json").read_text()).keys()
    assert set(stand_in.grants[0]) == set(expected)  # the documented request body
    sealed = redis_conn.get("vats:amocrm:tokens")
    assert b"refresh-1" not in sealed and b"access-1" not in sealed  # sealed with SECRET_KEYS
    stored = json.loads(BOX.open(sealed))
    assert stored["refresh_token"] == "refresh-1"  # stored before use: the next refresh works


def test_first_authorization_then_refresh_then_a_refused_token(oauth_url, redis_conn):
    stand_in, url = oauth_url
    clock = [1000.0]
    oauth = AmoOAuth(url, "client", "secret", "https://bridge.example/amocrm/oauth")
    tokens = AmoTokens(redis_conn, oauth, box=BOX, auth_code="good-code", clock=lambda: clock[0])
    assert tokens.access_token() == "access-1" and tokens.access_token() == "access-1"
    clock[0] += 86400  # expired
    assert tokens.access_token() == "access-2"
    tokens.expire("access-2")  # amoCRM said 401
    assert tokens.access_token() == "access-3"
    tokens.expire("access-2")  # a late report about an old token changes nothing
    assert tokens.access_token() == "access-3"
    assert [g["grant_type"] for g in stand_in.grants] == ["authorization_code", "refresh_token", "refresh_token"]


def test_a_dead_refresh_token_asks_for_a_new_authorization_without_leaking_secrets(oauth_url, redis_conn):
    _, url = oauth_url
    pair = TokenPair("old", "refresh-used-elsewhere", 0)
    redis_conn.set("vats:amocrm:tokens", json.dumps(pair.__dict__))
    tokens = AmoTokens(
        redis_conn, AmoOAuth(url, "client", "top-secret", "https://bridge.example/amocrm/oauth"), box=BOX
    )
    with pytest.raises(CrmError) as caught:
        tokens.access_token()
    assert not caught.value.retryable and "AMOCRM_AUTH_CODE" in str(caught.value)
    assert "top-secret" not in str(caught.value) and "refresh-used-elsewhere" not in str(caught.value)


def test_a_long_lived_token_needs_no_oauth(redis_conn):
    assert AmoTokens(redis_conn, None, box=BOX, long_lived="llt").access_token() == "llt"
    with pytest.raises(CrmError, match="AMOCRM_AUTH_CODE"):
        AmoTokens(redis_conn, None, box=BOX).access_token()


def test_the_stored_pair_is_sealed_and_rotates_to_a_new_key(redis_conn):
    redis_conn.set(
        "vats:amocrm:tokens", BOX.seal(json.dumps({"access_token": "a1", "refresh_token": "r1", "expires_at": 9e9}))
    )
    new = new_key()
    rotating = AmoTokens(redis_conn, None, box=SecretBox([new, SECRET_KEYS]))
    assert rotating.access_token() == "a1" and rotating.reseal() == 1
    assert AmoTokens(redis_conn, None, box=SecretBox([new])).access_token() == "a1"
    assert AmoTokens(redis_conn, None, box=SecretBox([new])).reseal() == 1
    with pytest.raises(CrmError, match="cannot be opened with any key of SECRET_KEYS") as unreadable:
        AmoTokens(redis_conn, None, box=BOX).access_token()  # the new key was dropped too early
    assert unreadable.value.retryable and "a1" not in repr(unreadable.value)
    assert "a1" not in repr(TokenPair("a1", "r1", 0)) and "r1" not in repr(TokenPair("a1", "r1", 0))
    redis_conn.delete("vats:amocrm:tokens")
    assert rotating.reseal() == 0
