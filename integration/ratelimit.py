"""Fixed-window rate limits in Redis: several limits checked and counted in one round trip."""

from __future__ import annotations

from redis import Redis

from integration.config import RateLimit

# KEYS: one counter per limit. ARGV: (count, window seconds) per limit. Returns the seconds
# until the most constraining exceeded window ends, or 0 when every limit allows the hit.
_HIT = """
local wait = 0
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[2 * i]) end
  if n > tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('TTL', key)
    if ttl > wait then wait = ttl end
  end
end
return wait
"""


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str = "vats:rate:"):
        self.prefix = prefix
        self._hit = redis.register_script(_HIT)

    def hit(self, limits: list[tuple[str, RateLimit]]) -> int:
        """Count one hit against every ``(name, limit)``; seconds to wait, or 0 if allowed."""
        keys = [self.prefix + name for name, _ in limits]
        args = [value for _, limit in limits for value in (limit.count, limit.seconds)]
        return int(self._hit(keys=keys, args=args))
