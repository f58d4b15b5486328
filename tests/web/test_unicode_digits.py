"""Every number field takes any script's digits as the same number in ASCII (or refuses it):
a number never gets a second spelling, rate-limit or debounce key, and the operator only ever
receives ASCII digits (hypothesis over every decimal digit Unicode knows)."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration.phone import contract_number, forwarding_digits, parse_dialable, parse_phone, reported_number
from tests.conftest import API_TOKEN, app_for, config_file
from tests.web.helpers import post_signed
from tests.widget_tokens import mint, widget_env

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
DIGITS: dict[int, list[str]] = {}
for _code in range(sys.maxunicode + 1):
    if unicodedata.category(chr(_code)) == "Nd":
        DIGITS.setdefault(unicodedata.decimal(chr(_code)), []).append(chr(_code))
FIXTURE = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True
)


@st.composite
def respelled(draw, text: str) -> str:
    """``text`` with each ASCII digit kept or written in some script's digit of the same value
    (mixed spellings too: a number that starts in ASCII took a short cut of its own)."""
    return "".join(
        draw(st.just(ch) | st.sampled_from(DIGITS[int(ch)])) if ch.isascii() and ch.isdigit() else ch for ch in text
    )


DIALLED = ["89161234567", "+7 (916) 123-45-67", "8 495 123-45-67", "+44 20 7946 0958", "8 10 44 20 7946 0958"]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.data(), ascii_number=st.sampled_from(DIALLED + ["101", "+7916", "8916123456789", "4990000000"]))
def test_the_phone_layer_reads_every_script_as_ascii(data, ascii_number):
    number = data.draw(respelled(ascii_number))
    for parse in (parse_phone, parse_dialable, contract_number, reported_number, forwarding_digits):
        try:
            expected = parse(ascii_number)
        except ValueError:
            expected = ValueError
        try:
            got = parse(number)
        except ValueError:
            got = ValueError
        if isinstance(expected, tuple | str) or expected is None or expected is ValueError:
            assert got == expected, (parse.__name__, number)
        else:
            assert (got.e164, got.valid, got.type) == (expected.e164, expected.valid, expected.type)
            assert got.e164 is None or got.e164.isascii()
            assert got.match_key is None or got.match_key.isascii()
            if got.e164 and got.valid:
                assert got.phone_to.isascii()


@pytest.fixture
def app(service_env, redis_conn, tmp_path):
    limits = {f"CALLBACK_REQUEST_LIMIT_{name}": "100000/hour" for name in ("PER_NUMBER", "PER_IP", "TOTAL")}
    env = (
        service_env
        | limits
        | {"BITRIX24_APP_TOKEN": "bx", "ALLOW_INTERNATIONAL_NUMBERS": "true", "CLICK_TO_CALL_DEBOUNCE": "0"}
        | widget_env({}, tmp_path)
        | config_file(tmp_path, '[users]\n"7" = "4990000000"\n"8375357" = "4990000000"\n')
        | {"WIDGET_CALL_LIMIT_PER_USER": "100000/hour"}
    )
    with app_for(env) as app:
        yield app


def _status(http, answer) -> dict:
    assert answer.status_code in (200, 202), answer.get_data(as_text=True)
    return http.get(f"/api/callbacks/{answer.json['id']}", headers=AUTH).json


FIELDS = {
    "click-to-call to": lambda http, n: post_signed(http, "/webhooks/click-to-call", {"to": n, "from": "4990000000"}),
    "click-to-call from": lambda http, n: post_signed(
        http, "/webhooks/click-to-call", {"to": "89161234567", "from": n}
    ),
    "form phone": lambda http, n: http.post("/callback-requests", json={"phone": n}),
    "amoCRM widget to": lambda http, n: http.post(
        "/widget/amocrm/click-to-call", json={"to": n}, headers={"X-Auth-Token": mint()}
    ),
    "bitrix24 PHONE_NUMBER": lambda http, n: http.post(
        "/webhooks/bitrix24",
        data={
            "event": "ONEXTERNALCALLSTART",
            "auth[application_token]": "bx",
            "data[USER_ID]": "7",
            "data[CALL_ID]": n + "-call",
            "data[PHONE_NUMBER]": n,
        },
    ),
}


@pytest.mark.parametrize("field", FIELDS)
@FIXTURE
@given(data=st.data())
def test_every_number_field_stores_the_ascii_number(app, field, data):
    http = app.test_client()
    ascii_number = "4990000000" if field.endswith("from") else data.draw(st.sampled_from(DIALLED))
    number = data.draw(respelled(ascii_number))
    request = FIELDS[field]
    expected, got = _status(http, request(http, ascii_number)), _status(http, request(http, number))
    assert (got["to"], got["from"]) == (expected["to"], expected["from"])
    assert got["to"].isascii() and got["from"].isascii()


@pytest.mark.parametrize("path, name", [("/api/calls", "number"), ("/api/contacts", "phone")])
@FIXTURE
@given(data=st.data())
def test_every_number_filter_reads_the_ascii_number(app, path, name, data):
    http = app.test_client()
    ascii_number = data.draw(st.sampled_from(DIALLED))
    answer = http.get(path, query_string={name: data.draw(respelled(ascii_number))}, headers=AUTH)
    assert answer.status_code == http.get(path, query_string={name: ascii_number}, headers=AUTH).status_code == 200
