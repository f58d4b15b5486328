"""The process's shared resources, built lazily from settings: Redis and the operator client.

Nothing connects at import or construction; each resource is made on first use.
"""

from __future__ import annotations

from functools import cached_property

import redis

from integration.config import Settings
from integration.operator.client import OperatorClient
from integration.operator.factory import build_operator_client


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.redis_url, socket_connect_timeout=5, health_check_interval=30)

    @cached_property
    def operator(self) -> OperatorClient:
        """Tokens live in Redis, so this process never invalidates another's pair."""
        return build_operator_client(self.settings, self.redis)
