"""amoCRM one-time tokens (``integration.crm.amocrm.widget_tokens``) on an injected clock."""

from __future__ import annotations

import pytest

from integration.crm.amocrm.widget_tokens import TokenRefused, WidgetTokens
from tests.widget_tokens import ACCOUNT_ID, ACCOUNT_URL, CLIENT_SECRET, USER_ID, mint

NOW = 1_800_000_000


def tokens(redis_conn, **kwargs) -> WidgetTokens:
    return WidgetTokens(CLIENT_SECRET, ACCOUNT_URL, redis_conn, clock=lambda: NOW, **kwargs)


def at(**overrides) -> str:
    """A token minted for the fixed clock: issued 10 s ago, valid for 20 minutes."""
    return mint(**({"iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 1200} | overrides))


def test_a_valid_token_names_its_user_and_is_remembered_for_its_lifetime(redis_conn):
    user = tokens(redis_conn, account_id=ACCOUNT_ID).verify(at(jti="2f0c-jti"))
    assert (user.account_id, user.user_id, user.jti) == (ACCOUNT_ID, USER_ID, "2f0c-jti")
    assert redis_conn.ttl("vats:amocrm:jti:2f0c-jti") == 1200 + 30


@pytest.mark.parametrize(
    ("overrides", "accepted"),
    [
        ({"exp": NOW - 29}, True),
        ({"exp": NOW - 30}, False),
        ({"nbf": NOW + 30}, True),
        ({"nbf": NOW + 31}, False),
        ({"iat": NOW + 30}, True),
        ({"iat": NOW + 31}, False),
        ({"exp": NOW + 86400}, True),
        ({"exp": NOW + 86401}, False),
        ({"exp": 10**30}, False),
    ],
)
def test_times_allow_a_30_second_leeway_and_at_most_a_day(redis_conn, overrides, accepted):
    verifier = tokens(redis_conn)
    if accepted:
        verifier.verify(at(**overrides))
    else:
        with pytest.raises(TokenRefused):
            verifier.verify(at(**overrides))


def test_a_token_at_the_edge_of_its_life_is_remembered_until_it_could_no_longer_pass(redis_conn):
    tokens(redis_conn).verify(at(jti="edge", exp=NOW - 29))
    assert redis_conn.ttl("vats:amocrm:jti:edge") == 1
    with pytest.raises(TokenRefused, match="already used"):
        tokens(redis_conn).verify(at(jti="edge", exp=NOW - 29))


@pytest.mark.parametrize(
    ("iss", "accepted"),
    [
        ("https://example.amocrm.ru", True),
        ("https://EXAMPLE.amocrm.ru/", True),
        ("https://example.amocrm.ru:443", True),
        ("example.amocrm.ru", True),  # a bare host: the account's address without a scheme
        ("https://example.amocrm.ru:8443", False),
        ("https://example.kommo.com", False),
        ("https://evil.example/?https://example.amocrm.ru", False),
        ("https://example.amocrm.ru@evil.example", False),
        ("", False),
    ],
)
def test_the_issuer_must_be_the_configured_account(redis_conn, iss, accepted):
    verifier = tokens(redis_conn)
    if accepted:
        verifier.verify(at(iss=iss))
    else:
        with pytest.raises(TokenRefused, match="another amoCRM account"):
            verifier.verify(at(iss=iss))


def test_without_an_account_id_setting_any_account_id_of_the_account_passes(redis_conn):
    assert tokens(redis_conn).verify(at(account_id=123)).account_id == "123"
    with pytest.raises(TokenRefused, match="AMOCRM_ACCOUNT_ID"):
        tokens(redis_conn, account_id=ACCOUNT_ID).verify(at(account_id=123))


def test_the_audience_is_the_redirect_uris_base_address(redis_conn):
    verifier = tokens(redis_conn, audience_url="https://bridge.example/amocrm/oauth?x=1")
    verifier.verify(at(aud="https://bridge.example"))
    verifier.verify(at(aud=["https://other.example", "https://bridge.example/"]))
    with pytest.raises(TokenRefused, match="wrong audience"):
        verifier.verify(at(aud="https://bridge.example.evil"))
