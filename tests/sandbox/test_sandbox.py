"""The sandbox keeps the operator's documented rules; the client copes with its faults."""

from __future__ import annotations

import copy
import hashlib
import time
from datetime import UTC, datetime, timedelta
from io import BytesIO

import pytest
import requests

from integration.errors import InvalidPhoneNumber, OperatorUnavailable, OutcomeUnknown, RequestRejected
from integration.models import Direction
from integration.phone import parse_phone
from integration.sandbox.data import EXT_FORMATS

API = "/api/v1/"


def bearer(sandbox_url: str, token: str, method: str, **kw) -> requests.Response:
    verb = "POST" if method.startswith(("request/getcalllist", "Vats")) else "GET"
    return requests.request(
        verb, sandbox_url + API + method, headers={"Authorization": f"Bearer {token}"}, timeout=10, **kw
    )


def pair(sandbox_url: str, authorization: str) -> dict:
    return bearer(sandbox_url, authorization, "auth/integrationapi/create").json()


# --- tokens ---------------------------------------------------------------------------------


def test_a_new_pair_invalidates_the_previous_one(sandbox, control):
    first = pair(sandbox.url, control.authorization_token)
    second = bearer(sandbox.url, first["refreshToken"], "auth/integrationapi/refresh").json()
    assert (
        bearer(sandbox.url, first["accessToken"], "Vats/settings/get", json={"nums": ["4990000000"]}).status_code == 401
    )
    assert bearer(sandbox.url, first["refreshToken"], "auth/integrationapi/refresh").status_code == 401
    assert (
        bearer(sandbox.url, second["accessToken"], "Vats/settings/get", json={"nums": ["4990000000"]}).status_code
        == 200
    )


def test_lifetimes_follow_the_clock(sandbox, control):
    tokens = pair(sandbox.url, control.authorization_token)
    control.post("clock", {"shift": 24 * 3600 + 1})
    assert (
        bearer(sandbox.url, tokens["accessToken"], "Vats/settings/get", json={"nums": ["4990000000"]}).status_code
        == 401
    )
    assert bearer(sandbox.url, tokens["refreshToken"], "auth/integrationapi/refresh").status_code == 200
    control.post("clock", {"shift": 3600 * 26})
    tokens = pair(sandbox.url, control.authorization_token)
    control.post("clock", {"shift": 25 * 3600 + 1})
    assert bearer(sandbox.url, tokens["refreshToken"], "auth/integrationapi/refresh").status_code == 401


def test_expiry_strings_are_operator_local_times(sandbox, control):
    tokens = pair(sandbox.url, control.authorization_token)
    expires = datetime.strptime(tokens["accessTokenExpiredIn"], "%Y-%m-%d %H:%M:%S")
    moscow_now = datetime.now(UTC) + timedelta(hours=3)
    assert abs((expires - moscow_now.replace(tzinfo=None)).total_seconds() - 86400) < 5


def test_switched_off_refuses_everything(sandbox, control):
    tokens = pair(sandbox.url, control.authorization_token)
    control.post("switch", {"enabled": False})
    assert (
        bearer(sandbox.url, tokens["accessToken"], "Vats/settings/get", json={"nums": ["4990000000"]}).status_code
        == 403
    )
    assert bearer(sandbox.url, control.authorization_token, "auth/integrationapi/create").status_code == 403


def test_missing_or_garbage_bearer(sandbox):
    assert requests.get(sandbox.url + API + "callback/create", timeout=5).status_code == 401
    assert bearer(sandbox.url, "x.y.z", "callback/create").status_code == 401


# --- callbacks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone_to", "phone_from", "message"),
    [
        ("+79161234567", "4990000000", "PhoneTo"),
        ("9161234567", "4990000000", "PhoneTo"),
        ("89161234567", "84990000000", "PhoneFrom"),
        ("89161234567", "4111111111", "not a number of this contract"),
    ],
)
def test_callback_formats_are_enforced(client, control, phone_to, phone_from, message):
    # "+7…" is refused by our client before it is sent (ASCII digits only), the rest by the sandbox.
    with pytest.raises((RequestRejected, InvalidPhoneNumber), match=message):
        client.create_callback(phone_to, phone_from)
    assert control.get("callbacks") == []


def test_callbacks_are_recorded_and_appear_in_the_history(client, control):
    client.create_callback("810442079460958", "4950000000")
    assert [(c["PhoneTo"], c["PhoneFrom"]) for c in control.get("callbacks")] == [("810442079460958", "4950000000")]
    now = datetime.now(UTC)
    rows = client.get_call_list(["4950000000"], now - timedelta(minutes=5), now + timedelta(minutes=1))
    assert [(r.ext_num, r.direction, r.service) for r in rows] == [("810442079460958", Direction.OUTBOUND, "callback")]


# --- call history -----------------------------------------------------------------------------


def test_history_matches_the_canonical_calls_in_every_ext_format(client, control):
    control.post("calls/generate", {"count": 300, "days": 20, "seed": 7})
    now = datetime.now(UTC)
    rows = client.get_call_list(list(control.get("state")["numbers"]), now - timedelta(days=21), now)
    canonical = {(c["num"], c["started_at"][:19]): c for c in control.get("calls")}
    assert len(rows) == 300
    seen_styles = set()
    for row in rows:
        call = canonical[(row.line, row.started_at.isoformat()[:19])]
        assert row.direction == (Direction.OUTBOUND if call["direction"] == 1 else Direction.INBOUND)
        assert row.duration == call["duration"] and row.record_file_id == call["record_file_id"]
        assert parse_phone(row.ext_num).e164 == call["ext_e164"]
        raw = row.ext_num
        seen_styles.add(
            "internal"
            if len(raw) <= 4
            else "810"
            if raw.startswith("810")
            else "+7"
            if raw.startswith("+")
            else raw[0]
            if len(raw) == 11
            else "10"
        )
    assert seen_styles == set(EXT_FORMATS) - {"7"} | {"7"}


def test_the_one_month_rules(sandbox, control):
    tokens = pair(sandbox.url, control.authorization_token)
    now = datetime.now(UTC) + timedelta(hours=3)

    def ask(start, end):
        body = {
            "nums": ["4990000000"],
            "periodStart": f"{start:%Y-%m-%d %H:%M:%S}",
            "periodEnd": f"{end:%Y-%m-%d %H:%M:%S}",
        }
        return bearer(sandbox.url, tokens["accessToken"], "request/getcalllist", json=body)

    assert ask(now - timedelta(days=20), now).status_code == 200
    too_old = ask(now - timedelta(days=40), now - timedelta(days=35))
    assert too_old.status_code == 400 and "one month" in too_old.json()["error"]["errorMessage"]
    assert ask(now - timedelta(days=3), now - timedelta(days=4)).status_code == 400
    bad = bearer(
        sandbox.url,
        tokens["accessToken"],
        "request/getcalllist",
        json={"nums": ["4990000000"], "periodStart": "yesterday"},
    )
    assert "periodStart" in bad.json()["error"]["errorMessage"]


def test_result_by_hash_repeats_the_answer(client, control):
    control.post("calls/generate", {"count": 5, "days": 1})
    now = datetime.now(UTC)
    rows = client.get_call_list(["4990000000", "4950000000", "4950000001"], now - timedelta(days=2), now)
    result = client.get_request_result(control_hash := _last_hash(client, now))
    assert len(result["rowset"]) == len(rows) and control_hash


def _last_hash(client, now) -> str:
    result = client._call(
        "request/getcalllist",
        "POST",
        json={
            "nums": ["4990000000", "4950000000", "4950000001"],
            "periodStart": f"{(now - timedelta(days=2)).astimezone(client.tz):%Y-%m-%d %H:%M:%S}",
            "periodEnd": f"{now.astimezone(client.tz):%Y-%m-%d %H:%M:%S}",
        },
    )
    return result["requestHash"]


# --- recordings -----------------------------------------------------------------------------


def test_recording_bytes_match_the_sandbox(client, control):
    made = control.post("recordings", {"size": 3 * 1024 * 1024 + 7})
    sink = BytesIO()
    got = client.download_recording(made["id"], sink)
    assert got.sha256 == made["sha256"] == hashlib.sha256(sink.getvalue()).hexdigest()
    assert got.size == made["size"]


def test_recording_not_ready_yet(client, control):
    made = control.post("recordings", {"size": 1000, "ready_in": 60})
    with pytest.raises(RequestRejected, match="not ready") as caught:
        client.download_recording(made["id"], BytesIO())
    assert caught.value.error_code == 1404


# --- faults -----------------------------------------------------------------------------------


def test_timeout_after_the_phone_rang_is_outcome_unknown_and_rings_once(client, control):
    control.post("faults", {"method": "callback/create", "kind": "timeout", "delay": 3, "after_effect": True})
    with pytest.raises(OutcomeUnknown):
        client.create_callback("89161234567", "4990000000")
    assert len(control.get("callbacks")) == 1
    assert control.get("stats")["callback/create"] == 1


@pytest.mark.parametrize("kind", ["500", "html502", "html200", "empty", "drop"])
def test_read_faults_are_retried_until_they_pass(client, control, kind):
    control.post("faults", {"method": "Vats/settings/get", "kind": kind, "count": 2})
    assert client.get_pbx_settings(["4990000000"])[0].num == "4990000000"
    assert control.get("stats")["Vats/settings/get"] == 3


def test_persistent_faults_give_up_with_operator_unavailable(client, control):
    control.post("faults", {"method": "Vats/settings/get", "kind": "html502", "count": None})
    with pytest.raises(OperatorUnavailable):
        client.get_pbx_settings(["4990000000"])


def test_429_is_waited_out(client, control):
    control.post("faults", {"method": "request/getcalllist", "kind": "429", "retry_after": 0.2})
    slept = []
    client.sleep = slept.append
    now = datetime.now(UTC)
    client.get_call_list(["4990000000"], now - timedelta(hours=1), now)
    assert slept == [0.2]


def test_dropped_connection_on_callback_is_outcome_unknown(client, control):
    control.post("faults", {"method": "callback/create", "kind": "drop"})
    with pytest.raises(OutcomeUnknown):
        client.create_callback("89161234567", "4990000000")
    assert len(control.get("callbacks")) == 1


# --- settings -----------------------------------------------------------------------------------


def settings_doc(client) -> dict:
    return copy.deepcopy(client.get_pbx_settings(["4990000000"])[0].raw)


def blocks(doc) -> list[dict]:
    return doc["profiles"][0]["scheduleBlocks"]


def test_valid_change_is_stored_and_empty_ranges_are_accepted(client):
    doc = settings_doc(client)
    assert {"time_start": 86400, "time_end": 86400} in blocks(doc)[0]["scheduleJson"]["schedule"]["days"]["7"]["times"]
    doc["isDoNotDisturbMode"] = 1
    blocks(doc)[0]["redirectNums"][0]["isActive"] = 0
    client.set_pbx_settings([doc])
    again = settings_doc(client)
    assert again["isDoNotDisturbMode"] == 1 and blocks(again)[0]["redirectNums"][0]["isActive"] == 0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: blocks(d)[0]["scheduleJson"]["schedule"]["days"]["1"]["times"].__setitem__(
                0, {"time_start": 30000, "time_end": 72000}
            ),
            "gap 28800-30000",
        ),
        (
            lambda d: blocks(d)[0]["scheduleJson"]["schedule"]["days"]["2"]["times"].__setitem__(
                0, {"time_start": 20000, "time_end": 72000}
            ),
            "overlap",
        ),
        (
            lambda d: blocks(d)[0]["scheduleJson"]["schedule"]["days"]["3"]["times"].__setitem__(
                0, {"time_start": 72000, "time_end": 28800}
            ),
            "bad time range",
        ),
        (lambda d: blocks(d)[0]["redirectNums"][0].__setitem__("dialTime", 91), "dialTime"),
        (lambda d: blocks(d)[0]["redirectNums"][0].__setitem__("num", "12345"), "forwarding number 12345"),
        (lambda d: d.__setitem__("standartPhoneDialTime", 0), "standartPhoneDialTime"),
        (lambda d: d["profiles"][0].__setitem__("workdayDefDay", 3), "workdayDefDay"),
        (lambda d: d.__setitem__("contractNum", "1"), "read-only"),
        (lambda d: blocks(d)[1].__setitem__("dialModeCode", 5), "dialModeCode"),
    ],
)
def test_documented_rules_are_enforced(client, edit, message):
    doc = settings_doc(client)
    edit(doc)
    with pytest.raises(RequestRejected, match=message):
        client.set_pbx_settings([doc])


def test_forwarding_numbers_in_all_documented_forms(client):
    doc = settings_doc(client)
    for redirect, number in zip(
        blocks(doc)[0]["redirectNums"], ["9001234567", "89001234567", "+79001234567"], strict=False
    ):
        redirect["num"] = number
    client.set_pbx_settings([doc])


def test_sandbox_process_starts_and_answers(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    token_file = tmp_path / "token"
    process = subprocess.Popen(
        [sys.executable, "-m", "integration.sandbox", "--port", "0", "--token-file", str(token_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "operator sandbox on http://127.0.0.1:" in line
        url = line.split()[3]
        deadline = time.time() + 10
        while time.time() < deadline:
            state = requests.get(url + "/_sandbox/state", timeout=2).json()
            if state:
                break
        assert state["authorization_token"] == token_file.read_text()
    finally:
        process.terminate()
        process.wait(10)
