"""`RateLimiter` on Redis: each bucket a hash {tokens, at}, read and written by one Lua script,
so gateways sharing the Redis share the limit and never race. The caller's clock gives `now`
(the same rule as `chat4all.domain.ratelimit.take`); a bucket expires once it would be full."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from chat4all.adapters.redis.client import Keys, unavailable
from chat4all.domain.ratelimit import Decision, Rule

# KEYS[1] bucket; ARGV: rate, burst, now (s), cost. Returns {allowed, retry_after as text}.
TAKE = """
local rate, burst, now, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if held[1] then
  tokens = math.min(burst, tonumber(held[1]) + math.max(0, now - tonumber(held[2])) * rate)
end
local allowed, retry = 0, (cost - tokens) / rate
if cost <= tokens then
  tokens, allowed, retry = tokens - cost, 1, 0
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, tostring(retry)}
"""


class RedisRateLimiter:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._keys = keys
        self._take: Any = client.register_script(TAKE)

    async def take(self, key: str, rule: Rule, now: datetime, cost: int = 1) -> Decision:
        args = [rule.rate, rule.burst, repr(now.timestamp()), cost]
        with unavailable("rate limit"):
            allowed, retry = await self._take(keys=[self._keys.rate_limit(key)], args=args)
        return Decision(bool(allowed), float(retry))
