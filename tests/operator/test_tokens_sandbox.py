"""Token rules against the sandbox over real HTTP, with the tokens in a real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from integration.errors import AuthorizationRevoked, IntegrationDisabled
from integration.operator.factory import build_operator_client
from integration.settings import load_settings
from tests.conftest import ROOT

PROCESSES = 16


@pytest.mark.slow
def test_sixteen_processes_across_an_expiry_make_exactly_one_refresh(sandbox, control, sandbox_env, redis_conn):
    control.post("token-lifetimes", {"access": 6, "refresh": 120})
    env = sandbox_env | {"TEST_RENEW_MARGIN": "2"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.operator.token_worker", json.dumps(env)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        deadline = time.time() + 60
        while int(redis_conn.get("test:ready") or 0) < PROCESSES:
            assert time.time() < deadline, "workers did not start"
            time.sleep(0.05)
        # One pair exists before the run; it must be renewed at ~4 s (6 s lifetime - 2 s margin),
        # and the renewed pair lasts past the end of the run (~4 + 4 s).
        client = build_operator_client(load_settings(sandbox_env, dotenv="/nonexistent"), redis_conn)
        client.tokens.access_token()
        redis_conn.set("test:go", time.time() + 6.5)
        results = [json.loads(worker.communicate(timeout=60)[0]) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    stats = control.get("stats")
    assert stats.get("auth.create") == 1
    assert stats.get("auth.refresh") == 1
    assert all(result["failed"] == [] for result in results), results
    assert sum(result["ok"] for result in results) > PROCESSES * 10
    assert stats.get("Vats/settings/get 401", 0) == 0


def test_external_pair_invalidation_recovers_through_create(control, client):
    client.get_pbx_settings(["4990000000"])
    control.post("tokens/invalidate")
    assert client.get_pbx_settings(["4990000000"])[0].num == "4990000000"
    stats = control.get("stats")
    assert (stats["auth.create"], stats["auth.refresh"], stats["Vats/settings/get 401"]) == (2, 1, 1)


def test_revoked_authorization_token_is_a_clear_error_with_bounded_auth_calls(control, client):
    client.get_pbx_settings(["4990000000"])
    control.post("authorization-token/revoke")
    for _ in range(10):
        with pytest.raises(AuthorizationRevoked, match="make a new one in the operator's web cabinet"):
            client.get_pbx_settings(["4990000000"])
    stats = control.get("stats")
    assert stats["auth.create"] == 2 and stats["auth.refresh"] == 1
    assert stats["Vats/settings/get"] == 2


def test_a_rotated_authorization_token_works_once_configured(control, sandbox_env, redis_conn):
    old = build_operator_client(load_settings(sandbox_env, dotenv="/nonexistent"), redis_conn)
    old.get_pbx_settings(["4990000000"])
    new_token = control.post("authorization-token/rotate")["authorization_token"]
    with pytest.raises(AuthorizationRevoked):
        old.get_pbx_settings(["4990000000"])
    new = build_operator_client(
        load_settings(sandbox_env | {"OPERATOR_AUTHORIZATION_TOKEN": new_token}, dotenv="/nonexistent"), redis_conn
    )
    assert new.get_pbx_settings(["4990000000"])


def test_switched_off_api(control, client):
    control.post("switch", {"enabled": False})
    with pytest.raises(IntegrationDisabled):
        client.get_pbx_settings(["4990000000"])
