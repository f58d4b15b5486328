"""Fixed-window rate limits in Redis: several limits checked and counted in one round trip."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

from redis import Redis

from integration.config import RateLimit

# KEYS: one counter per limit. ARGV: (count, window seconds) per limit. A hit is counted only
# when every limit allows it, so refused requests never use up anyone's allowance. Returns
# {0, 0} when counted, else {seconds until the most constraining full window ends, its index}.
_HIT = """
local wait, refused = 0, 0
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('TTL', key)
    if ttl < 1 then ttl = tonumber(ARGV[2 * i]) end
    if ttl > wait then wait, refused = ttl, i end
  end
end
if refused > 0 then return {wait, refused} end
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[2 * i]) end
end
return {0, 0}
"""


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str = "vats:rate:"):
        self.prefix = prefix
        self._hit = redis.register_script(_HIT)

    def attempt(self, limits: list[tuple[str, RateLimit]]) -> tuple[int, str | None]:
        """Count one hit against every ``(name, limit)`` if all allow it, in one round trip.
        Returns ``(0, None)`` when counted, else (seconds to wait, the name of the limit)."""
        keys = [self.prefix + name for name, _ in limits]
        args = [value for _, limit in limits for value in (limit.count, limit.seconds)]
        wait, refused = self._hit(keys=keys, args=args)
        return int(wait), limits[int(refused) - 1][0] if refused else None

    def hit(self, limits: list[tuple[str, RateLimit]]) -> int:
        """``attempt``'s seconds to wait: 0 when the hit was counted."""
        return self.attempt(limits)[0]


# KEYS: the pacer's key. ARGV: interval seconds, burst. Uses the server's clock, so every
# process agrees. Returns the seconds to wait before this request may go (as text).
_PACE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now - (burst - 1) * interval)
redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', math.max(1000, math.ceil((slot + interval - now) * 1000) + 1000))
return tostring(math.max(0, slot - now))
"""


class Pacer:
    """A leaky bucket shared by every process: requests go ``rate`` per second on average, with
    bursts of up to ``burst`` (Bitrix24 allows 2/s with a bucket of 50)."""

    def __init__(self, redis: Redis, key: str, rate: float, burst: int, sleep=time.sleep):
        self.key, self.interval, self.burst, self.sleep = key, 1.0 / rate, burst, sleep
        self._script = redis.register_script(_PACE)

    def wait(self) -> float:
        """Block until this request's turn; returns the seconds waited."""
        delay = float(self._script(keys=[self.key], args=[self.interval, self.burst]))
        if delay > 0:
            self.sleep(delay)
        return delay


# KEYS: the account's set of held slots (member: a holder's token, score: when its lease ends).
# ARGV: how many may be held, the lease in seconds, the token. Expired leases (a killed worker's)
# free their slot. Returns 1 when a slot was taken.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
return 1
"""


class Slots:
    """At most ``most`` holders at once across every process (a semaphore with leases)."""

    def __init__(self, redis: Redis, key: str, most: int, lease: float):
        self.redis, self.key, self.most, self.lease = redis, key, most, lease
        self._take = redis.register_script(_TAKE)

    @contextlib.contextmanager
    def hold(self) -> Iterator[bool]:
        """Yields whether a slot was taken (it is given back on exit); never waits."""
        token = uuid.uuid4().hex
        taken = bool(self._take(keys=[self.key], args=[self.most, self.lease, token]))
        try:
            yield taken
        finally:
            if taken:
                self.redis.zrem(self.key, token)
