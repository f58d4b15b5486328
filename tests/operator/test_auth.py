"""TokenManager rules with in-memory and Redis stores and a scripted issuer."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from integration.errors import AuthorizationRevoked, IntegrationDisabled, OperatorUnavailable, TokenInvalid
from integration.models import TokenPair
from integration.operator.auth import (
    MemoryTokenStore,
    RedisTokenStore,
    TokenManager,
    TokenState,
    jwt_expiry,
    parse_expiry,
)
from integration.sandbox.tokens import mint
from integration.secretbox import SecretBox
from tests.conftest import SECRET_KEYS
from tests.operator.helpers import TZ


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


class Issuer:
    """Hands out numbered pairs; can be told to refuse; records every call."""

    def __init__(self, clock: Clock, delay: float = 0.0):
        self.clock = clock
        self.delay = delay
        self.calls: list[str] = []
        self.refuse_refresh = False
        self.refuse_create: Exception | None = None
        self._lock = threading.Lock()

    def _pair(self) -> TokenPair:
        with self._lock:
            n = len(self.calls)
        now = self.clock()
        return TokenPair(f"access-{n}", now + timedelta(hours=24), f"refresh-{n}", now + timedelta(hours=25))

    def create(self, authorization_token: str) -> TokenPair:
        with self._lock:
            self.calls.append("create")
        time.sleep(self.delay)
        if self.refuse_create:
            raise self.refuse_create
        return self._pair()

    def refresh(self, refresh_token: str) -> TokenPair:
        with self._lock:
            self.calls.append("refresh")
        time.sleep(self.delay)
        if self.refuse_refresh:
            raise TokenInvalid(method="auth/integrationapi/refresh", status=401)
        return self._pair()


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryTokenStore()
    return RedisTokenStore(request.getfixturevalue("redis_conn"), SecretBox([SECRET_KEYS]))


def manager(store, issuer, clock, token="authorization-token", **kw) -> TokenManager:
    return TokenManager(store, issuer, token, clock=clock, **kw)


def test_first_use_creates_then_reuses(store):
    clock = Clock()
    issuer = Issuer(clock)
    tokens = manager(store, issuer, clock)
    assert tokens.access_token() == "access-1"
    assert tokens.access_token() == "access-1"
    assert issuer.calls == ["create"]


def test_renews_by_refresh_before_expiry(store):
    clock = Clock()
    issuer = Issuer(clock)
    tokens = manager(store, issuer, clock)
    tokens.access_token()
    clock.advance(hours=23, minutes=56)  # inside the 5-minute margin
    assert tokens.access_token() == "access-2"
    assert issuer.calls == ["create", "refresh"]
    assert tokens.status().renewed_by == "refresh" and tokens.status().generation == 2


def test_expired_refresh_token_goes_straight_to_create(store):
    clock = Clock()
    issuer = Issuer(clock)
    tokens = manager(store, issuer, clock)
    tokens.access_token()
    clock.advance(hours=26)
    tokens.access_token()
    assert issuer.calls == ["create", "create"]


def test_unauthorized_rereads_the_store_before_renewing(store):
    clock = Clock()
    issuer = Issuer(clock)
    first, second = manager(store, issuer, clock), manager(store, issuer, clock)
    token = first.access_token()
    assert first.handle_unauthorized(token) == "access-2"  # refresh
    assert second.handle_unauthorized(token) == "access-2"  # someone already renewed: no call
    assert issuer.calls == ["create", "refresh"]


def test_refused_refresh_falls_back_to_create(store):
    clock = Clock()
    issuer = Issuer(clock)
    tokens = manager(store, issuer, clock)
    token = tokens.access_token()
    issuer.refuse_refresh = True
    assert tokens.handle_unauthorized(token) == "access-3"
    assert issuer.calls == ["create", "refresh", "create"]


def test_revoked_authorization_blocks_auth_calls_for_a_while(store):
    clock = Clock()
    issuer = Issuer(clock)
    tokens = manager(store, issuer, clock, auth_backoff=300)
    token = tokens.access_token()
    issuer.refuse_refresh = True
    issuer.refuse_create = TokenInvalid(method="auth/integrationapi/create", status=401)
    with pytest.raises(AuthorizationRevoked, match="make a new one"):
        tokens.handle_unauthorized(token)
    calls = len(issuer.calls)
    for _ in range(20):
        with pytest.raises(AuthorizationRevoked):
            tokens.access_token()
    assert len(issuer.calls) == calls
    assert tokens.status().blocked_reason == "revoked"
    clock.advance(seconds=301)
    issuer.refuse_create = None
    assert tokens.access_token().startswith("access-")
    assert tokens.status().blocked_reason is None


def test_switched_off_api_is_reported_as_such(store):
    clock = Clock()
    issuer = Issuer(clock)
    issuer.refuse_create = IntegrationDisabled(method="auth/integrationapi/create", status=403)
    tokens = manager(store, issuer, clock)
    with pytest.raises(IntegrationDisabled):
        tokens.access_token()
    with pytest.raises(IntegrationDisabled, match="switch it on"):
        tokens.access_token()
    assert issuer.calls == ["create"]


def test_a_new_authorization_token_starts_a_fresh_state(store):
    clock = Clock()
    issuer = Issuer(clock)
    manager(store, issuer, clock, token="old").access_token()
    manager(store, issuer, clock, token="new").access_token()
    assert issuer.calls == ["create", "create"]


def test_threads_share_one_refresh(store):
    clock = Clock()
    issuer = Issuer(clock, delay=0.05)
    managers = [manager(store, issuer, clock) for _ in range(16)]
    managers[0].access_token()
    clock.advance(hours=23, minutes=58)
    results = []
    threads = [threading.Thread(target=lambda m=m: results.append(m.access_token())) for m in managers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert issuer.calls == ["create", "refresh"]
    assert set(results) == {"access-2"}


def test_lock_wait_timeout_is_operator_unavailable(redis_conn):
    store = RedisTokenStore(redis_conn, SecretBox([SECRET_KEYS]))
    with (
        store.lock("k", lease=5, wait=5),
        pytest.raises(OperatorUnavailable, match="renewing"),
        store.lock("k", lease=5, wait=0.1),
    ):
        pass


def test_compare_and_set_refuses_a_stale_generation(store):
    assert store.compare_and_set("k", TokenState(generation=1), 0)
    assert not store.compare_and_set("k", TokenState(generation=2), 0)
    assert store.compare_and_set("k", TokenState(generation=2), 1)
    assert store.load("k").generation == 2


def test_state_repr_never_shows_tokens():
    state = TokenState(access_token="secret-a", refresh_token="secret-r")
    assert "secret" not in repr(state)
    pair = TokenPair("secret-a", datetime.now(UTC), "secret-r", datetime.now(UTC))
    assert "secret" not in repr(pair)


def test_authorization_expiry_warning_30_days_ahead(caplog):
    clock = Clock()
    token = mint({"exp": int((clock.now + timedelta(days=20)).timestamp())}, b"k")
    tokens = manager(MemoryTokenStore(), Issuer(clock), clock, token=token)
    with caplog.at_level(logging.WARNING):
        tokens.access_token()
        tokens.access_token()
    warnings = [r for r in caplog.records if "expires in" in r.getMessage()]
    assert len(warnings) == 1 and "20 day(s)" in warnings[0].getMessage()
    assert tokens.status().warnings
    assert token not in caplog.text
    clock.advance(days=-20)
    far = manager(MemoryTokenStore(), Issuer(clock), clock, token=token)
    assert far.status().warnings == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-28 15:00:00", datetime(2026, 11, 28, 12, 0, tzinfo=UTC)),
        ("2026-11-28T12:00:00Z", datetime(2026, 11, 28, 12, 0, tzinfo=UTC)),
        ("2026-11-28T15:00:00+03:00", datetime(2026, 11, 28, 12, 0, tzinfo=UTC)),
        ("1795867200", datetime.fromtimestamp(1795867200, UTC)),
        ("1795867200000", datetime.fromtimestamp(1795867200, UTC)),
        ("86400", datetime(2026, 11, 28, 12, 0, tzinfo=UTC)),
    ],
)
def test_expiry_formats(value, expected):
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert parse_expiry(value, "not-a-jwt", timedelta(hours=24), now, TZ) == expected


def test_expiry_falls_back_to_jwt_then_lifetime():
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    token = mint({"exp": int(now.timestamp()) + 60}, b"k")
    assert parse_expiry("garbage", token, timedelta(hours=24), now, TZ) == now + timedelta(seconds=60)
    assert parse_expiry(None, "opaque", timedelta(hours=24), now, TZ) == now + timedelta(hours=24)
    assert jwt_expiry("a.b.c") is None
