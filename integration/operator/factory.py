"""Building an ``OperatorClient`` from settings."""

from __future__ import annotations

import requests

from integration.config import Settings
from integration.operator.auth import MemoryTokenStore, RedisTokenStore, TokenManager, TokenStore
from integration.operator.client import AuthApi, OperatorClient, RetryPolicy, Transport
from integration.secretbox import SecretBox


def build_operator_client(
    settings: Settings,
    redis=None,
    *,
    store: TokenStore | None = None,
    box: SecretBox | None = None,
    session: requests.Session | None = None,
) -> OperatorClient:
    """A client whose tokens live in Redis (shared by every process, sealed with ``SECRET_KEYS``)
    when ``redis`` is given."""
    transport = Transport(
        settings.operator_api_url,
        session=session,
        connect_timeout=settings.operator_connect_timeout,
        read_timeout=settings.operator_read_timeout,
    )
    if store is None:
        box = box or SecretBox(settings.secret_keys)
        store = RedisTokenStore(redis, box) if redis is not None else MemoryTokenStore()
    # The lock lease outlives one auth request (connect + read timeout) with room to spare.
    lease = 2 * (settings.operator_connect_timeout + settings.operator_read_timeout) + 5
    tokens = TokenManager(
        store,
        AuthApi(transport, settings.tz),
        settings.operator_authorization_token,
        lock_lease=lease,
        lock_wait=lease + 5,
    )
    return OperatorClient(
        transport, tokens, tz=settings.tz, retry=RetryPolicy(max_retries=settings.operator_max_retries)
    )
