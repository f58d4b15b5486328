"""amoCRM/Kommo OAuth 2 tokens, shared by every process through Redis.

amoCRM rotates refresh tokens: each refresh invalidates the refresh token it used. Two workers
refreshing at once would leave one of them (and then everyone) with a dead token, so a refresh
happens under a Redis lock, re-reads the stored pair first (another process may have refreshed
meanwhile), and stores the new pair before anyone uses it. A long-lived token (amoCRM's
"long-lived access token") needs none of this.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import requests
from redis import Redis

from integration.crm.base import CrmError
from integration.secretbox import SecretBox, SecretKeyError

log = logging.getLogger(__name__)

RENEW_MARGIN = 300  # seconds before expiry when a token counts as expired


@dataclass(frozen=True)
class TokenPair:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float


class AmoOAuth:
    """``POST <base>/oauth2/access_token`` (authorization code or refresh token)."""

    def __init__(self, base_url: str, client_id: str, client_secret: str, redirect_uri: str, *, session=None):
        self.base_url = base_url.rstrip("/")
        self.client_id, self._secret, self.redirect_uri = client_id, client_secret, redirect_uri
        self.session = session or requests.Session()

    def __repr__(self) -> str:
        return f"AmoOAuth({self.base_url!r}, client_id={self.client_id!r})"

    def exchange(self, code: str, now: float) -> TokenPair:
        return self._token({"grant_type": "authorization_code", "code": code}, now)

    def refresh(self, refresh_token: str, now: float) -> TokenPair:
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token}, now)

    def _token(self, grant: dict, now: float) -> TokenPair:
        body = {"client_id": self.client_id, "client_secret": self._secret, "redirect_uri": self.redirect_uri} | grant
        try:
            response = self.session.post(f"{self.base_url}/oauth2/access_token", json=body, timeout=(5, 20))
        except requests.RequestException as exc:
            raise CrmError(f"amoCRM OAuth: no answer ({type(exc).__name__})") from None
        if response.status_code in (400, 401, 403):
            raise CrmError(
                f"amoCRM OAuth refused the {grant['grant_type'].replace('_', ' ')} (HTTP {response.status_code}): "
                "authorize the integration again and set AMOCRM_AUTH_CODE",
                retryable=False,
            )
        try:
            data = response.json()
            return TokenPair(data["access_token"], data["refresh_token"], now + float(data["expires_in"]))
        except (ValueError, KeyError, TypeError):
            raise CrmError(f"amoCRM OAuth answered HTTP {response.status_code} without tokens") from None


class AmoTokens:
    """The account's current access token; one refresh at a time across every process."""

    def __init__(
        self,
        redis: Redis,
        oauth: AmoOAuth | None,
        *,
        box: SecretBox,
        key: str = "vats:amocrm:tokens",
        auth_code: str | None = None,
        long_lived: str | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.redis, self.oauth, self.box, self.key = redis, oauth, box, key
        self._auth_code, self._long_lived = auth_code, long_lived
        self.clock = clock

    def __repr__(self) -> str:
        return f"AmoTokens({self.key!r})"

    def access_token(self) -> str:
        if self._long_lived:
            return self._long_lived
        pair = self._load()
        if pair is not None and pair.expires_at - RENEW_MARGIN > self.clock():
            return pair.access_token
        with self.redis.lock(f"{self.key}:lock", timeout=60, blocking_timeout=60):
            pair = self._load()  # another process may have refreshed while this one waited
            if pair is not None and pair.expires_at - RENEW_MARGIN > self.clock():
                return pair.access_token
            if pair is not None and self.oauth is not None:
                fresh = self.oauth.refresh(pair.refresh_token, self.clock())
            elif self._auth_code and self.oauth is not None:
                fresh = self.oauth.exchange(self._auth_code, self.clock())
            else:
                raise CrmError(
                    "no amoCRM tokens yet: set AMOCRM_AUTH_CODE (or AMOCRM_LONG_LIVED_TOKEN)", retryable=False
                )
            self._store(fresh)  # stored before anyone uses it
            return fresh.access_token

    def expire(self, access_token: str) -> None:
        """amoCRM refused ``access_token``: the next caller refreshes (unless someone already did)."""
        with self.redis.lock(f"{self.key}:lock", timeout=60, blocking_timeout=60):
            pair = self._load()  # under the lock: never write back a pair someone just replaced
            if pair is not None and pair.access_token == access_token:
                self._store(TokenPair(pair.access_token, pair.refresh_token, 0))

    def reseal(self) -> int:
        """Seal the stored pair with the first key (``secrets rotate``); returns 1 if there is one."""
        with self.redis.lock(f"{self.key}:lock", timeout=60, blocking_timeout=60):
            pair = self._load()
            if pair is not None:
                self._store(pair)
        return int(pair is not None)

    def _store(self, pair: TokenPair) -> None:
        self.redis.set(self.key, self.box.seal(json.dumps(asdict(pair))))

    def _load(self) -> TokenPair | None:
        raw = self.redis.get(self.key)
        if not raw:
            return None
        try:
            return TokenPair(**json.loads(self.box.open(raw)))
        except SecretKeyError:
            log.error("the stored amoCRM token pair cannot be opened: check SECRET_KEYS")
            raise CrmError("the stored amoCRM token pair cannot be opened with any key of SECRET_KEYS") from None
