"""Every operator method, every error class and every retry rule, with the operator mocked."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from io import BytesIO
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError

from integration.errors import (
    AuthorizationRevoked,
    IntegrationDisabled,
    InvalidPhoneNumber,
    InvalidResponse,
    OperatorError,
    OperatorUnavailable,
    OutcomeUnknown,
    PeriodError,
    RateLimited,
    RequestRejected,
    TokenInvalid,
)
from integration.models import CallFilter, Direction
from tests.operator.helpers import ACCESS, API, AUTHORIZATION, REFRESH, body_of, envelope, make_rig, token_pair

MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40


def refused() -> requests.exceptions.ConnectionError:
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "Connection refused")))


def query(call) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def assert_no_secret(exc: Exception) -> None:
    for secret in (ACCESS, REFRESH, AUTHORIZATION, "access-token-secret", "refresh-token-secret"):
        assert secret not in str(exc) and secret not in repr(exc)


# --- callback/create ------------------------------------------------------------------------


@responses.activate
def test_callback_sends_numbers_and_bearer_and_returns_the_hash():
    responses.get(API + "callback/create", json=envelope({"requestHash": "abc=="}))
    placed = make_rig().client.create_callback("89161234567", "4990000000")
    assert placed.request_hash == "abc=="
    call = responses.calls[0]
    assert query(call) == {"PhoneTo": "89161234567", "PhoneFrom": "4990000000"}
    assert call.request.headers["Authorization"] == f"Bearer {ACCESS}"
    assert call.request.headers["Accept"] == "application/json"


@responses.activate
@pytest.mark.parametrize(
    "phone_to, phone_from",
    [
        ("8916١٢٣٤٥٦٧", "4990000000"),
        ("89161234567", "٤٩٩٠٠٠٠٠٠٠"),
        ("8916123456²", "4990000000"),
        ("+79161234567", "4990000000"),
    ],
)
def test_callback_refuses_anything_but_ascii_digits_before_sending(phone_to, phone_from):
    with pytest.raises(InvalidPhoneNumber, match="ASCII digits"):
        make_rig().client.create_callback(phone_to, phone_from)
    assert not responses.calls


@responses.activate
def test_callback_read_timeout_is_outcome_unknown_and_never_retried():
    responses.get(API + "callback/create", body=requests.exceptions.ReadTimeout())
    rig = make_rig()
    with pytest.raises(OutcomeUnknown) as caught:
        rig.client.create_callback("89161234567", "4990000000")
    assert len(responses.calls) == 1 and rig.sleeps == []
    assert caught.value.method == "callback/create"
    assert_no_secret(caught.value)


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 502, "body": "<html><body>502 Bad Gateway</body></html>", "content_type": "text/html"},
        {"status": 500, "json": envelope(code=500, message="internal")},
        {"status": 200, "body": "", "content_type": "application/json"},
        {"status": 200, "body": "<html>maintenance</html>", "content_type": "text/html"},
        {"body": requests.exceptions.ChunkedEncodingError()},
    ],
)
@responses.activate
def test_callback_failures_after_sending_are_outcome_unknown(answer):
    responses.get(API + "callback/create", **answer)
    with pytest.raises(OutcomeUnknown):
        make_rig().client.create_callback("89161234567", "4990000000")
    assert len(responses.calls) == 1


@responses.activate
def test_callback_connection_refused_certainly_not_sent_is_retried():
    responses.get(API + "callback/create", body=refused())
    responses.get(API + "callback/create", json=envelope())
    rig = make_rig()
    rig.client.create_callback("89161234567", "4990000000")
    assert len(responses.calls) == 2 and len(rig.sleeps) == 1


@responses.activate
def test_callback_connect_timeout_is_retried_then_unavailable():
    responses.get(API + "callback/create", body=requests.exceptions.ConnectTimeout())
    rig = make_rig(max_retries=2)
    with pytest.raises(OperatorUnavailable) as caught:
        rig.client.create_callback("89161234567", "4990000000")
    assert not caught.value.request_sent
    assert len(responses.calls) == 3


@responses.activate
def test_callback_rejected_is_not_retried():
    responses.get(API + "callback/create", status=400, json=envelope(code=17, message="PhoneTo is not valid"))
    with pytest.raises(RequestRejected) as caught:
        make_rig().client.create_callback("8916", "4990000000")
    assert caught.value.error_code == 17 and caught.value.status == 400
    assert "PhoneTo is not valid" in str(caught.value)
    assert len(responses.calls) == 1


@responses.activate
def test_429_honours_retry_after_seconds():
    responses.get(API + "callback/create", status=429, headers={"Retry-After": "2"}, json=envelope(code=429))
    responses.get(API + "callback/create", json=envelope())
    rig = make_rig()
    rig.client.create_callback("89161234567", "4990000000")
    assert rig.sleeps == [2.0]


@responses.activate
def test_429_with_http_date_and_too_long_wait_raises_rate_limited():
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    responses.post(API + "request/getcalllist", status=429, headers={"Retry-After": later})
    rig = make_rig()
    with pytest.raises(RateLimited) as caught:
        rig.client.get_call_list_slice(["4990000000"], datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
    assert 3500 < caught.value.retry_after <= 3600
    assert rig.sleeps == []


# --- status → exception ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (403, envelope(code=403, message="integration API is off"), IntegrationDisabled),
        (400, envelope(code=12, message="bad nums"), RequestRejected),
        (404, envelope(code=404, message="not found"), RequestRejected),
        (200, envelope(code=7, message="period too long"), RequestRejected),
        (200, [1, 2], InvalidResponse),
    ],
)
@responses.activate
def test_answers_map_to_typed_errors_without_retries(status, body, error):
    responses.post(API + "Vats/settings/get", status=status, json=body)
    rig = make_rig()
    with pytest.raises(error) as caught:
        rig.client.get_pbx_settings(["4990000000"])
    assert len(responses.calls) == 1
    assert caught.value.method == "Vats/settings/get"
    assert_no_secret(caught.value)


@responses.activate
def test_html_502_on_a_read_is_operator_unavailable_after_jittered_retries():
    responses.post(
        API + "request/getcalllist", status=502, body="<html><h1>502 Bad Gateway</h1></html>", content_type="text/html"
    )
    rig = make_rig(max_retries=3)
    with pytest.raises(OperatorUnavailable) as caught:
        rig.client.get_call_list_slice(["4990000000"], datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
    assert caught.value.status == 502
    assert len(responses.calls) == 4
    assert len(rig.sleeps) == 3
    assert all(0 <= delay <= cap for delay, cap in zip(rig.sleeps, (0.5, 1.0, 2.0), strict=True))


@pytest.mark.parametrize(
    "failure", [requests.exceptions.ReadTimeout(), refused(), requests.exceptions.ConnectionError("reset")]
)
@responses.activate
def test_reads_retry_on_network_failures(failure):
    responses.post(API + "Vats/settings/get", body=failure)
    responses.post(
        API + "Vats/settings/get", json=envelope({"vatsSettings": [{"num": "4990000000", "vatsName": "Office"}]})
    )
    settings = make_rig().client.get_pbx_settings(["4990000000"])
    assert settings[0].num == "4990000000" and settings[0].name == "Office"
    assert len(responses.calls) == 2


@responses.activate
def test_settings_set_is_never_repeated_after_a_timeout():
    responses.post(API + "Vats/settings/set", body=requests.exceptions.ReadTimeout())
    with pytest.raises(OutcomeUnknown):
        make_rig().client.set_pbx_settings([{"num": "4990000000"}])
    assert len(responses.calls) == 1


@responses.activate
def test_settings_set_sends_the_documents():
    responses.post(API + "Vats/settings/set", json=envelope())
    make_rig().client.set_pbx_settings([{"num": "4990000000", "isDoNotDisturbMode": 1}])
    assert body_of(responses.calls[0]) == {"vatsSettings": [{"num": "4990000000", "isDoNotDisturbMode": 1}]}


# --- tokens through the client --------------------------------------------------------------


@responses.activate
def test_401_refreshes_once_and_repeats_with_the_new_token():
    responses.get(API + "callback/create", status=401, json=envelope(code=401))
    responses.get(API + "auth/integrationapi/refresh", json=token_pair(2))
    responses.get(API + "callback/create", json=envelope())
    make_rig().client.create_callback("89161234567", "4990000000")
    assert [c.request.headers["Authorization"] for c in responses.calls] == [
        f"Bearer {ACCESS}",
        f"Bearer {REFRESH}",
        "Bearer access-token-secret-2",
    ]


@responses.activate
def test_a_failed_token_renewal_is_not_repeated_by_the_call():
    responses.post(API + "request/getcalllist", status=401)
    responses.get(API + "auth/integrationapi/refresh", status=502, body="<html>502</html>", content_type="text/html")
    rig = make_rig()
    with pytest.raises(OperatorUnavailable) as caught:
        rig.client.get_call_list_slice(["4990000000"], datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
    assert caught.value.method == "auth/integrationapi/refresh"
    assert len(responses.calls) == 2 and rig.sleeps == []


@responses.activate
def test_each_retry_logs_one_debug_line_and_reaches_the_metrics_hook(caplog):
    responses.post(API + "Vats/settings/get", status=503)
    responses.post(API + "Vats/settings/get", status=429, headers={"Retry-After": "3"})
    responses.post(API + "Vats/settings/get", json=envelope({"vatsSettings": []}))
    rig = make_rig()
    seen = []
    rig.client.on_call = lambda method, outcome, seconds: seen.append((method, outcome))
    with caplog.at_level("DEBUG", logger="integration.operator.client"):
        assert rig.client.get_pbx_settings(["4990000000"]) == []
    retried = [r.fields for r in caplog.records if r.getMessage() == "operator call retried"]
    assert [(f["method"], f["attempt"], f["error"]) for f in retried] == [
        ("Vats/settings/get", 1, "OperatorUnavailable"),
        ("Vats/settings/get", 2, "RateLimited"),
    ]
    assert retried[1]["retry_in"] == 3.0 and rig.sleeps[1] == 3.0
    assert [outcome for _, outcome in seen] == ["OperatorUnavailable", "RateLimited", "ok"]


@responses.activate
def test_refused_refresh_falls_back_to_create_with_the_authorization_token():
    responses.post(API + "request/getcalllist", status=401)
    responses.get(API + "auth/integrationapi/refresh", status=401)
    responses.get(API + "auth/integrationapi/create", json=token_pair(3))
    responses.post(API + "request/getcalllist", json=envelope({"rowset": []}))
    rig = make_rig()
    assert (
        rig.client.get_call_list_slice(["4990000000"], datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)) == []
    )
    assert responses.calls[2].request.headers["Authorization"] == f"Bearer {AUTHORIZATION}"
    assert responses.calls[3].request.headers["Authorization"] == "Bearer access-token-secret-3"


@responses.activate
def test_revoked_authorization_gives_a_clear_error_and_stops_calling():
    responses.get(API + "callback/create", status=401)
    responses.get(API + "auth/integrationapi/refresh", status=401)
    responses.get(API + "auth/integrationapi/create", status=401)
    rig = make_rig()
    with pytest.raises(AuthorizationRevoked) as caught:
        rig.client.create_callback("89161234567", "4990000000")
    assert "make a new one in the operator's web cabinet" in str(caught.value)
    assert_no_secret(caught.value)
    calls = len(responses.calls)
    for _ in range(5):
        with pytest.raises(AuthorizationRevoked):
            rig.client.create_callback("89161234567", "4990000000")
    assert len(responses.calls) == calls == 3


@responses.activate
def test_a_second_401_after_renewal_is_raised_not_looped():
    responses.get(API + "callback/create", status=401)
    responses.get(API + "auth/integrationapi/refresh", json=token_pair(2))
    with pytest.raises(TokenInvalid):
        make_rig().client.create_callback("89161234567", "4990000000")
    assert len(responses.calls) == 3


@responses.activate
def test_switched_off_api_during_create_is_reported_as_disabled():
    responses.get(API + "auth/integrationapi/create", status=403, json=envelope(code=403, message="switched off"))
    rig = make_rig(seeded=False)
    with pytest.raises(IntegrationDisabled) as caught:
        rig.client.get_pbx_settings(["4990000000"])
    assert "switch it on" in str(caught.value)


# --- getcalllist ----------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("rowset", "kept"),
    [([None, "x", {"callDate": "2026-11-20 10:06:00", "extNum": "101"}], 1), ([], 0), (None, 0)],
)
def test_a_malformed_row_is_skipped_alone(rowset, kept):
    responses.post(API + "request/getcalllist", json=envelope({"rowset": rowset}))
    start = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
    assert len(make_rig().client.get_call_list_slice(["4990000000"], start, start + timedelta(hours=1))) == kept


@responses.activate
def test_a_rowset_that_is_not_a_list_is_an_invalid_answer():
    responses.post(API + "request/getcalllist", json=envelope({"rowset": {"callDate": "2026-11-20 10:06:00"}}))
    start = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
    with pytest.raises(InvalidResponse, match="rowset: must be a list of rows"):
        make_rig().client.get_call_list_slice(["4990000000"], start, start + timedelta(hours=1))


@responses.activate
def test_call_list_request_body_and_rows():
    rows = [
        {
            "callDate": "2026-11-20 10:00:00",
            "service": "local",
            "extNum": "89161234567",
            "num": "4990000000",
            "direction": 2,
            "duration": 65,
            "recordFileId": "bec3e80f-2197-4f2e-87d8-44ae05e60eb7",
            "isRead": None,
            "newField": "kept",
        },
        {
            "callDate": "2026-11-20T10:05:00+03:00",
            "extNum": "101",
            "num": 4950000000,
            "direction": "1",
            "duration": "00:01:05",
        },
        {"callDate": "2026-11-20 10:06:00", "extNum": "810442079460958"},
        {"callDate": "not a date", "extNum": "89161234567"},
    ]
    responses.post(API + "request/getcalllist", json=envelope({"rowset": rows}))
    start = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
    rig = make_rig()
    got = rig.client.get_call_list_slice(
        ["4990000000", "4950000000"],
        start,
        start + timedelta(hours=1),
        CallFilter(direction=Direction.INBOUND, only_recorded=True),
    )
    assert body_of(responses.calls[0]) == {
        "nums": ["4990000000", "4950000000"],
        "periodStart": "2026-11-20 10:00:00",
        "periodEnd": "2026-11-20 10:59:59",
        "direction": 2,
        "durationFrom": None,
        "durationTo": None,
        "isCallRecord": 1,
        "isRead": None,
    }
    assert len(got) == 3  # the malformed row is skipped, the others kept
    first, second, third = got
    assert first.started_at == datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
    assert (first.line, first.direction, first.duration, first.ext_num) == (
        "4990000000",
        Direction.INBOUND,
        65,
        "89161234567",
    )
    assert first.record_file_id == "bec3e80f-2197-4f2e-87d8-44ae05e60eb7"
    assert first.extra == {"newField": "kept"}
    assert (second.line, second.direction, second.duration) == ("4950000000", Direction.OUTBOUND, 65)
    assert second.started_at == datetime(2026, 11, 20, 7, 5, tzinfo=UTC)
    assert (third.direction, third.duration, third.line, third.record_file_id) == (Direction.UNKNOWN, 0, None, None)


@responses.activate
def test_long_periods_are_split_into_month_requests():
    responses.post(API + "request/getcalllist", json=envelope({"rowset": []}))
    rig = make_rig()
    now = datetime.now(UTC)
    rig.client.clock = lambda: now
    rig.client.get_call_list(["4990000000"], now - timedelta(days=30), now)
    bodies = [body_of(c) for c in responses.calls]
    assert 1 <= len(bodies) <= 2
    assert bodies[-1]["periodEnd"] <= now.astimezone(rig.client.tz).strftime("%Y-%m-%d %H:%M:%S")


@responses.activate
def test_history_older_than_a_month_is_refused_before_any_request():
    rig = make_rig()
    now = datetime.now(UTC)
    with pytest.raises(PeriodError, match="one month of call history"):
        rig.client.get_call_list(["4990000000"], now - timedelta(days=45), now)
    assert len(responses.calls) == 0


# --- getcallrecordfile ----------------------------------------------------------------------


def record_body(content: bytes, *, escape_slashes: bool = False, wrap: int = 0) -> str:
    encoded = base64.b64encode(content).decode()
    if wrap:
        encoded = "\\n".join(encoded[i : i + wrap] for i in range(0, len(encoded), wrap))
    if escape_slashes:
        encoded = encoded.replace("/", "\\/")
    return (
        '{"error": {"errorMessage": "", "errorCode": 0}, "result": {"file_NAME": "a.mp3", "apiName": "getcallrecordfile", '
        f'"requestHash": "r==", "fileContent": "{encoded}", "code": 0}}}}'
    )


@pytest.mark.parametrize(("escape", "wrap"), [(False, 0), (True, 0), (True, 76)])
@responses.activate
def test_recording_is_streamed_decoded_and_checked(escape, wrap):
    responses.get(
        API + "request/getcallrecordfile",
        body=record_body(MP3, escape_slashes=escape, wrap=wrap),
        content_type="application/json",
    )
    sink = BytesIO()
    recording = make_rig().client.download_recording("bec3e80f", sink)
    assert sink.getvalue() == MP3
    assert recording.size == len(MP3) and recording.sha256 == hashlib.sha256(MP3).hexdigest()
    assert recording.file_name == "a.mp3" and recording.request_hash == "r=="
    assert query(responses.calls[0]) == {"recordFileId": "bec3e80f"}


@responses.activate
def test_recording_that_is_not_audio_is_refused():
    responses.get(
        API + "request/getcallrecordfile", body=record_body(b"<html>not audio</html>"), content_type="application/json"
    )
    with pytest.raises(InvalidResponse, match="not audio"):
        make_rig().client.download_recording("x", BytesIO())


@responses.activate
def test_recording_not_found_is_rejected_with_the_operator_message():
    responses.get(
        API + "request/getcallrecordfile", status=404, json=envelope(code=404, message="record file not found")
    )
    with pytest.raises(RequestRejected, match="record file not found"):
        make_rig().client.download_recording("x", BytesIO())


@responses.activate
def test_recording_error_envelope_with_status_200():
    responses.get(
        API + "request/getcallrecordfile", json={"error": {"errorCode": 9, "errorMessage": "not ready"}, "result": None}
    )
    with pytest.raises(RequestRejected) as caught:
        make_rig().client.download_recording("x", BytesIO())
    assert caught.value.error_code == 9


@responses.activate
def test_recording_cut_off_mid_stream_is_not_retried():
    def cut(request):
        raise requests.exceptions.ChunkedEncodingError("connection broken")

    responses.add_callback(responses.GET, API + "request/getcallrecordfile", callback=cut)
    with pytest.raises(OperatorUnavailable):
        make_rig().client.download_recording("x", BytesIO())


# --- getrequestresultbyhash -----------------------------------------------------------------


@responses.activate
def test_result_by_hash_url_encodes_the_hash():
    responses.get(API + "request/getrequestresultbyhash", json=envelope({"rowset": []}))
    result = make_rig().client.get_request_result("twbfdoEhUI6kPSgOpPXT7Q==QUY5OUZC/MDJG+ND4=")
    assert result["rowset"] == []
    assert "requestHash=twbfdoEhUI6kPSgOpPXT7Q%3D%3DQUY5OUZC%2FMDJG%2BND4%3D" in responses.calls[0].request.url


def test_every_operator_error_is_an_operator_error():
    for error in (
        AuthorizationRevoked,
        IntegrationDisabled,
        InvalidResponse,
        OperatorUnavailable,
        OutcomeUnknown,
        RateLimited,
        RequestRejected,
        TokenInvalid,
    ):
        assert issubclass(error, OperatorError)
