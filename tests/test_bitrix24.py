"""The ``bitrix24`` backend: documented payloads field by field, lookups and policies, the rate
limit, and click-to-call from Bitrix24 end to end (a local stand-in for the portal)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import responses

from integration.crm.base import CrmError
from integration.crm.bitrix24.adapter import Bitrix24Crm, Bitrix24Rest
from integration.delivery import Policies, match_call
from integration.ledger.db import make_engine
from integration.ledger.deliveries import DeliveryLedger
from integration.ledger.tables import calls
from integration.models import Activity, CallStatus, Direction, Match, MatchKind
from integration.phone import parse_phone
from integration.ratelimit import Pacer
from integration.settings import load_settings
from tests.bitrix_stand_in import BitrixStandIn, fixture
from tests.conftest import config_file, run_worker, serve

BASE = "https://portal.bitrix24.test/rest/1/s3cr3tw3bh00k"
CALL_ID = "externalCall.716f1cb73def9700a23842adf9c4c568.1773130779"
APP_TOKEN = "51610fefc120afg4b628cc82d6298cce"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class FakeSleep:
    def __init__(self):
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def ledger(sqlite_url) -> DeliveryLedger:
    engine = make_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(
            calls.insert().values(
                id="rec:1", line="4990000000", direction="inbound", status="answered", started_at=NOW,
                duration=95, ext_raw="89161234567", ext_e164="+79161234567", ext_internal=False, first_seen_at=NOW,
            )
        )  # fmt: skip
    deliveries = DeliveryLedger(engine)
    deliveries.ensure(["rec:1"], "bitrix24", NOW)
    yield deliveries
    engine.dispose()


@pytest.fixture
def crm(ledger, redis_conn) -> Bitrix24Crm:
    sleep = FakeSleep()
    pacer = Pacer(redis_conn, "test:bitrix24:pace", rate=1000, burst=50, sleep=sleep)
    return Bitrix24Crm(Bitrix24Rest(BASE, pacer, sleep=sleep), ledger, default_user="1")


def activity(**changes) -> Activity:
    values = dict(
        call_id="rec:1", direction=Direction.INBOUND, status=CallStatus.ANSWERED, started_at=NOW, duration=95,
        line="4990000000", ext_e164="+79161234567", ext_raw="89161234567", contact_ids=("CONTACT:797",),
        responsible_user="1269", recording_url="https://bridge.example/recordings/abc.mp3?sig=x",
    )  # fmt: skip
    return Activity(**values | changes)


def sent(call) -> dict:
    return json.loads(call.request.body)


@responses.activate
def test_a_call_is_registered_finished_and_its_recording_attached(crm, ledger):
    responses.post(f"{BASE}/telephony.externalCall.register", json=fixture("register.json"))
    responses.post(f"{BASE}/telephony.externalCall.finish", json=fixture("finish.json"))
    responses.post(f"{BASE}/telephony.externalCall.attachRecord", json=fixture("attach_record.json"))
    assert crm.write_activity(activity()) == CALL_ID
    register, finish, attach = (sent(call) for call in responses.calls)
    assert register == {
        "USER_ID": 1269,
        "PHONE_NUMBER": "+79161234567",
        "TYPE": 2,
        "CALL_START_DATE": "2026-11-20T09:00:00+00:00",
        "CRM_CREATE": 0,
        "SHOW": 0,
        "ADD_TO_CHAT": 0,
        "LINE_NUMBER": "4990000000",
        "EXTERNAL_CALL_ID": "rec:1",
        "CRM_ENTITY_TYPE": "CONTACT",
        "CRM_ENTITY_ID": 797,
    }
    assert finish == {"CALL_ID": CALL_ID, "USER_ID": 1269, "DURATION": 95, "STATUS_CODE": "200", "ADD_TO_CHAT": 0}
    assert attach == {"CALL_ID": CALL_ID, "RECORD_URL": activity().recording_url, "FILENAME": "1773130779.mp3"}
    assert ledger.get("rec:1", "bitrix24").crm_id == CALL_ID  # kept between the steps


@responses.activate
def test_a_retry_after_a_failed_finish_does_not_register_a_second_call(crm):
    responses.post(f"{BASE}/telephony.externalCall.register", json=fixture("register.json"))
    responses.post(f"{BASE}/telephony.externalCall.finish", json={"error": "INTERNAL_SERVER_ERROR"}, status=500)
    with pytest.raises(CrmError) as failed:
        crm.write_activity(activity(recording_url=None))
    assert failed.value.retryable
    responses.replace(responses.POST, f"{BASE}/telephony.externalCall.finish", json=fixture("finish.json"))
    assert crm.write_activity(activity(recording_url=None)) == CALL_ID
    methods = [call.request.url.rsplit("/", 1)[1] for call in responses.calls]
    assert methods == [
        "telephony.externalCall.register",
        "telephony.externalCall.finish",
        "telephony.externalCall.finish",
    ]


@responses.activate
def test_a_finish_whose_answer_was_lost_is_not_a_failure(crm):
    responses.post(f"{BASE}/telephony.externalCall.register", json=fixture("register.json"))
    responses.post(f"{BASE}/telephony.externalCall.finish", json={"error": "INTERNAL_SERVER_ERROR"}, status=500)
    with pytest.raises(CrmError):
        crm.write_activity(activity(recording_url=None))  # Bitrix24 finished it, the answer got lost
    not_found = {
        "error": "ERROR_CORE",
        "error_description": "Call is not found (call should be registered prior to finishing)",
    }
    responses.replace(responses.POST, f"{BASE}/telephony.externalCall.finish", json=not_found, status=400)
    assert crm.write_activity(activity(recording_url=None)) == CALL_ID  # delivered, not failed, not registered again


@responses.activate
def test_statuses_types_and_the_lead_policy(crm):
    responses.post(f"{BASE}/telephony.externalCall.register", json=fixture("register.json"))
    responses.post(f"{BASE}/telephony.externalCall.finish", json=fixture("finish.json"))
    missed = activity(
        direction=Direction.OUTBOUND, status=CallStatus.MISSED, duration=0, contact_ids=(), create_lead=True,
        responsible_user=None, recording_url=None,
    )  # fmt: skip
    crm.write_activity(missed)
    register, finish = (sent(call) for call in responses.calls)
    assert (register["TYPE"], register["CRM_CREATE"], register["USER_ID"]) == (1, 1, 1)
    assert "CRM_ENTITY_TYPE" not in register
    assert (finish["STATUS_CODE"], finish["DURATION"]) == ("304", 0)


@responses.activate
def test_a_call_clicked_in_bitrix24_is_finished_on_its_own_call_id(crm):
    responses.post(f"{BASE}/telephony.externalCall.finish", json=fixture("finish.json"))
    clicked = activity(
        direction=Direction.OUTBOUND, callback_crm={"bitrix_call_id": "externalCall.abc.1"}, recording_url=None
    )
    assert crm.write_activity(clicked) == "externalCall.abc.1"
    assert [sent(call)["CALL_ID"] for call in responses.calls] == ["externalCall.abc.1"]  # no register


@responses.activate
def test_lookups_and_the_multiple_match_policy(crm):
    responses.post(f"{BASE}/telephony.externalCall.searchCrmEntities", json=fixture("search_crm_entities.json"))
    found = crm.find_contacts(parse_phone("+19062195047"))
    assert [(c.id, c.name) for c in found] == [("CONTACT:651", "John Doe"), ("COMPANY:643", "Daisy LLC")]
    assert sent(responses.calls[0]) == {"PHONE_NUMBER": "19062195047"}
    from integration.models import Call

    call = Call(
        id="rec:1", line="4990000000", direction=Direction.INBOUND, status=CallStatus.ANSWERED, started_at=NOW,
        duration=3, ext_raw="+19062195047", ext_e164="+19062195047", ext_internal=False,
    )  # fmt: skip
    every = match_call(call, crm, Policies(multiple="all"), ["4990000000"], "RU")
    assert (every.kind, every.contact_ids) == (MatchKind.MULTIPLE, ("CONTACT:651", "COMPANY:643"))
    none = match_call(call, crm, Policies(multiple="none"), ["4990000000"], "RU")
    assert (none.kind, none.contact_ids, none.candidates) == (MatchKind.NONE, (), ("CONTACT:651", "COMPANY:643"))


@responses.activate
def test_unknown_numbers_become_leads_created_by_bitrix24(crm):
    responses.post(f"{BASE}/telephony.externalCall.searchCrmEntities", json={"result": []})
    from integration.models import Call

    call = Call(
        id="rec:1", line="4990000000", direction=Direction.INBOUND, status=CallStatus.MISSED, started_at=NOW,
        duration=0, ext_raw="89161234567", ext_e164="+79161234567", ext_internal=False,
    )  # fmt: skip
    assert match_call(call, crm, Policies(unknown="create_lead"), [], "RU").kind is MatchKind.LEAD
    assert match_call(call, crm, Policies(unknown="skip"), [], "RU").kind is MatchKind.NONE
    responses.post(f"{BASE}/crm.contact.add", json={"result": 5001})
    created = match_call(call, crm, Policies(unknown="create_contact"), [], "RU")
    assert (created.kind, created.contact_ids) == (MatchKind.CREATED, ("CONTACT:5001",))
    assert sent(responses.calls[-1]) == {
        "fields": {"NAME": "+79161234567", "PHONE": [{"VALUE": "+79161234567", "VALUE_TYPE": "WORK"}]}
    }


def test_query_limit_exceeded_backs_off_and_gets_through(crm):
    limited = fixture("query_limit_exceeded.json")
    with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as ordered:
        for _ in range(3):
            ordered.post(f"{BASE}/crm.contact.add", json=limited, status=503)
        ordered.post(f"{BASE}/crm.contact.add", json={"result": 7})
        assert crm.rest.call("crm.contact.add", {"fields": {}}) == 7
    assert crm.rest.sleep.slept == [1.0, 2.0, 4.0]  # backed off, nothing dropped
    with responses.RequestsMock() as always_limited:
        always_limited.post(f"{BASE}/crm.contact.add", json=limited, status=503)
        with pytest.raises(CrmError) as caught:
            crm.rest.call("crm.contact.add", {"fields": {}})
    assert caught.value.retryable and "QUERY_LIMIT_EXCEEDED" in str(caught.value)  # the delivery retries later


@responses.activate
def test_errors_say_what_to_fix_and_never_show_the_webhook_secret(crm):
    responses.post(
        f"{BASE}/telephony.externalCall.register",
        json={"error": "WRONG_AUTH_TYPE", "error_description": "Current authorization type is denied for this method"},
        status=401,
    )
    with pytest.raises(CrmError) as caught:
        crm.write_activity(activity())
    assert not caught.value.retryable
    assert (
        "local application" in str(caught.value)
        and "s3cr3t" not in str(caught.value)
        and "s3cr3t" not in repr(crm.rest)
    )


def test_the_pacer_spaces_requests_across_processes(redis_conn):
    sleep = FakeSleep()
    first, second = (Pacer(redis_conn, "test:pace", rate=2, burst=3, sleep=sleep) for _ in range(2))
    assert Pacer(redis_conn, "test:pace:big", rate=2, burst=50).wait() == 0  # a big burst allowance
    waits = [pacer.wait() for pacer in (first, second) * 4]
    assert waits[:3] == [0, 0, 0]  # the burst
    assert all(w > 0 for w in waits[3:]) and waits[-1] == pytest.approx(2.5, abs=0.2)  # then 2/s, shared


# --- POST /webhooks/bitrix24, end to end ----------------------------------------------------------


def click_event(**data) -> dict[str, str]:
    """The documented ONEXTERNALCALLSTART, form-encoded as Bitrix24 posts it."""
    event = fixture("onexternalcallstart.json")
    event["data"] |= data
    form = {"event": event["event"], "event_handler_id": event["event_handler_id"], "ts": event["ts"]}
    form |= {f"data[{k}]": v for k, v in event["data"].items()}
    form |= {f"auth[{k}]": v for k, v in event["auth"].items()}
    return form


@pytest.fixture
def bitrix_env(service_env, tmp_path):
    stand_in = BitrixStandIn()
    with serve(stand_in.app) as url:
        yield (
            stand_in,
            service_env
            | {
                "CRM_BACKEND": "bitrix24",
                "BITRIX24_WEBHOOK_URL": f"{url}/rest/1/hook",
                "BITRIX24_APP_TOKEN": APP_TOKEN,
            }
            | config_file(tmp_path, '[users]\n"1269" = "4990000000"\n'),
        )


@pytest.fixture
def bitrix_app(bitrix_env, redis_conn):
    from integration import create_app

    app = create_app(load_settings(bitrix_env[1], dotenv="/nonexistent"))
    yield app
    app.extensions["vats"].engine.dispose()


def test_a_click_in_bitrix24_rings_once(bitrix_app, bitrix_env, control):
    http = bitrix_app.test_client()
    event = click_event(PHONE_NUMBER="+79161234567", PHONE_NUMBER_INTERNATIONAL="+79161234567")
    first, again = http.post("/webhooks/bitrix24", data=event), http.post("/webhooks/bitrix24", data=event)
    assert first.status_code == again.status_code == 200 and first.json["id"] == again.json["id"]
    assert run_worker(bitrix_env[1]).returncode == 0
    [placed] = control.get("callbacks")
    assert (placed["PhoneFrom"], placed["PhoneTo"]) == ("4990000000", "89161234567")
    record = bitrix_app.extensions["vats"].callback_ledger.get(first.json["id"])
    assert record.status.value == "placed" and record.source == "bitrix24"
    assert record.crm_context == {
        "bitrix_call_id": click_event()["data[CALL_ID]"],
        "entity_type": "CONTACT",
        "entity_id": "797",
    }


def test_a_click_that_cannot_be_placed_is_finished_in_bitrix24_with_the_reason(bitrix_app, bitrix_env, control):
    stand_in, env = bitrix_env
    control.post("authorization-token/revoke")
    event = click_event(PHONE_NUMBER="89161234567", PHONE_NUMBER_INTERNATIONAL="")
    stand_in.open_click(event["data[CALL_ID]"])
    assert bitrix_app.test_client().post("/webhooks/bitrix24", data=event).status_code == 200
    assert run_worker(env).returncode == 0  # places (fails), then sends callback.finished
    finishes = [body for method, body in stand_in.calls if method == "telephony.externalCall.finish"]
    assert len(finishes) == 1
    finish = finishes[0]
    assert (finish["CALL_ID"], finish["USER_ID"], finish["DURATION"], finish["STATUS_CODE"]) == (
        event["data[CALL_ID]"], 1269, 0, "603-S",
    )  # fmt: skip
    assert finish["FAILED_REASON"].startswith("failed: ")
    assert not [m for m, _ in stand_in.calls if m == "telephony.externalCall.register"]


def test_bitrix24_events_are_checked(bitrix_app):
    http = bitrix_app.test_client()
    forged = click_event() | {"auth[application_token]": "forged"}
    assert http.post("/webhooks/bitrix24", data=forged).status_code == 401
    assert http.post("/webhooks/bitrix24", data={"event": "ONEXTERNALCALLSTART"}).status_code == 401
    stranger = http.post("/webhooks/bitrix24", data=click_event(USER_ID="5", PHONE_NUMBER="89161234567"))
    assert stranger.status_code == 422 and "data[USER_ID]" in stranger.json["errors"]
    abroad = http.post("/webhooks/bitrix24", data=click_event())  # the documented +1 415 number
    assert abroad.status_code == 422 and "international" in abroad.json["errors"]["data[PHONE_NUMBER]"][0]
    other = http.post("/webhooks/bitrix24", data={"event": "ONAPPINSTALL", "auth[application_token]": APP_TOKEN})
    assert other.status_code == 200 and other.json["status"] == "ignored"


def test_a_bitrix24_callback_form_becomes_one_callback_request(bitrix_app):
    event = fixture("onexternalcallbackstart.json")
    form = {"event": event["event"], "ts": event["ts"], "auth[application_token]": APP_TOKEN}
    form |= {f"data[{k}]": v for k, v in event["data"].items()} | {"data[PHONE_NUMBER]": "+7 916 123-45-67"}
    http = bitrix_app.test_client()
    first, again = http.post("/webhooks/bitrix24", data=form), http.post("/webhooks/bitrix24", data=form)
    assert first.status_code == 200 and first.json["id"] == again.json["id"]
    record = bitrix_app.extensions["vats"].intake.accepted(first.json["id"])
    assert (record.phone_to, record.source) == ("+79161234567", "bitrix24-form")
    assert record.crm_context == {"callback": True, "entity_type": "CONTACT", "entity_id": "5785"}


@responses.activate
def test_attach_calls_binds_each_calls_activity_to_the_deal(crm, ledger):
    call_id = fixture("register.json")["result"]["CALL_ID"]
    ledger.mark_delivered("rec:1", "bitrix24", call_id, Match(MatchKind.CONTACT), NOW)
    responses.post(f"{BASE}/crm.activity.list", json=fixture("activity_list.json"))
    responses.post(f"{BASE}/crm.activity.binding.add", json=fixture("activity_binding_add.json"))
    crm.attach_calls("31", ["rec:1"], "evt:rule")
    listed, bound = (sent(c) for c in responses.calls)
    assert listed == {"filter": {"ORIGIN_ID": f"VI_{call_id}"}, "select": ["ID"]}
    assert bound == {"activityId": 7943, "entityTypeId": 2, "entityId": 31}
    already = {"error": "ACTIVITY_IS_ALREADY_BOUND", "error_description": "The activity is already bound"}
    responses.replace(responses.POST, f"{BASE}/crm.activity.binding.add", json=already, status=400)
    crm.attach_calls("31", ["rec:1"], "evt:rule")  # the event handled twice: nothing to do


def test_attach_calls_waits_for_calls_not_in_bitrix24_yet(crm):
    with pytest.raises(CrmError) as caught:
        crm.attach_calls("31", ["rec:1"], "evt:rule")
    assert caught.value.retryable
