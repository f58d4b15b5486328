"""Secrets out of logged text: URL secrets by shape, secret settings by value."""

from __future__ import annotations

import pytest

from integration.redaction import KnownSecrets, is_secret_name, redact_url
from integration.settings import load_settings
from tests.conftest import SECRET_KEYS

SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/webhooks/amocrm/s3cr3t-path", "/webhooks/amocrm/[redacted]"),
        ("POST /webhooks/amocrm/s3cr3t-path HTTP/1.1", "POST /webhooks/amocrm/[redacted] HTTP/1.1"),
        ("/webhooks/amocrm/s3cr3t?x=1", "/webhooks/amocrm/[redacted]?x=1"),
        ("GET /recordings/ab.mp3?sig=f00d&exp=17 HTTP/1.1", "GET /recordings/ab.mp3?sig=[redacted]&exp=17 HTTP/1.1"),
        ("sig=f00d&exp=17", "sig=[redacted]&exp=17"),  # a bare query string (gunicorn's %(q)s)
        ("exp=17&SIG=f00d", "exp=17&SIG=[redacted]"),
        ("/cb?code=oauth-code&state=s", "/cb?code=[redacted]&state=s"),
        ("/x?access_token=a;refresh_token=b", "/x?access_token=[redacted];refresh_token=[redacted]"),
        (
            "/x?token=a&secret=b&key=c&api_key=d",
            "/x?token=[redacted]&secret=[redacted]&key=[redacted]&api_key=[redacted]",
        ),
        ('"GET /r.mp3?sig=f00d HTTP/1.1" 200', '"GET /r.mp3?sig=[redacted] HTTP/1.1" 200'),
        # not secrets: other parameters, names that only end like one, the webhooks that sign instead
        ("/api/calls?status=missed&monkey=1&keyboard=2", "/api/calls?status=missed&monkey=1&keyboard=2"),
        ("/webhooks/click-to-call", "/webhooks/click-to-call"),
        ("2026-11-30 INFO integration.x: event error_code=42", "2026-11-30 INFO integration.x: event error_code=42"),
    ],
)
def test_redact_url_hides_secrets_and_keeps_the_shape(text, expected):
    assert redact_url(text) == expected


@pytest.mark.parametrize(
    "name", ["token", "api_token", "access_token", "Authorization", "http_authorization", "cookie", "sig", "api-key"]
)
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["call", "line", "callback", "error_code", "crm_id", "keyboard", "monkey", "signed"])
def test_names_that_are_not_secret(name):
    assert not is_secret_name(name)


def test_known_secrets_are_the_settings_hidden_from_repr():
    settings = load_settings(
        {
            "OPERATOR_AUTHORIZATION_TOKEN": "operator-authorization-token",
            "SECRET_KEYS": SECRET_KEYS,
            "OPERATOR_NUMBERS": "4990000000",
            "API_TOKEN": "api-token-for-the-crm",
            "WEBHOOK_SECRET": SECRET,
            "RECORDING_LINK_KEYS": "k" * 40 + " " + "j" * 40,
        },
        dotenv="/nonexistent/.env",
    )
    secrets = KnownSecrets.of(settings)
    text = (
        f"a operator-authorization-token b api-token-for-the-crm c {SECRET} d {SECRET.removeprefix('whsec_')} "
        f"e {'k' * 40} f {'j' * 40} g 4990000000"
    )
    assert (
        secrets.redact(text)
        == "a [redacted] b [redacted] c [redacted] d [redacted] e [redacted] f [redacted] g 4990000000"
    )


def test_a_url_secret_is_also_known_by_its_path():
    secrets = KnownSecrets(["https://acme.bitrix24.ru/rest/1/abcdef123456/"])
    assert secrets.redact("Max retries exceeded with url: /rest/1/abcdef123456/profile.json") == (
        "Max retries exceeded with url: [redacted]profile.json"
    )


def test_short_values_are_not_searched_for():
    assert KnownSecrets(["1", "abc"]).redact("1 abc") == "1 abc"
