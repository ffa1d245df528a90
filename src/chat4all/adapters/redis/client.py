"""The Redis client every adapter here shares, key names, and driver errors as chat4all's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import UUID

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from chat4all.domain.errors import Unavailable

DEFAULT_PREFIX = "chat4all:"
CONNECT_TIMEOUT_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 5.0
MAX_CONNECTIONS = 64


def open_client(url: str, *, client_name: str | None = None) -> Redis:
    """A client with its own connection pool for `url` (`redis://host:port/db`, `rediss://`,
    `unix://`), its connections named `client_name` in CLIENT LIST. Nothing is connected until
    the first command.

    A command that meets a broken connection (Redis restarted) reconnects and tries twice more
    within about half a second, then fails as Unavailable: a request must not hang for the
    driver's default of ten tries.
    """
    return Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        socket_keepalive=True,
        max_connections=MAX_CONNECTIONS,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.25), retries=2),
        health_check_interval=30,
        client_name=client_name,
    )


@dataclass(frozen=True)
class Keys:
    """Every key and channel name, under one prefix (`chat4all:` unless told otherwise).

    The prefix also separates pub/sub channels, which Redis shares across its numbered
    databases.
    """

    prefix: str = DEFAULT_PREFIX

    def stream(self, user_id: UUID) -> str:
        """Pub/sub channel of one user's real-time frames."""
        return f"{self.prefix}stream:{user_id}"

    def sessions(self, user_id: UUID) -> str:
        """Sorted set: the user's connected sessions, scored by their last heartbeat."""
        return f"{self.sessions_prefix}{user_id}"

    @property
    def sessions_prefix(self) -> str:
        return f"{self.prefix}presence:online:"

    @property
    def online_users(self) -> str:
        """Sorted set: the users online, scored by their latest heartbeat (the seed's
        `presence:online`); leaving it is what makes a user's going offline announced once."""
        return f"{self.prefix}presence:online_users"

    @property
    def last_seen(self) -> str:
        """Sorted set: every user's last-seen time."""
        return f"{self.prefix}presence:last_seen"

    def cache(self, key: str) -> str:
        """String: one cache entry."""
        return f"{self.prefix}cache:{key}"

    def rate_limit(self, key: str) -> str:
        """Hash {tokens, at}: one token bucket (the seed's `rate_limit:` keys)."""
        return f"{self.prefix}rate_limit:{key}"


@contextmanager
def unavailable(what: str) -> Iterator[None]:
    """Turn a Redis error raised inside the block into `Unavailable`."""
    try:
        yield
    except RedisError as e:
        raise Unavailable(f"redis: {what} failed: {e}") from e
    except OSError as e:  # a socket error the driver let through
        raise Unavailable(f"redis: {what} failed: {e}") from e
