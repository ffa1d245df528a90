"""`KeyValueCache` on Redis strings: GET, SET with PX, DEL."""

from __future__ import annotations

from redis.asyncio import Redis

from chat4all.adapters.redis.client import Keys, unavailable


class RedisCache:
    """Entries live at `{prefix}cache:{key}`; a TTL is kept to the millisecond by Redis."""

    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    async def get(self, key: str) -> bytes | None:
        with unavailable("cache get"):
            value = await self._client.get(self._keys.cache(key))
        return value.encode() if isinstance(value, str) else value  # str only if decoding

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        name = self._keys.cache(key)
        with unavailable("cache set"):
            if ttl_seconds is None:
                await self._client.set(name, value)  # also drops an earlier TTL
            elif ttl_seconds <= 0:  # already expired: Redis refuses a TTL of 0
                await self._client.delete(name)
            else:
                await self._client.set(name, value, px=max(1, round(ttl_seconds * 1000)))

    async def delete(self, key: str) -> None:
        with unavailable("cache delete"):
            await self._client.delete(self._keys.cache(key))
