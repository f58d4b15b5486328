"""amoCRM/Kommo one-time tokens: the ``X-Auth-Token`` the widget's ``$authorizedAjax`` adds.

A token is a JWT signed with HS256 and the integration's secret key (``AMOCRM_CLIENT_SECRET``).
Its claims, as amoCRM documents them: ``iss`` the account's address, ``aud`` the base address of
the integration's redirect URI, ``jti`` the token's UUID, ``iat``/``nbf``/``exp`` timestamps, and
``account_id``, ``user_id`` (the signed-in user). Each token is accepted once: its ``jti`` is
claimed in Redis until the token could no longer be accepted anyway.

Refusals say what is wrong and never quote the token or the key.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from redis import Redis

from integration.errors import IntegrationError

REQUIRED = ("exp", "iat", "nbf", "jti", "iss", "account_id", "user_id")
MAX_LIFETIME = 86400  # amoCRM's tokens live minutes; a longer one is not a one-time token
_ID = re.compile(r"^[1-9][0-9]{0,19}$")
_JTI = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class TokenRefused(IntegrationError):
    """A one-time token that must not be accepted; the message says why (safe to show)."""


@dataclass(frozen=True)
class WidgetUser:
    """Who a verified token speaks for."""

    account_id: str
    user_id: str
    jti: str


def origin(url: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of an address, lower-cased; a bare host is taken as https."""
    try:
        parts = urlsplit(url if "://" in url else "https://" + url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    return parts.scheme, parts.hostname.lower().rstrip("."), None if port in (None, default) else port


def _whole_id(claims: dict[str, Any], name: str) -> str:
    value = claims[name]
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not _ID.match(text):
        raise TokenRefused(f"malformed token: '{name}' must be a positive whole number")
    return text


def _timestamp(claims: dict[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TokenRefused(f"malformed token: '{name}' must be a Unix timestamp")
    return float(value)


class WidgetTokens:
    """Verifies one-time tokens for one amoCRM account and accepts each at most once."""

    def __init__(
        self,
        secret: str,
        account_url: str,
        redis: Redis,
        *,
        account_id: str | None = None,
        audience_url: str | None = None,
        leeway: int = 30,
        clock: Callable[[], float] = time.time,
        prefix: str = "vats:amocrm:jti:",
    ):
        self._secret = secret
        account = origin(account_url)
        if account is None:
            raise ValueError("account_url must be an http(s) address")
        self.account = account
        self.account_id = account_id
        self.audience = origin(audience_url) if audience_url else None
        self.redis, self.leeway, self.clock, self.prefix = redis, leeway, clock, prefix

    def __repr__(self) -> str:
        return f"WidgetTokens(account={self.account!r}, account_id={self.account_id!r})"

    def verify(self, token: str) -> WidgetUser:
        """The user a valid, unused token speaks for; ``TokenRefused`` says why not."""
        claims = self._decode(token)
        now = self.clock()
        expires = _timestamp(claims, "exp")
        if expires <= now - self.leeway:
            raise TokenRefused("the token has expired: amoCRM makes a new one for every request")
        if _timestamp(claims, "nbf") > now + self.leeway or _timestamp(claims, "iat") > now + self.leeway:
            raise TokenRefused("the token is not yet valid (its nbf or iat is in the future; check the clocks)")
        if expires > now + MAX_LIFETIME:
            raise TokenRefused("the token is valid for more than a day: not a one-time token")
        iss = claims["iss"]
        if not isinstance(iss, str) or origin(iss) != self.account:
            raise TokenRefused("wrong account: the token was issued by another amoCRM account than AMOCRM_BASE_URL")
        if self.audience is not None:
            aud = claims.get("aud")
            audiences = aud if isinstance(aud, list) else [aud]
            if not any(isinstance(a, str) and origin(a) == self.audience for a in audiences):
                raise TokenRefused(
                    "wrong audience: the token is for another integration (aud is not AMOCRM_REDIRECT_URI's)"
                )
        account_id = _whole_id(claims, "account_id")
        if self.account_id is not None and account_id != self.account_id:
            raise TokenRefused("wrong account: the token's account_id is not AMOCRM_ACCOUNT_ID")
        user_id = _whole_id(claims, "user_id")
        jti = claims["jti"]
        if not isinstance(jti, str) or not _JTI.match(jti):
            raise TokenRefused("malformed token: 'jti' must be the token's id (a UUID)")
        # Remember the id for as long as the token could still pass the checks above.
        lifetime = max(1, math.ceil(expires + self.leeway - now))
        if not self.redis.set(self.prefix + jti, account_id, nx=True, ex=lifetime):
            raise TokenRefused("the token was already used: each one-time token is accepted once")
        return WidgetUser(account_id=account_id, user_id=user_id, jti=jti)

    def _decode(self, token: str) -> dict[str, Any]:
        """The claims of a token signed with HS256 and our key that has every required claim."""
        try:
            return jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                # Times and the audience are checked by ``verify`` with the injected clock.
                options={"require": list(REQUIRED), "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False, "verify_aud": False, "verify_iss": False},
            )  # fmt: skip
        except jwt.InvalidAlgorithmError:
            raise TokenRefused("the token must be signed with HS256 (the integration's secret key)") from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("bad signature: the token was not signed with AMOCRM_CLIENT_SECRET") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRefused(f"malformed token: the '{exc.claim}' claim is missing") from None
        except jwt.InvalidTokenError:
            raise TokenRefused("malformed token: not a JWT (header.payload.signature)") from None
