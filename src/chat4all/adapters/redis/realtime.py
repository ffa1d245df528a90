"""The three real-time ports on one Redis connection pool, opened and closed together."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from chat4all.adapters.redis.cache import RedisCache
from chat4all.adapters.redis.client import DEFAULT_PREFIX, Keys, open_client, unavailable
from chat4all.adapters.redis.hub import RedisHub
from chat4all.adapters.redis.presence import SESSION_TTL_SECONDS, RedisPresence
from chat4all.ports.clock import Clock


@dataclass(frozen=True)
class RedisRealtime:
    """`hub`, `presence` and `cache` for one process, on one connection pool (its connections
    named `{prefix}pool` in CLIENT LIST). The hub adds one connection of its own in subscribe
    mode (`{prefix}hub`). Presence heartbeats run until `close`."""

    client: Redis
    hub: RedisHub
    presence: RedisPresence
    cache: RedisCache

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        clock: Clock,
        prefix: str = DEFAULT_PREFIX,
        session_ttl_seconds: float = SESSION_TTL_SECONDS,
    ) -> RedisRealtime:
        """The adapters for the Redis at `url`, every key and channel under `prefix`. Connects
        lazily: call `ping` to check the server at start."""
        client = open_client(url, client_name=f"{prefix}pool")
        keys = Keys(prefix)
        presence = RedisPresence(client, keys, clock, session_ttl_seconds=session_ttl_seconds)
        presence.start_heartbeats()
        return cls(client, RedisHub(client, keys), presence, RedisCache(client, keys))

    async def ping(self) -> None:
        """Raises Unavailable when Redis cannot be reached."""
        with unavailable("ping"):
            await self.client.ping()

    async def close(self) -> None:
        await self.hub.close()
        await self.presence.close()
        await self.client.aclose()
