"""The ``amocrm`` backend: documented payloads, lookups, limits, tokens, and webhooks → rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import responses

from integration.crm.amocrm.adapter import AmoCrm, AmoRest
from integration.crm.base import CrmError
from integration.delivery import Policies, match_call
from integration.ledger.db import make_engine
from integration.ledger.deliveries import DeliveryLedger
from integration.ledger.tables import calls
from integration.models import Activity, Call, CallStatus, Direction, Match, MatchKind
from integration.phone import parse_phone
from integration.ratelimit import Pacer
from tests.amocrm_stand_in import AmoStandIn
from tests.conftest import app_for, config_file, serve

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
def ledger(sqlite_url) -> Iterator[DeliveryLedger]:
    engine = make_engine(sqlite_url)
    rows = [
        dict(
            id=f"rec:{n}", line="4990000000", direction="inbound", status="answered", started_at=NOW, duration=20,
            ext_raw="89161234567", ext_e164="+79161234567", ext_internal=False, first_seen_at=NOW,
        )
        for n in (1, 2, 3)
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(calls.insert(), rows)
    deliveries = DeliveryLedger(engine)
    deliveries.ensure([row["id"] for row in rows], "amocrm", NOW)
    yield deliveries
    engine.dispose()


def rest_for(base: str, redis_conn) -> AmoRest:
    slept: list[float] = []
    rest = AmoRest(base, FakeTokens(), Pacer(redis_conn, "test:amocrm:pace", rate=1000, burst=50), sleep=slept.append)
    rest.slept = slept
    return rest


@pytest.fixture
def crm(redis_conn, ledger):
    return AmoCrm(rest_for(BASE, redis_conn), ledger)


def activity(**changes) -> Activity:
    values = dict(
        call_id="rec:1", direction=Direction.INBOUND, status=CallStatus.ANSWERED, started_at=NOW, duration=20,
        line="4990000000", ext_e164="+79161234567", ext_raw="89161234567", responsible_user="8375357",
        recording_url="https://bridge.example/recordings/a.mp3?sig=x", contact_ids=("406322",),
    )  # fmt: skip
    return Activity(**values | changes)


@responses.activate
def test_a_call_is_sent_with_the_documented_fields(crm):
    responses.post(f"{BASE}/api/v4/calls", json=fixture("calls_response.json"))
    assert crm.write_activity(activity()) == "contacts:406322:44155901"
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
def test_several_contacts_with_the_number_follow_the_multiple_match_policy(crm):
    listed = fixture("contacts_list.json")
    newer = dict(listed["_embedded"]["contacts"][0], id=406400, name="Sam (new card)", updated_at=1700000000)
    listed["_embedded"]["contacts"].append(newer)
    responses.get(f"{BASE}/api/v4/contacts", json=listed)
    call = Call(
        id="rec:1", line="4990000000", direction=Direction.INBOUND, status=CallStatus.ANSWERED, started_at=NOW,
        duration=20, ext_raw="89161234567", ext_e164="+79161234567", ext_internal=False,
    )  # fmt: skip
    for policy, chosen in (("most_recent", ("406400",)), ("all", ("406322", "406400")), ("none", ())):
        match = match_call(call, crm, Policies(multiple=policy), own_numbers=[], region="RU")
        assert (match.contact_ids, match.candidates) == (chosen, ("406322", "406400")), policy


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


def test_a_401_does_not_use_up_a_back_off(crm):
    with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as ordered:
        ordered.get(f"{BASE}/api/v4/contacts", status=401)
        for _ in range(3):
            ordered.get(f"{BASE}/api/v4/contacts", status=429)
        ordered.get(f"{BASE}/api/v4/contacts", status=204)
        assert crm.find_contacts(parse_phone("+79161234567")) == []
    assert crm.rest.slept == [1.0, 2.0, 4.0] and crm.rest.tokens.expired == ["access-1"]


@responses.activate
def test_an_unknown_number_becomes_an_incoming_lead_with_the_documented_fields(crm):
    responses.post(f"{BASE}/api/v4/leads/unsorted/sip", json=fixture("unsorted_sip_response.json"))
    unknown = activity(contact_ids=(), create_lead=True, direction=Direction.OUTBOUND, recording_url=None)
    assert crm.write_activity(unknown) == "leads:1009553:"
    [sent] = json.loads(responses.calls[0].request.body)
    [documented] = fixture("unsorted_sip_request.json")
    assert set(sent) == set(documented) - {"pipeline_id", "request_id"}
    assert set(sent["metadata"]) == set(documented["metadata"]) - {"link"}  # no recording yet
    assert sent == {
        "source_name": "vats-bridge",
        "source_uid": "rec:1",
        "created_at": int(NOW.timestamp()),
        "metadata": {
            "is_call_event_needed": True,
            "uniq": "rec:1",
            "duration": 20,
            "service_code": "vats-bridge",
            "from": "4990000000",  # outbound: our line called the number
            "phone": "+79161234567",
            "called_at": int(NOW.timestamp()),
        },
        "_embedded": {
            "leads": [{"name": "Call +79161234567", "responsible_user_id": 8375357}],
            "contacts": [
                {
                    "name": "+79161234567",
                    "custom_fields_values": [
                        {"field_code": "PHONE", "values": [{"value": "+79161234567", "enum_code": "WORK"}]}
                    ],
                }
            ],
        },
    }


@responses.activate
def test_a_call_without_a_contact_is_not_sent(crm):
    assert crm.write_activity(activity(contact_ids=())) == ""
    assert not responses.calls  # amoCRM would drop it: it logs calls only on numbers it knows


@pytest.fixture
def account(redis_conn, ledger):
    """The amoCRM stand-in over HTTP, and an adapter talking to it."""
    stand_in = AmoStandIn()
    stand_in.add_contact("Sam", "+7 916 123-45-67")
    with serve(stand_in.app) as url:
        yield stand_in, AmoCrm(rest_for(url, redis_conn), ledger)


def lose_answers(stand_in: AmoStandIn, how_many: int = 1) -> None:
    """The next requests reach the account, do their work, and their answers are lost."""
    stand_in.fail_after_rate = 1.0
    stand_in.rng.random = iter([0.5] * how_many + [2.0] * 1000).__next__


def test_a_retry_after_a_lost_answer_finds_the_call_instead_of_logging_it_twice(account, ledger):
    stand_in, crm = account
    lose_answers(stand_in)
    with pytest.raises(CrmError):
        crm.write_activity(activity())
    assert ledger.get("rec:1", "amocrm").crm_id == "unconfirmed"
    [note] = stand_in.call_notes("rec:1")
    assert crm.write_activity(activity()) == f"contacts:{note['entity_id']}:{note['id']}"
    assert len(stand_in.call_notes("rec:1")) == 1
    # A first attempt writes without looking (nothing can be there yet).
    crm.write_activity(activity(call_id="rec:2"))
    assert [m for m, p in stand_in.requests[-1:]] == ["POST"]


def test_an_incoming_lead_is_made_once_despite_a_lost_answer(account, ledger):
    stand_in, crm = account
    unknown = activity(contact_ids=(), create_lead=True, ext_e164="+79035550000", ext_raw="89035550000")
    lose_answers(stand_in)
    with pytest.raises(CrmError):
        crm.write_activity(unknown)
    [lead] = stand_in.unsorted
    [note] = stand_in.call_notes("rec:1")  # the call event amoCRM put on the new lead
    assert crm.write_activity(unknown) == f"leads:{lead['_embedded']['leads'][0]['id']}:{note['id']}"
    assert len(stand_in.unsorted) == 1


def test_a_recording_stored_later_is_added_to_the_calls_note(account, ledger):
    stand_in, crm = account
    crm_id = crm.write_activity(activity(recording_url=None))
    ledger.mark_delivered("rec:1", "amocrm", crm_id, Match(MatchKind.CONTACT), NOW)
    url = "https://bridge.example/recordings/b.mp3?sig=y"
    crm.send("recording.ready", "rec:1", {"call_id": "rec:1", "url": url})
    [note] = stand_in.call_notes("rec:1")
    assert note["params"]["link"] == url and note["params"]["duration"] == 20 and note["note_type"] == "call_in"
    # An incoming lead's call note is found by its uniq.
    unknown = activity(call_id="rec:2", contact_ids=(), create_lead=True, recording_url=None)
    ledger.mark_delivered("rec:2", "amocrm", crm.write_activity(unknown), Match(MatchKind.LEAD), NOW)
    crm.send("recording.ready", "rec:2", {"call_id": "rec:2", "url": url})
    assert stand_in.call_notes("rec:2")[0]["params"]["link"] == url
    with pytest.raises(CrmError) as early:
        crm.send("recording.ready", "rec:3", {"call_id": "rec:3", "url": url})  # rec:3 not logged yet
    assert early.value.retryable


def test_attach_calls_copies_each_call_note_onto_the_lead_once(account, ledger):
    stand_in, crm = account
    for call_id in ("rec:1", "rec:2"):
        ledger.mark_delivered(
            call_id, "amocrm", crm.write_activity(activity(call_id=call_id)), Match(MatchKind.CONTACT), NOW
        )
    crm.attach_calls("555", ["rec:1", "rec:2"], "evt:rule")
    crm.attach_calls("555", ["rec:1", "rec:2"], "evt:rule")  # the event handled twice
    on_lead = [n for n in stand_in.notes.values() if n["entity"] == "leads" and n["entity_id"] == 555]
    assert sorted(n["params"]["uniq"] for n in on_lead) == ["rec:1", "rec:2"]
    assert {n["note_type"] for n in on_lead} == {"call_in"}
    with pytest.raises(CrmError) as waiting:
        crm.attach_calls("555", ["rec:3"], "evt:rule")  # rec:3 still pending: try again later
    assert waiting.value.retryable


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
    env = (
        service_env
        | config_file(tmp_path, RULES)
        | {
            "CRM_BACKEND": "amocrm",
            "AMOCRM_BASE_URL": BASE,
            "AMOCRM_LONG_LIVED_TOKEN": "llt",
            "AMOCRM_WEBHOOK_SECRET": "path-secret-123",
        }
    )
    with app_for(env) as app:
        yield app


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
    import integration.services.rules as service

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
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=ZoneInfo("Europe/Moscow"))
    monkeypatch.setattr(service, "utc_now", lambda: saturday.astimezone(UTC))
    outcome = service.handle_event(rt, event_id)
    assert "callback 4990000000 → +79161234567 at 2026-11-30T06:00:00+00:00" in outcome  # Monday 09:00 MSK
    assert responses.calls[0].request.headers["Authorization"] == "Bearer llt"
    assert rt.event_ledger.get(event_id).data == {"deal_id": "25399013", "status": "lost", "source": "amocrm"}
    # Monday 09:00 MSK: the scheduled job places the callback from the responsible user's number.
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Europe/Moscow")).astimezone(UTC)
    monkeypatch.setattr(service, "utc_now", lambda: monday)
    monkeypatch.setattr(rt.intake, "clock", lambda: monday)
    placed = service.rule_callback(rt, event_id, "call back lost deals")
    assert placed.startswith("queued: ")
    record = rt.intake.accepted(placed.split(": ")[1])
    assert (record.phone_from, record.phone_to, record.crm_user) == ("4990000000", "+79161234567", "8375357")


HOOK = "/webhooks/amocrm/path-secret-123"


def stored_events(app) -> list[str]:
    return app.extensions["vats"].event_ledger.unhandled(datetime.now(UTC).replace(year=2100))


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    return response.get_json(force=True)


@pytest.mark.parametrize(
    "account",
    [
        {"account[subdomain]": "other", "account[id]": "30000000"},
        {"account[subdomain]": "example2", "account[id]": "30000000"},
    ],
)
def test_a_webhook_of_another_account_is_refused(amo_app, redis_conn, account):
    answer = problem(amo_app.test_client().post(HOOK, data=LOST_LEAD | account), 403)
    assert "another amoCRM account" in answer["detail"] and "account[subdomain]" in answer["detail"]
    assert stored_events(amo_app) == []


def test_the_account_id_is_checked_when_it_is_configured(service_env, tmp_path, redis_conn):
    env = service_env | config_file(tmp_path, RULES) | {
        "CRM_BACKEND": "amocrm", "AMOCRM_BASE_URL": BASE, "AMOCRM_LONG_LIVED_TOKEN": "llt",
        "AMOCRM_WEBHOOK_SECRET": "path-secret-123", "AMOCRM_ACCOUNT_ID": "30000000",
    }  # fmt: skip
    with app_for(env) as app:
        http = app.test_client()
        answer = problem(http.post(HOOK, data=LOST_LEAD | {"account[id]": "30000001"}), 403)
        assert "AMOCRM_ACCOUNT_ID" in answer["detail"]
        assert stored_events(app) == []
        assert http.post(HOOK, data=LOST_LEAD).json == {"accepted": 1}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"leads": "x"}, "leads"),
        ({"leads[status]": "x"}, "leads[status]"),
        ({"leads[status][0]": "x"}, "leads[status][0]"),
        ({"leads[status][0][id][x]": "1", "leads[status][0][status_id]": "143"}, "leads[status][0][id]"),
        ({"leads[status][0][id]": "7", "leads[status][0][status_id][0]": "143"}, "leads[status][0][status_id]"),
        ({"leads[status][0][id]": "25399013", "leads[status][0][status_id]": "143",
          "leads[status][0][responsible_user_id][a]": "1"}, "leads[status][0][responsible_user_id]"),
        ({"leads[status][0][id]": "lead-7", "leads[status][0][status_id]": "143"}, "leads[status][0][id]"),
        ({"account": "example"}, "account"),
        ({"account[subdomain][0]": "example"}, "account[subdomain]"),
    ],
)  # fmt: skip
def test_fields_of_an_unexpected_shape_are_422_never_500(amo_app, redis_conn, data, field):
    account = {} if "account" in field else {"account[subdomain]": "example", "account[id]": "30000000"}
    answer = problem(amo_app.test_client().post(HOOK, data=data | account), 422)
    assert field in answer["errors"]
    assert stored_events(amo_app) == []


def test_a_webhook_without_its_account_is_422(amo_app, redis_conn):
    bare = {key: value for key, value in LOST_LEAD.items() if not key.startswith("account")}
    answer = problem(amo_app.test_client().post(HOOK, data=bare), 422)
    assert list(answer["errors"]) == ["account[subdomain]"]
    assert stored_events(amo_app) == []
