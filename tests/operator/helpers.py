"""A client wired to a fake base URL for ``responses`` tests, with a token already stored."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from integration.operator.auth import MemoryTokenStore, TokenManager, TokenState
from integration.operator.client import AuthApi, OperatorClient, RetryPolicy, Transport

BASE = "https://operator.test"
API = BASE + "/api/v1/"
TZ = ZoneInfo("Europe/Moscow")
AUTHORIZATION = "authorization-token-secret"
ACCESS = "access-token-secret-1"
REFRESH = "refresh-token-secret-1"


@dataclass
class Rig:
    client: OperatorClient
    store: MemoryTokenStore
    tokens: TokenManager
    sleeps: list[float] = field(default_factory=list)


def make_rig(max_retries: int = 3, seeded: bool = True) -> Rig:
    transport = Transport(BASE, connect_timeout=1, read_timeout=1)
    store = MemoryTokenStore()
    tokens = TokenManager(store, AuthApi(transport, TZ), AUTHORIZATION)
    if seeded:
        now = datetime.now(UTC).timestamp()
        state = TokenState(
            generation=1,
            access_token=ACCESS,
            access_expires_at=now + 3600,
            refresh_token=REFRESH,
            refresh_expires_at=now + 7200,
        )
        store.compare_and_set(tokens.key, state, 0)
    sleeps: list[float] = []
    client = OperatorClient(transport, tokens, tz=TZ, retry=RetryPolicy(max_retries=max_retries), sleep=sleeps.append)
    return Rig(client, store, tokens, sleeps)


def envelope(result: dict | None = None, code: int = 0, message: str = "") -> dict:
    return {
        "error": {"errorCode": code, "errorMessage": message},
        "result": {"apiName": "x", "code": 0, "requestHash": "h==", **(result or {})},
    }


def token_pair(n: int) -> dict:
    return {
        "accessToken": f"access-token-secret-{n}",
        "accessTokenExpiredIn": "2099-01-01 00:00:00",
        "refreshToken": f"refresh-token-secret-{n}",
        "refreshTokenExpiredIn": "2099-01-01 01:00:00",
    }


def body_of(call) -> dict:
    return json.loads(call.request.body)
