"""Operator token lifecycle: one refresh at a time per contract, across every process.

The operator invalidates the previous access/refresh pair whenever a new one is made, so two
processes refreshing at once break each other. ``TokenManager`` therefore renews only while
holding the store's lock, re-reads the store inside the lock (someone may have renewed already),
stores the new pair with a compare-and-set on a generation number before anyone uses it, and
falls back refresh → create → a clear error a person can act on. After the authorization token
is refused it stops asking the operator for ``AUTH_BACKOFF`` seconds: no hot loop.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from integration.errors import (
    AuthorizationRevoked,
    IntegrationDisabled,
    OperatorAuthError,
    OperatorUnavailable,
    TokenInvalid,
)
from integration.logs import fields
from integration.models import TokenPair
from integration.operator.schemas import parse_operator_datetime
from integration.secretbox import SecretBox, SecretKeyError
from integration.timeutil import utc_now

log = logging.getLogger(__name__)

ACCESS_LIFETIME = timedelta(hours=24)
REFRESH_LIFETIME = timedelta(hours=25)
RENEW_MARGIN = timedelta(minutes=5)  # renew this long before the access token expires
AUTH_BACKOFF = 300.0  # seconds without auth calls after the authorization token was refused
AUTHORIZATION_WARNING = timedelta(days=30)

Clock = Callable[[], datetime]


# --- reading expiry times ---------------------------------------------------------------------


def jwt_claims(token: str) -> dict:
    """The claims of a JWT, unverified (only used to schedule renewals), or {} if not a JWT."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def jwt_expiry(token: str) -> datetime | None:
    exp = jwt_claims(token).get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp > 0:
        try:
            return datetime.fromtimestamp(exp, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def parse_expiry(value: str | None, token: str, lifetime: timedelta, now: datetime, tz: ZoneInfo) -> datetime:
    """When a token goes stale: the operator's ``…ExpiredIn`` (a date-time, an epoch or a number
    of seconds), else the JWT ``exp`` claim, else the documented lifetime from now."""
    text = (value or "").strip()
    if text:
        try:
            number = float(text)
        except ValueError:
            try:
                return parse_operator_datetime(text, tz)
            except ValueError:
                pass
        else:
            if number > 1e12:  # epoch milliseconds
                return datetime.fromtimestamp(number / 1000, UTC)
            if number > 1e9:  # epoch seconds
                return datetime.fromtimestamp(number, UTC)
            if number > 0:  # seconds from now
                return now + timedelta(seconds=number)
    return jwt_expiry(token) or now + lifetime


# --- the store --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenState:
    """What the store keeps per contract. Times are UNIX seconds."""

    generation: int = 0
    access_token: str | None = None
    access_expires_at: float = 0.0
    refresh_token: str | None = None
    refresh_expires_at: float = 0.0
    renewed_by: str | None = None  # "create" or "refresh"
    renewed_at: float = 0.0
    blocked_until: float = 0.0  # no auth calls before this time
    blocked_reason: str | None = None  # "revoked" or "disabled"

    def __repr__(self) -> str:  # never show tokens
        return f"TokenState(generation={self.generation}, renewed_by={self.renewed_by!r})"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> TokenState:
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class TokenStore(Protocol):
    """Shared token state per contract key, with a lock and compare-and-set."""

    def load(self, key: str) -> TokenState | None: ...

    def compare_and_set(self, key: str, state: TokenState, expected_generation: int) -> bool:
        """Store ``state`` only if the stored generation is still ``expected_generation``."""

    def lock(self, key: str, lease: float, wait: float):
        """A context manager holding the key's renewal lock; raises OperatorUnavailable on wait timeout."""


class MemoryTokenStore:
    """Token state in this process only (tests, single-process tools)."""

    def __init__(self) -> None:
        self._states: dict[str, TokenState] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def load(self, key: str) -> TokenState | None:
        return self._states.get(key)

    def compare_and_set(self, key: str, state: TokenState, expected_generation: int) -> bool:
        with self._guard:
            current = self._states.get(key)
            if (current.generation if current else 0) != expected_generation:
                return False
            self._states[key] = state
            return True

    @contextmanager
    def lock(self, key: str, lease: float, wait: float) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        if not lock.acquire(timeout=wait):
            raise OperatorUnavailable("another worker is renewing the operator token and has not finished")
        try:
            yield
        finally:
            lock.release()


# The stored value is "<generation>:<sealed state>" (a JSON state in clear: written before sealing).
_CAS_SCRIPT = """
local current = redis.call('GET', KEYS[1])
local generation = 0
if current and string.sub(current, 1, 1) == '{' then
  generation = tonumber(cjson.decode(current)['generation']) or 0
elseif current then
  generation = tonumber(string.match(current, '^(%d+):')) or 0
end
if generation == tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class RedisTokenStore:
    """Token state in Redis, shared by every web and worker process, sealed with ``SECRET_KEYS``
    (only the generation, which the compare-and-set reads, is in clear)."""

    def __init__(self, redis, box: SecretBox, prefix: str = "vats:tokens:"):
        self.redis = redis
        self.box = box
        self.prefix = prefix
        self._cas = redis.register_script(_CAS_SCRIPT)

    def load(self, key: str) -> TokenState | None:
        raw = self.redis.get(self.prefix + key)
        if not raw:
            return None
        if raw.startswith(b"{"):
            return TokenState.from_json(raw)
        try:
            return TokenState.from_json(self.box.open(raw.partition(b":")[2]))
        except SecretKeyError:
            log.error("the stored operator token pair cannot be opened: check SECRET_KEYS", extra=fields(contract=key))
            raise OperatorUnavailable(
                "the stored operator token pair cannot be opened with any key of SECRET_KEYS"
            ) from None

    def compare_and_set(self, key: str, state: TokenState, expected_generation: int) -> bool:
        stored = f"{state.generation}:{self.box.seal(state.to_json())}"
        return bool(self._cas(keys=[self.prefix + key], args=[expected_generation, stored]))

    def forget(self, key: str) -> int:
        """Delete a contract's stored state (its account was deleted); returns the keys removed."""
        return self.redis.delete(self.prefix + key, self.prefix + key + ":lock")

    def reseal(self) -> tuple[int, int]:
        """Seal every stored state with the first key (``secrets rotate``): (sealed, unreadable)."""
        sealed = unreadable = 0
        for name in self.redis.scan_iter(match=f"{self.prefix}*", count=500):
            if name.endswith(b":lock"):
                continue
            key = name.decode()[len(self.prefix) :]
            try:
                state = self.load(key)
            except OperatorUnavailable:  # sealed with a key that is gone: left as it is
                unreadable += 1
                continue
            if state is not None:  # a renewal meanwhile wrote a sealed state already: the CAS skips it
                sealed += int(self.compare_and_set(key, state, state.generation))
        return sealed, unreadable

    @contextmanager
    def lock(self, key: str, lease: float, wait: float) -> Iterator[None]:
        lock = self.redis.lock(self.prefix + key + ":lock", timeout=lease, blocking_timeout=wait)
        if not lock.acquire():
            raise OperatorUnavailable("another worker is renewing the operator token and has not finished")
        try:
            yield
        finally:
            try:
                lock.release()
            except Exception:  # the lease ran out; the next holder owns it now
                log.warning("token lock lease expired before release")


# --- the manager ------------------------------------------------------------------------------


class TokenIssuer(Protocol):
    """The two operator auth calls (implemented by ``client.AuthApi``)."""

    def create(self, authorization_token: str) -> TokenPair: ...

    def refresh(self, refresh_token: str) -> TokenPair: ...


@dataclass(frozen=True)
class TokenStatus:
    """What a person may see about the tokens: times and state, never the tokens."""

    has_pair: bool
    generation: int
    access_expires_at: datetime | None
    refresh_expires_at: datetime | None
    renewed_by: str | None
    renewed_at: datetime | None
    authorization_expires_at: datetime | None
    blocked_reason: str | None
    blocked_until: datetime | None
    warnings: tuple[str, ...]


def contract_key(authorization_token: str) -> str:
    """The store key for a contract: a fingerprint of its authorization token.

    A new authorization token (which invalidates every older token) starts a fresh state.
    """
    return hashlib.sha256(authorization_token.encode()).hexdigest()[:24]


class TokenManager:
    """Hands out a valid access token; renews it safely when it is about to expire or is refused."""

    def __init__(
        self,
        store: TokenStore,
        issuer: TokenIssuer,
        authorization_token: str,
        *,
        clock: Clock = utc_now,
        renew_margin: timedelta = RENEW_MARGIN,
        auth_backoff: float = AUTH_BACKOFF,
        lock_lease: float = 60.0,
        lock_wait: float = 70.0,
    ):
        self.store = store
        self.issuer = issuer
        self._authorization_token = authorization_token
        self.key = contract_key(authorization_token)
        self.clock = clock
        self.renew_margin = renew_margin
        self.auth_backoff = auth_backoff
        self.lock_lease = lock_lease
        self.lock_wait = lock_wait
        self.authorization_expires_at = jwt_expiry(authorization_token)
        self._warned_on: str | None = None
        self._cached: TokenState | None = None  # this process's last view of the store

    def __repr__(self) -> str:
        return f"TokenManager(key={self.key!r})"

    def access_token(self) -> str:
        """A usable access token, renewing first when it is missing or about to expire."""
        self._warn_if_authorization_expires_soon()
        now = self.clock().timestamp()
        margin = self.renew_margin.total_seconds()
        cached = self._cached
        if cached is not None and cached.access_token and cached.access_expires_at - now > margin:
            # Still good by our clock. If another process renewed meanwhile, the operator answers
            # 401 and handle_unauthorized() re-reads the store: a store read per call is not needed.
            return cached.access_token
        state = self._cached = self.store.load(self.key)
        if state is not None:
            self._raise_if_blocked(state, now)
            if state.access_token and state.access_expires_at - now > margin:
                return state.access_token
        return self._renew(stale=state.access_token if state else None)

    def handle_unauthorized(self, rejected_token: str) -> str:
        """The operator refused ``rejected_token``: renew unless another process already did."""
        self._cached = None
        return self._renew(stale=rejected_token, rejected=True)

    def status(self) -> TokenStatus:
        state = self.store.load(self.key) or TokenState()
        now = self.clock()

        def moment(ts: float) -> datetime | None:
            return datetime.fromtimestamp(ts, UTC) if ts else None

        warnings = []
        if self.authorization_expires_at and self.authorization_expires_at - now < AUTHORIZATION_WARNING:
            warnings.append(self._authorization_warning(self.authorization_expires_at, now))
        blocked = state.blocked_until > now.timestamp()
        return TokenStatus(
            has_pair=bool(state.access_token),
            generation=state.generation,
            access_expires_at=moment(state.access_expires_at),
            refresh_expires_at=moment(state.refresh_expires_at),
            renewed_by=state.renewed_by,
            renewed_at=moment(state.renewed_at),
            authorization_expires_at=self.authorization_expires_at,
            blocked_reason=state.blocked_reason if blocked else None,
            blocked_until=moment(state.blocked_until) if blocked else None,
            warnings=tuple(warnings),
        )

    # -- internals --

    def _renew(self, stale: str | None, rejected: bool = False) -> str:
        with self.store.lock(self.key, lease=self.lock_lease, wait=self.lock_wait):
            state = self.store.load(self.key) or TokenState()
            now = self.clock()
            self._raise_if_blocked(state, now.timestamp())
            if state.access_token and state.access_token != stale and state.access_expires_at > now.timestamp():
                self._cached = state
                return state.access_token  # another process renewed while we waited
            pair, how = None, "refresh"
            if state.refresh_token and state.refresh_expires_at > now.timestamp():
                try:
                    pair = self.issuer.refresh(state.refresh_token)
                except TokenInvalid:
                    log.info("operator refused the refresh token; creating a new pair")
            if pair is None:
                how = "create"
                try:
                    pair = self.issuer.create(self._authorization_token)
                except IntegrationDisabled as exc:
                    self._block(state, exc)
                    raise
                except OperatorAuthError as exc:
                    self._block(state, exc)
                    raise AuthorizationRevoked(
                        method=exc.method, status=exc.status, error_code=exc.error_code, error_message=exc.error_message
                    ) from None
            renewed = replace(
                state,
                generation=state.generation + 1,
                access_token=pair.access_token,
                access_expires_at=pair.access_expires_at.timestamp(),
                refresh_token=pair.refresh_token,
                refresh_expires_at=pair.refresh_expires_at.timestamp(),
                renewed_by=how,
                renewed_at=now.timestamp(),
                blocked_until=0.0,
                blocked_reason=None,
            )
            if not self.store.compare_and_set(self.key, renewed, state.generation):
                # Our lease ran out and another process stored a pair meanwhile: keep theirs.
                log.warning("token store changed during renewal; using the stored pair")
                current = self._cached = self.store.load(self.key)
                return current.access_token if current and current.access_token else pair.access_token
            self._cached = renewed
            log.info(
                "operator token renewed",
                extra=fields(how=how, generation=renewed.generation, expires=pair.access_expires_at),
            )
            return pair.access_token

    def _block(self, state: TokenState, exc: Exception) -> None:
        reason = "disabled" if isinstance(exc, IntegrationDisabled) else "revoked"
        blocked = replace(
            state,
            generation=state.generation + 1,
            access_token=None,
            refresh_token=None,
            access_expires_at=0.0,
            refresh_expires_at=0.0,
            blocked_until=self.clock().timestamp() + self.auth_backoff,
            blocked_reason=reason,
        )
        self.store.compare_and_set(self.key, blocked, state.generation)
        self._cached = None
        log.error("operator authorization failed", extra=fields(reason=reason, error=str(exc)))

    def _raise_if_blocked(self, state: TokenState, now: float) -> None:
        if state.blocked_until > now:
            retry_in = int(state.blocked_until - now)
            if state.blocked_reason == "disabled":
                raise IntegrationDisabled(f"{IntegrationDisabled.default_message} (next try in {retry_in} s)")
            raise AuthorizationRevoked(f"{AuthorizationRevoked.default_message} (next try in {retry_in} s)")

    def _authorization_warning(self, expires: datetime, now: datetime) -> str:
        if expires <= now:
            return "the authorization token has expired: make a new one in the operator's web cabinet"
        days = (expires - now).days
        return (
            f"the authorization token expires in {days} day(s) ({expires:%Y-%m-%d}): make a new one in "
            "the operator's web cabinet and set OPERATOR_AUTHORIZATION_TOKEN"
        )

    def _warn_if_authorization_expires_soon(self) -> None:
        now = self.clock()
        if not self.authorization_expires_at or self.authorization_expires_at - now >= AUTHORIZATION_WARNING:
            return
        today = now.strftime("%Y-%m-%d")
        if self._warned_on != today:
            self._warned_on = today
            log.warning(self._authorization_warning(self.authorization_expires_at, now))
