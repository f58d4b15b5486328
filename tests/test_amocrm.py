"""The ``amocrm`` backend: documented payloads, lookups, limits, tokens, and webhooks → rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import responses

from integration.config import load_settings
from integration.crm.amocrm import AmoCrm, AmoRest
from integration.crm.base import CrmError
from integration.models import Activity, CallStatus, Direction
from integration.phone import parse_phone
from integration.ratelimit import Pacer

FIXTURES = Path(__file__).parent / "fixtures" / "amocrm"
BASE = "https://example.amocrm.ru"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


class FakeTokens:
    def __init__(self):
        self.current, self.expired = "access-1", []

    def access_token(self) -> str:
        return self.current

    def expire(self, token: str) -> None:
        self.expired.append(token)
        self.current = "access-2"


@pytest.fixture
def crm(redis_conn):
    slept = []
    pacer = Pacer(redis_conn, "test:amocrm:pace", rate=1000, burst=50)
    rest = AmoRest(BASE, FakeTokens(), pacer, sleep=slept.append)
    rest.slept = slept
    return AmoCrm(rest)


@responses.activate
def test_a_call_is_sent_with_the_documented_fields(crm):
    responses.post(f"{BASE}/api/v4/calls", json={"_embedded": {"calls": [{"id": 77}]}})
    activity = Activity(
        call_id="rec:1", direction=Direction.INBOUND, status=CallStatus.ANSWERED, started_at=NOW, duration=20,
        line="4990000000", ext_e164="+79161234567", ext_raw="89161234567", responsible_user="8375357",
        recording_url="https://bridge.example/recordings/a.mp3?sig=x",
    )  # fmt: skip
    assert crm.write_activity(activity) == "77"
    [sent] = json.loads(responses.calls[0].request.body)
    documented = fixture("calls_request.json")[0]
    assert set(documented) <= set(sent) | {"call_status"}  # every documented field we can know is there
    assert sent == {
        "direction": "inbound",
        "uniq": "rec:1",
        "duration": 20,
        "source": "vats-bridge",
        "phone": "+79161234567",
        "link": "https://bridge.example/recordings/a.mp3?sig=x",
        "call_status": 4,
        "call_result": "answered",
        "created_at": int(NOW.timestamp()),
        "responsible_user_id": 8375357,
        "created_by": 8375357,
    }
    assert responses.calls[0].request.headers["Authorization"] == "Bearer access-1"


@responses.activate
def test_lookups_keep_only_contacts_whose_phone_matches(crm):
    listed = fixture("contacts_list.json")
    other = dict(
        listed["_embedded"]["contacts"][0], id=5, custom_fields_values=None, name="mentions 9161234567 in a note"
    )
    listed["_embedded"]["contacts"].append(other)
    responses.get(f"{BASE}/api/v4/contacts", json=listed)
    [found] = crm.find_contacts(parse_phone("8 916 123-45-67"))
    assert (found.id, found.name, found.updated_at) == ("406322", "Sam", datetime.fromtimestamp(1686670710, UTC))
    assert responses.calls[0].request.params == {"query": "9161234567", "limit": "50"}
    responses.replace(responses.GET, f"{BASE}/api/v4/contacts", status=204)
    assert crm.find_contacts(parse_phone("+79161234567")) == []


@responses.activate
def test_unknown_numbers_get_a_contact(crm):
    responses.post(f"{BASE}/api/v4/contacts", json={"_embedded": {"contacts": [{"id": 12, "request_id": "0"}]}})
    created = crm.create_contact(parse_phone("+79161234567"))
    assert created.id == "12"
    assert json.loads(responses.calls[0].request.body) == [
        {
            "name": "+79161234567",
            "custom_fields_values": [
                {"field_code": "PHONE", "values": [{"value": "+79161234567", "enum_code": "WORK"}]}
            ],
        }
    ]


@responses.activate
def test_429_backs_off_and_a_401_refreshes_once(crm):
    with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as ordered:
        ordered.get(f"{BASE}/api/v4/contacts", status=429)
        ordered.get(f"{BASE}/api/v4/contacts", status=429)
        ordered.get(f"{BASE}/api/v4/contacts", status=401)
        ordered.get(f"{BASE}/api/v4/contacts", status=204)
        assert crm.find_contacts(parse_phone("+79161234567")) == []
        assert [c.request.headers["Authorization"] for c in ordered.calls][-1] == "Bearer access-2"
    assert crm.rest.slept == [1.0, 2.0] and crm.rest.tokens.expired == ["access-1"]
    with responses.RequestsMock() as limited:
        limited.get(f"{BASE}/api/v4/contacts", status=429)
        with pytest.raises(CrmError) as caught:
            crm.find_contacts(parse_phone("+79161234567"))
    assert caught.value.retryable


# --- webhooks → rules ------------------------------------------------------------------------------

RULES = """
[users]
"8375357" = "4990000000"

[[rules]]
name = "call back lost deals"
event = "deal.closed"
when = { status = "lost" }
action = "callback"
delay = "1h"
"""


@pytest.fixture
def amo_app(service_env, tmp_path, redis_conn):
    from integration import create_app

    config = tmp_path / "integration.toml"
    config.write_text(RULES)
    env = service_env | {
        "CRM_BACKEND": "amocrm",
        "AMOCRM_BASE_URL": BASE,
        "AMOCRM_LONG_LIVED_TOKEN": "llt",
        "AMOCRM_WEBHOOK_SECRET": "path-secret-123",
        "INTEGRATION_CONFIG": str(config),
    }
    app = create_app(load_settings(env, dotenv="/nonexistent"))
    yield app
    app.extensions["vats"].engine.dispose()


LOST_LEAD = {
    "leads[status][0][id]": "25399013",
    "leads[status][0][status_id]": "143",
    "leads[status][0][pipeline_id]": "3104455",
    "leads[status][0][old_status_id]": "142000",
    "leads[status][0][old_pipeline_id]": "3104455",
    "account[id]": "30000000",
    "account[subdomain]": "example",
}


@responses.activate
def test_a_lost_deal_in_amocrm_schedules_a_callback_in_business_hours(amo_app, redis_conn, monkeypatch):
    import integration.jobs as jobs

    responses.add_passthru("http://127.0.0.1")
    http = amo_app.test_client()
    assert http.post("/webhooks/amocrm/forged", data=LOST_LEAD).status_code == 404
    first = http.post("/webhooks/amocrm/path-secret-123", data=LOST_LEAD)
    again = http.post("/webhooks/amocrm/path-secret-123", data=LOST_LEAD)  # amoCRM retries
    assert first.json == again.json == {"accepted": 1}
    rt = amo_app.extensions["vats"]
    [event_id] = [key for key in rt.event_ledger.unhandled(datetime.now(UTC).replace(year=2100))]
    responses.get(
        f"{BASE}/api/v4/leads/25399013",
        json={"id": 25399013, "responsible_user_id": 8375357, "_embedded": {"contacts": [{"id": 406322}]}},
    )
    responses.get(f"{BASE}/api/v4/contacts", json=fixture("contacts_list.json"))
    monkeypatch.setattr(jobs, "_runtime", rt)
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=ZoneInfo("Europe/Moscow"))
    monkeypatch.setattr(jobs, "utc_now", lambda: saturday.astimezone(UTC))
    outcome = jobs.handle_event(event_id)
    assert "callback 4990000000 → +79161234567 at 2026-11-30T06:00:00+00:00" in outcome  # Monday 09:00 MSK
    assert responses.calls[0].request.headers["Authorization"] == "Bearer llt"
    assert rt.event_ledger.get(event_id).data == {"deal_id": "25399013", "status": "lost", "source": "amocrm"}
