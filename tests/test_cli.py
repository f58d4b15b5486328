"""``flask --app wsgi operator …`` in real processes against the sandbox over HTTP."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from integration.operator.auth import RedisTokenStore
from integration.secretbox import SecretBox
from tests.conftest import SECRET_KEYS, run_cli


def assert_clean(result, *secrets: str) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for secret in secrets:
        assert secret not in result.stdout and secret not in result.stderr


def test_token_shows_state_never_the_token(sandbox_env, control, redis_conn):
    result = run_cli("operator", "token", env=sandbox_env)
    assert result.returncode == 0, result.stderr
    assert "token pair: valid (generation 1, made by create" in result.stdout
    assert "access token expires:" in result.stdout and "authorization token expires:" in result.stdout
    [key] = [k for k in redis_conn.scan_iter("vats:tokens:*") if not k.endswith(b":lock")]
    state = RedisTokenStore(redis_conn, SecretBox([SECRET_KEYS])).load(key.decode().removeprefix("vats:tokens:"))
    assert_clean(result, sandbox_env["OPERATOR_AUTHORIZATION_TOKEN"], state.access_token, state.refresh_token)
    as_json = json.loads(run_cli("operator", "token", "--json", env=sandbox_env).stdout)
    assert as_json["generation"] == 1  # the second process reused the stored pair
    assert control.get("stats")["auth.create"] == 1


def test_calls_lists_the_period_in_text_and_json(sandbox_env, control):
    control.post("calls/generate", {"count": 30, "days": 3, "seed": 3})
    since = (datetime.now(UTC) - timedelta(days=4)).strftime("%Y-%m-%d")
    text = run_cli("operator", "calls", "--since", since, env=sandbox_env)
    assert text.returncode == 0, text.stderr
    assert len(text.stdout.strip().splitlines()) == 30
    assert "30 call(s) from" in text.stderr
    rows = [
        json.loads(line)
        for line in run_cli("operator", "calls", "--since", since, "--json", env=sandbox_env).stdout.splitlines()
    ]
    canonical = {c["ext_num"]: c for c in control.get("calls")}
    assert len(rows) == 30
    for row in rows:
        expected = canonical[row["ext_num"]]
        assert row["duration"] == expected["duration"] and row["record_file_id"] == expected["record_file_id"]
        assert row["external"] == (expected["ext_e164"] or f"internal {expected['ext_num']}")
    one_line = run_cli(
        "operator",
        "calls",
        "--since",
        since,
        "--num",
        "84990000000",
        "--direction",
        "inbound",
        "--json",
        env=sandbox_env,
    )
    assert all(
        json.loads(r)["line"] == "4990000000" and json.loads(r)["direction"] == "inbound"
        for r in one_line.stdout.splitlines()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2020-01-01"], "one month of call history"),
        (["--since", "2026-13-01"], "not a calendar date"),
        (["--since", "2026-11-20T10:00"], "has no UTC offset"),
        (["--since", "yesterday"], "use YYYY-MM-DD"),
        (["--num", "4111111111"], "not in OPERATOR_NUMBERS"),
        (["--num", "12"], "contract number"),
    ],
)
def test_calls_bad_input_is_one_clear_line(sandbox_env, args, message):
    result = run_cli("operator", "calls", *args, env=sandbox_env)
    assert result.returncode == 2
    assert message in result.stderr
    assert_clean(result)


def test_callback_rings_once_with_operator_formats(sandbox_env, control):
    result = run_cli("operator", "callback", "--from", "4990000000", "--to", "+7 (916) 123-45-67", env=sandbox_env)
    assert result.returncode == 0, result.stderr
    assert "callback ordered" in result.stdout
    [call] = control.get("callbacks")
    assert (call["PhoneTo"], call["PhoneFrom"]) == ("89161234567", "4990000000")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "4990000000", "--to", "8 (916) 123"], "too few digits"),
        (["--from", "4990000000", "--to", "101"], "internal"),
        (["--from", "4111111111", "--to", "89161234567"], "not in OPERATOR_NUMBERS"),
        (["--to", "89161234567"], "Missing option '--from'"),
    ],
)
def test_callback_bad_input(sandbox_env, control, args, message):
    result = run_cli("operator", "callback", *args, env=sandbox_env)
    assert result.returncode == 2 and message in result.stderr
    assert control.get("callbacks") == []


def test_callback_timeout_after_ringing_exits_3_and_is_not_repeated(sandbox_env, control):
    control.post("faults", {"method": "callback/create", "kind": "timeout", "delay": 3})
    result = run_cli("operator", "callback", "--from", "4990000000", "--to", "89161234567", env=sandbox_env)
    assert result.returncode == 3
    assert "not repeated" in result.stderr and "Check the phone" in result.stderr
    assert len(control.get("callbacks")) == 1
    assert_clean(result)


def test_recording_is_written_whole(sandbox_env, control, tmp_path):
    made = control.post("recordings", {"size": 1_000_003})
    target = tmp_path / "call.mp3"
    result = run_cli("operator", "recording", made["id"], "-o", str(target), env=sandbox_env)
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(target.read_bytes()).hexdigest() == made["sha256"]
    assert made["sha256"] in result.stdout


def test_recording_failure_leaves_no_file(sandbox_env, tmp_path):
    target = tmp_path / "missing.mp3"
    result = run_cli("operator", "recording", "no-such-id", "-o", str(target), env=sandbox_env)
    assert result.returncode == 1 and "record file not found" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_settings_get_text_and_json(sandbox_env):
    text = run_cli("operator", "settings", "get", "4990000000", env=sandbox_env)
    assert text.returncode == 0, text.stderr
    assert "Working hours" in text.stdout and "Non-working hours" in text.stdout
    document = json.loads(run_cli("operator", "settings", "get", "84990000000", "--json", env=sandbox_env).stdout)
    assert document["num"] == "4990000000" and document["profiles"][0]["scheduleBlocks"]


def test_operator_errors_are_one_line_with_exit_1(sandbox_env, control):
    control.post("authorization-token/revoke")
    result = run_cli("operator", "token", env=sandbox_env)
    assert result.returncode == 1
    assert "make a new one in the operator's web cabinet" in result.stderr
    assert_clean(result, sandbox_env["OPERATOR_AUTHORIZATION_TOKEN"])


def test_unreachable_redis_is_a_clear_error(sandbox_env):
    result = run_cli("operator", "token", env=sandbox_env | {"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.returncode == 1 and "cannot use Redis" in result.stderr
    assert_clean(result)


def test_missing_settings_stop_start_up_with_one_line_each():
    result = run_cli("operator", "token", env={"OPERATOR_NUMBERS": "123", "OPERATOR_TIMEZONE": "Nowhere"})
    assert result.returncode == 2
    lines = [line.strip() for line in result.stderr.splitlines()]
    assert "- OPERATOR_AUTHORIZATION_TOKEN is required but not set" in lines
    assert any(line.startswith("- OPERATOR_NUMBERS") for line in lines)
    assert any(line.startswith("- OPERATOR_TIMEZONE") for line in lines)
    assert_clean(result)


def test_worker_starts_and_stops_in_burst_mode(sandbox_env):
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **sandbox_env}
    result = subprocess.run(
        [sys.executable, "worker.py", "--burst"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    broken = subprocess.run(
        [sys.executable, "worker.py", "--burst"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert broken.returncode == 2 and "OPERATOR_AUTHORIZATION_TOKEN is required" in broken.stderr


def test_a_worker_can_serve_click_to_calls_only(sandbox_env, redis_conn):
    from integration.queues import CALLBACKS, DEFAULT, make_queue
    from tests.conftest import run_worker

    for name in (CALLBACKS, DEFAULT):
        make_queue(name, redis_conn).enqueue_call("integration.phone.ascii_digits", args=("٤٢",))
    result = run_worker(sandbox_env, "--queues", "callbacks")
    assert result.returncode == 0, result.stderr
    assert redis_conn.llen("rq:queue:callbacks") == 0 and redis_conn.llen("rq:queue:default") == 1  # left for others
    wrong = run_worker(sandbox_env, "--queues", "callbacks,sync-calls")
    assert (
        wrong.returncode == 2
        and "must name queues among callbacks, periodic, default, bulk; got 'callbacks,sync-calls'" in wrong.stderr
    )
