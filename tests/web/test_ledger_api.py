"""GET /api/calls, /api/contacts, /api/activities; contacts import and reconcile from the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integration.crm.local.adapter import LocalCrm
from integration.phone import parse_phone
from integration.services import calls, deliveries
from tests.conftest import API_TOKEN, SECRET, run_cli
from tests.web.test_click_to_call import assert_problem

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def synced(app, control):
    control.post("calls/generate", {"count": 40, "days": 0.5, "seed": 12})
    runtime = app.extensions["vats"]
    LocalCrm(runtime.engine).create_contact(
        parse_phone(next(c["ext_e164"] for c in control.get("calls") if c["ext_e164"])), "Anna"
    )
    result = calls.run_sync(runtime)
    for call_id in result.new_ids:
        deliveries.deliver_call(runtime, call_id)
    return control.get("calls")


def test_calls_are_listed_newest_first_with_their_delivery(http, synced):
    body = http.get("/api/calls?limit=25", headers=AUTH).json
    assert len(body["items"]) == 25 and body["next_offset"] == 25
    rest = http.get("/api/calls?limit=25&offset=25", headers=AUTH).json
    assert len(rest["items"]) == 15 and rest["next_offset"] is None
    items = body["items"] + rest["items"]
    assert [i["started_at"] for i in items] == sorted((i["started_at"] for i in items), reverse=True)
    assert {i["delivery"] for i in items} == {"delivered"}


def test_call_filters(http, synced):
    sample = next(c for c in synced if c["ext_e164"])
    by_number = http.get("/api/calls", query_string={"number": "8" + sample["ext_e164"][2:]}, headers=AUTH).json[
        "items"
    ]
    assert by_number and all(i["external"]["e164"] == sample["ext_e164"] for i in by_number)
    inbound = http.get("/api/calls?direction=inbound&line=4990000000", headers=AUTH).json["items"]
    assert all(i["direction"] == "inbound" and i["line"] == "4990000000" for i in inbound)
    missed = http.get("/api/calls?status=missed", headers=AUTH).json["items"]
    assert all(i["status"] == "missed" for i in missed)
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d")
    assert http.get(f"/api/calls?since={tomorrow}", headers=AUTH).json["items"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("offset=-1", "offset"),
        ("direction=up", "direction"),
        ("status=busy", "status"),
        ("since=yesterday", "since"),
        ("until=2026-11-20T10:00", "until"),
        ("number=abc", "number"),
        ("line=4111111111", "line"),
    ],
)
def test_bad_filters_are_422_naming_the_field(http, query, field):
    body = assert_problem(http.get(f"/api/calls?{query}", headers=AUTH), 422)
    assert field in body["errors"]


def test_contacts_and_activities_of_the_local_crm(http, synced):
    contacts = http.get("/api/contacts", headers=AUTH).json["items"]
    assert [c["name"] for c in contacts] == ["Anna"]
    assert (
        http.get("/api/contacts", query_string={"phone": contacts[0]["phone"]}, headers=AUTH).json["items"] == contacts
    )
    activities = http.get(f"/api/activities?contact_id={contacts[0]['id']}", headers=AUTH).json["items"]
    assert activities and all(contacts[0]["id"] in a["contact_ids"] for a in activities)
    assert len(http.get("/api/activities?limit=500", headers=AUTH).json["items"]) == 40
    assert_problem(http.get("/api/calls"), 401)


def test_a_contact_id_filter_is_matched_literally(http, synced):
    """``%`` and ``_`` are not wildcards: a filter never shows another contact's activities."""
    contact = http.get("/api/contacts", headers=AUTH).json["items"][0]
    own = http.get("/api/activities", query_string={"contact_id": contact["id"]}, headers=AUTH).json["items"]
    assert own
    for pattern in ("%", "_" * len(str(contact["id"])), f"{contact['id']}%", '%"'):
        answer = http.get("/api/activities", query_string={"contact_id": pattern}, headers=AUTH)
        assert answer.status_code == 200 and answer.json["items"] == []


def test_contacts_import(service_env, tmp_path):
    csv = tmp_path / "contacts.csv"
    csv.write_text(
        "Name,Phone\nAnna,8 (916) 123-45-67\nBoris,+7 495 123 45 67\nBad,call me\nShort,101\n", encoding="utf-8"
    )
    result = run_cli("contacts", "import", str(csv), env=service_env)
    assert result.returncode == 1
    assert "2 contact(s) added, 2 row(s) skipped" in result.stdout
    assert "line 4: phone 'call me': contains letters" in result.stderr and "line 5" in result.stderr
    headless = tmp_path / "headless.csv"
    headless.write_text("89161234567\n")
    bad = run_cli("contacts", "import", str(headless), env=service_env)
    assert bad.returncode == 2 and "header" in bad.stderr
    webhook_crm = service_env | {"CRM_BACKEND": "webhook", "CRM_WEBHOOK_URL": "https://crm.test/hook"}
    elsewhere = run_cli("contacts", "import", str(csv), env=webhook_crm | {"CRM_WEBHOOK_SECRET": SECRET})
    assert elsewhere.returncode == 2 and "CRM_BACKEND webhook keeps its contacts itself" in elsewhere.stderr


def test_reconcile_command(service_env, control):
    control.post(
        "calls/generate",
        {
            "count": 10,
            "since": (datetime.now(UTC) - timedelta(days=2, hours=1)).isoformat(),
            "until": (datetime.now(UTC) - timedelta(days=1, hours=23)).isoformat(),
            "seed": 3,
        },
    )
    days = sorted(
        {
            datetime.fromisoformat(c["started_at"]).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Moscow")).date()
            for c in control.get("calls")
        }
    )
    outputs = [run_cli("reconcile", "--date", day.isoformat(), env=service_env) for day in days]
    assert all(o.returncode == 0 for o in outputs), [o.stderr for o in outputs]
    assert sum(int(o.stdout.split(": ")[2].split(" delivered")[0]) for o in outputs) == 10
    again = run_cli("reconcile", "--date", days[0].isoformat(), env=service_env)
    assert "0 new to the ledger" in again.stdout
    assert run_cli("reconcile", "--date", "2026-02-30", env=service_env).returncode == 2
