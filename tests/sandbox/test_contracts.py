"""One sandbox, many contracts: each with its own tokens, numbers and data, none seeing another's."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import BytesIO

import phonenumbers
import pytest
import requests

from integration.errors import RequestRejected
from integration.operator.factory import build_operator_client
from integration.settings import load_settings
from tests.conftest import NUMBERS, ROOT, SandboxControl, make_env
from tests.sandbox.test_sandbox import bearer, pair

B_NUMBERS = ["4991110000", "4991110001"]


def period(days: float = 2) -> dict:
    now = datetime.now(UTC) + timedelta(hours=3)  # Moscow
    return {"periodStart": f"{now - timedelta(days=days):%Y-%m-%d %H:%M:%S}", "periodEnd": f"{now:%Y-%m-%d %H:%M:%S}"}


@pytest.fixture
def other(control: SandboxControl) -> dict:
    """Contract "b" beside the default one."""
    return control.post("contracts", {"id": "b", "numbers": B_NUMBERS, "contract": "555001", "seed": 3})


def test_the_default_contract_is_the_one_made_at_start(control, other):
    listed = control.get("contracts")
    assert [(c["id"], c["numbers"]) for c in listed] == [("default", list(NUMBERS)), ("b", B_NUMBERS)]
    assert all("authorization_token" not in c for c in listed)
    default = control.contract("default").get("state")
    assert default["authorization_token"] == control.authorization_token
    assert default["numbers"] == control.get("state")["numbers"] == list(NUMBERS)


def test_a_new_contract_answers_with_its_own_token_and_numbers(sandbox, control, other):
    assert other["id"] == "b" and other["numbers"] == B_NUMBERS and other["contract"] == "555001"
    state = control.contract("b").get("state")
    assert state["authorization_token"] == other["authorization_token"] != control.authorization_token
    tokens = pair(sandbox.url, other["authorization_token"])
    answer = bearer(sandbox.url, tokens["accessToken"], "Vats/settings/get", json={"nums": B_NUMBERS})
    assert [(s["num"], s["contractNum"]) for s in answer.json()["result"]["vatsSettings"]] == [
        (B_NUMBERS[0], "555001"),
        (B_NUMBERS[1], "555001"),
    ]


def test_the_product_client_works_on_another_contract(sandbox, control, other, redis_conn):
    env = make_env(sandbox.url, other["authorization_token"], OPERATOR_NUMBERS=",".join(B_NUMBERS))
    client = build_operator_client(load_settings(env, dotenv="/nonexistent/.env"), redis_conn)
    client.sleep = lambda seconds: None
    client.create_callback("89161234567", B_NUMBERS[1])
    now = datetime.now(UTC)
    rows = client.get_call_list(B_NUMBERS, now - timedelta(minutes=5), now + timedelta(minutes=1))
    assert [(r.line, r.ext_num) for r in rows] == [(B_NUMBERS[1], "89161234567")]
    assert [c["PhoneFrom"] for c in control.contract("b").get("callbacks")] == [B_NUMBERS[1]]
    assert control.get("callbacks") == [] and control.get("calls") == []


def test_a_token_never_reaches_another_contracts_data(sandbox, control, other):
    b = control.contract("b")
    b.post("calls/generate", {"count": 20, "days": 1, "recording_ratio": 1.0, "seed": 5})
    recording = b.post("recordings", {"size": 1000})
    b_access = pair(sandbox.url, other["authorization_token"])["accessToken"]
    b_hash = bearer(sandbox.url, b_access, "request/getcalllist", json={"nums": B_NUMBERS, **period()})
    b_hash = b_hash.json()["result"]["requestHash"]
    a_access = pair(sandbox.url, control.authorization_token)["accessToken"]

    def ask(method: str, **kw) -> requests.Response:
        return bearer(sandbox.url, a_access, method, **kw)

    history = ask("request/getcalllist", json={"nums": B_NUMBERS, **period()})
    assert history.status_code == 400 and "not on this contract" in history.json()["error"]["errorMessage"]
    callback = ask("callback/create", params={"PhoneTo": "89161234567", "PhoneFrom": B_NUMBERS[0]})
    assert callback.status_code == 400 and "not a number of this contract" in callback.json()["error"]["errorMessage"]
    for record_file_id in (recording["id"], b.get("calls")[0]["record_file_id"]):
        assert ask("request/getcallrecordfile", params={"recordFileId": record_file_id}).status_code == 404
    assert ask("request/getrequestresultbyhash", params={"requestHash": b_hash}).status_code == 404
    assert ask("Vats/settings/get", json={"nums": B_NUMBERS}).status_code == 400
    assert b.get("callbacks") == [] and b.get("stats") == {
        "auth/integrationapi/create": 1,
        "auth/integrationapi/create 200": 1,
        "auth.create": 1,
        "request/getcalllist": 1,
        "request/getcalllist 200": 1,
    }
    assert control.get("stats")["request/getcalllist 400"] == 1


def test_each_contract_has_its_own_pair(sandbox, control, other):
    a = pair(sandbox.url, control.authorization_token)
    b = pair(sandbox.url, other["authorization_token"])
    assert (
        bearer(sandbox.url, other["authorization_token"], "auth/integrationapi/create").status_code == 200
    )  # b's new pair
    assert bearer(sandbox.url, a["accessToken"], "Vats/settings/get", json={"nums": [NUMBERS[0]]}).status_code == 200
    assert bearer(sandbox.url, b["accessToken"], "Vats/settings/get", json={"nums": B_NUMBERS}).status_code == 401
    assert bearer(sandbox.url, other["authorization_token"], "auth/integrationapi/refresh").status_code == 401


def test_control_endpoints_act_on_their_contract_only(sandbox, control, other):
    b = control.contract("b")
    a_tokens, b_tokens = pair(sandbox.url, control.authorization_token), pair(sandbox.url, other["authorization_token"])

    def a_reads() -> int:
        return bearer(
            sandbox.url, a_tokens["accessToken"], "Vats/settings/get", json={"nums": [NUMBERS[0]]}
        ).status_code

    def b_reads() -> int:
        return bearer(sandbox.url, b_tokens["accessToken"], "Vats/settings/get", json={"nums": B_NUMBERS}).status_code

    b.post("faults", {"method": "Vats/settings/get", "kind": "500"})
    assert (a_reads(), b_reads(), b_reads()) == (200, 500, 200)
    b.post("switch", {"enabled": False})
    assert (a_reads(), b_reads()) == (200, 403)
    assert b.get("state")["enabled"] is False and control.get("state")["enabled"] is True
    b.post("switch", {"enabled": True})
    b.post("tokens/invalidate")
    assert (a_reads(), b_reads()) == (200, 401)
    assert b.post("token-lifetimes", {"access": 60}) == {"access_ttl": 60, "refresh_ttl": 25 * 3600}
    assert control.get("state")["access_ttl"] == 24 * 3600
    b.post("authorization-token/revoke")
    assert bearer(sandbox.url, other["authorization_token"], "auth/integrationapi/create").status_code == 401
    assert b.get("state")["authorization_token"] is None and control.authorization_token
    rotated = b.post("authorization-token/rotate")["authorization_token"]
    assert bearer(sandbox.url, rotated, "auth/integrationapi/create").status_code == 200
    assert b.post("calls/generate", {"count": 7, "days": 1})["count"] == 7
    assert len(b.get("calls")) == 7 and control.get("calls") == []
    assert {c["num"] for c in b.get("calls")} <= set(B_NUMBERS)
    assert b.get("stats")["Vats/settings/get 500"] == 1 and "Vats/settings/get 500" not in control.get("stats")
    assert b.delete("stats") == {} and control.get("stats")
    assert b.post("reset")["authorization_token"] == b.get("state")["authorization_token"] != rotated
    assert b.get("calls") == [] and b.get("faults") == []


def test_clock_and_reset_are_the_whole_sandbox(sandbox, control, other):
    b_tokens = pair(sandbox.url, other["authorization_token"])
    control.post("clock", {"shift": 24 * 3600 + 1})
    assert (
        bearer(sandbox.url, b_tokens["accessToken"], "Vats/settings/get", json={"nums": B_NUMBERS}).status_code == 401
    )
    assert control.contract("b").get("state")["now"][:13] == control.get("state")["now"][:13]
    control.post("reset")
    assert [c["id"] for c in control.get("contracts")] == ["default"]
    assert requests.get(control.url + "/_sandbox/contracts/b/state", timeout=5).status_code == 404
    assert bearer(sandbox.url, other["authorization_token"], "auth/integrationapi/create").status_code == 401


def test_a_removed_contract_is_gone_with_its_tokens_and_numbers(sandbox, control, other):
    tokens = pair(sandbox.url, other["authorization_token"])
    assert control.delete("contracts/b") == {"removed": "b"}
    assert bearer(sandbox.url, tokens["accessToken"], "Vats/settings/get", json={"nums": B_NUMBERS}).status_code == 401
    assert bearer(sandbox.url, other["authorization_token"], "auth/integrationapi/create").status_code == 401
    assert requests.delete(control.url + "/_sandbox/contracts/default", timeout=5).status_code == 400
    assert control.post("contracts", {"numbers": B_NUMBERS})["numbers"] == B_NUMBERS  # free again


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"numbers": [NUMBERS[0]]}, 409),  # the default contract's
        ({"id": "b"}, 409),
        ({"numbers": ["12345"]}, 400),
        ({"numbers": [B_NUMBERS[0], B_NUMBERS[0]]}, 400),
        ({"id": "no/slashes"}, 400),
        ({"count": 0}, 400),
    ],
)
def test_refused_contracts(control, other, body, status):
    assert requests.post(control.url + "/_sandbox/contracts", json=body, timeout=5).status_code == status


def test_unknown_contracts_are_404(control):
    for path in ("state", "calls", "stats", "faults", "callbacks"):
        assert requests.get(f"{control.url}/_sandbox/contracts/nope/{path}", timeout=5).status_code == 404
    assert requests.post(f"{control.url}/_sandbox/contracts/nope/calls/generate", json={}, timeout=5).status_code == 404


def test_history_asked_for_at_creation_is_made_on_first_use(sandbox, control):
    made = control.post("contracts", {"number_count": 3, "calls": 30, "days": 3})
    assert made["id"] == "c1" and len(made["numbers"]) == 3
    access = pair(sandbox.url, made["authorization_token"])["accessToken"]
    rows = bearer(sandbox.url, access, "request/getcalllist", json={"nums": made["numbers"], **period(4)})
    assert len(rows.json()["result"]["rowset"]) == len(control.contract("c1").get("calls")) == 30


def test_same_seed_recordings_differ_between_contracts(control):
    first, second = control.post("contracts", {}), control.post("contracts", {})
    ids = [control.contract(c["id"]).post("recordings", {"size": 100, "seed": 9})["id"] for c in (first, second)]
    assert ids[0] != ids[1]


def test_recordings_download_on_another_contract(sandbox, control, other, redis_conn):
    made = control.contract("b").post("recordings", {"size": 200_000})
    env = make_env(sandbox.url, other["authorization_token"], OPERATOR_NUMBERS=",".join(B_NUMBERS))
    client = build_operator_client(load_settings(env, dotenv="/nonexistent/.env"), redis_conn)
    assert client.download_recording(made["id"], BytesIO()).sha256 == made["sha256"]
    with pytest.raises(RequestRejected):
        client.get_pbx_settings([NUMBERS[0]])


def test_thousands_of_contracts_at_once(sandbox, control):
    made = control.post("contracts", {"count": 5000, "number_count": 2})["contracts"]
    numbers = [n for c in made for n in c["numbers"]]
    assert len(made) == 5000 and len({c["id"] for c in made}) == 5000
    assert len(set(numbers)) == 10000 and not set(numbers) & set(NUMBERS)
    assert all(phonenumbers.is_valid_number(phonenumbers.parse("+7" + n)) for n in numbers[::97] + numbers[-1:])
    assert len({c["authorization_token"] for c in made}) == 5000
    assert len(control.get("contracts")) == 5001
    assert len(control.get("contracts?tokens=1")[-1]["authorization_token"]) > 0
    last = made[-1]
    access = pair(sandbox.url, last["authorization_token"])["accessToken"]
    answer = bearer(sandbox.url, access, "Vats/settings/get", json={"nums": last["numbers"]})
    assert [s["num"] for s in answer.json()["result"]["vatsSettings"]] == last["numbers"]


def test_sandbox_process_starts_with_many_contracts(tmp_path):
    contracts_file = tmp_path / "contracts.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "integration.sandbox",
            "--port",
            "0",
            "--calls",
            "0",
            "--contracts",
            "300",
            "--contract-numbers",
            "2",
            "--contract-calls",
            "5",
            "--contracts-file",
            str(contracts_file),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().split()[3]
        assert process.stdout.readline().startswith("300 more contracts")
        contracts = json.loads(contracts_file.read_text())
        assert len(contracts) == 300 and len({n for c in contracts for n in c["numbers"]}) == 600
        listed = requests.get(url + "/_sandbox/contracts", timeout=5).json()
        assert [c["id"] for c in listed] == ["default"] + [c["id"] for c in contracts]
        last = contracts[-1]
        access = pair(url, last["authorization_token"])["accessToken"]
        rows = bearer(url, access, "request/getcalllist", json={"nums": last["numbers"], **period(8)})
        assert len(rows.json()["result"]["rowset"]) == 5
    finally:
        process.terminate()
        process.wait(10)
