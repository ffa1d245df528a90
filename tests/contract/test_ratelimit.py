"""The rate-limit contract in process and on Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chat4all.adapters.memory.ratelimit import InProcessRateLimiter
from chat4all.adapters.redis.client import Keys, open_client
from chat4all.adapters.redis.ratelimit import RedisRateLimiter
from chat4all.ports.ratelimit import RateLimiter
from tests.contract.ratelimit_contract import RateLimiterContract
from tests.servers import server_url, unique_name


class TestInProcessRateLimiter(RateLimiterContract):
    @pytest.fixture
    def limiter(self) -> RateLimiter:
        return InProcessRateLimiter()


@pytest.mark.redis
class TestRedisRateLimiter(RateLimiterContract):
    @pytest.fixture
    async def limiter(self) -> AsyncIterator[RateLimiter]:
        keys = Keys(unique_name("c4test") + ":")
        client = open_client(server_url("redis"))
        try:
            yield RedisRateLimiter(client, keys)
        finally:
            names = [n async for n in client.scan_iter(match=f"{keys.prefix}*", count=1000)]
            if names:
                await client.delete(*names)
            await client.aclose()
