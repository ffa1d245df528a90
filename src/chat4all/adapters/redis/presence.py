"""`PresenceStore` on Redis sorted sets, after the seed's `ZADD presence:online {ts} {user}`.

The seed keeps one sorted set of users scored by their last activity, pruned with
ZREMRANGEBYSCORE. A user may have several sessions (phone, laptop), so here each user has a
sorted set of sessions scored by their last heartbeat: the user is online while any score is
younger than the session TTL. Each gateway re-scores the sessions it holds every third of the
TTL, so when a gateway dies without saying goodbye its sessions age out within one TTL, and the
key itself expires a TTL after its last write. Last-seen times live in one more sorted set,
only ever moved forward (ZADD GT).

Which call moved a user between online and offline is decided inside Redis, by Lua scripts
(atomic): a user enters the `online_users` set with their first live session and leaves it with
the last one, and only the call that added or removed them reports the change. A user whose
every session aged out (their gateway died) is taken out of that set by `sweep_expired`, which
any gateway may run: the script hands each such user to one caller.

Scores are microseconds since the Unix epoch, exact in a double until the year 2255. Times come
from the caller (`at`) and from the injected clock, so gateways need roughly synchronised
clocks (NTP); a TTL of a minute tolerates seconds of skew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from redis.asyncio import Redis

from chat4all.adapters.redis.client import Keys, unavailable
from chat4all.domain.errors import Unavailable
from chat4all.ports.clock import Clock
from chat4all.ports.realtime import PresenceState

log = logging.getLogger(__name__)

SESSION_TTL_SECONDS = 60.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _MICROSECOND


def _datetime(micros: float) -> datetime:
    return _EPOCH + timedelta(microseconds=int(micros))


# KEYS: sessions, online_users, last_seen. ARGV: session, now, cutoff, user, ttl_ms.
# Returns 1 when the user was not online before this session.
_CONNECT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[3], 'GT', ARGV[2], ARGV[4])
return redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
"""

# KEYS: sessions, online_users, last_seen. ARGV: session, now, cutoff, user.
# Returns 1 when this was the user's last live session.
_DISCONNECT = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[3], 'GT', ARGV[2], ARGV[4])
if removed == 1 and redis.call('ZCARD', KEYS[1]) == 0 then
  return redis.call('ZREM', KEYS[2], ARGV[4])
end
return 0
"""

# KEYS: online_users, last_seen. ARGV: cutoff, session key prefix, limit.
# Users not beaten for a TTL whose sessions all expired: removed, returned with last seen.
_SWEEP = """
local gone = {}
for _, user in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])) do
  local sessions = ARGV[2] .. user
  redis.call('ZREMRANGEBYSCORE', sessions, '-inf', ARGV[1])
  local live = redis.call('ZREVRANGE', sessions, 0, 0, 'WITHSCORES')
  if #live == 0 then
    redis.call('ZREM', KEYS[1], user)
    table.insert(gone, user)
    table.insert(gone, redis.call('ZSCORE', KEYS[2], user) or false)
  else
    redis.call('ZADD', KEYS[1], live[2], user)
  end
end
return gone
"""
SWEEP_BATCH = 1000


class RedisPresence:
    def __init__(
        self,
        client: Redis,
        keys: Keys,
        clock: Clock,
        *,
        session_ttl_seconds: float = SESSION_TTL_SECONDS,
    ) -> None:
        self._client = client
        self._keys = keys
        self._clock = clock
        self._ttl_micros = int(session_ttl_seconds * 1_000_000)
        self._ttl_ms = int(session_ttl_seconds * 1000)
        self._heartbeat_seconds = session_ttl_seconds / 3
        self._local: dict[tuple[UUID, str], None] = {}  # sessions this process holds
        self._heartbeats: asyncio.Task[None] | None = None
        self._connect = client.register_script(_CONNECT)
        self._disconnect = client.register_script(_DISCONNECT)
        self._sweep = client.register_script(_SWEEP)

    async def connected(self, user_id: UUID, session_id: str, at: datetime) -> bool:
        when = _micros(at)
        with unavailable("presence connect"):
            came_online = await self._connect(
                keys=self._user_keys(user_id),
                args=[session_id, when, when - self._ttl_micros, str(user_id), self._ttl_ms],
            )
        self._local[(user_id, session_id)] = None
        return bool(came_online)

    async def disconnected(self, user_id: UUID, session_id: str, at: datetime) -> bool:
        self._local.pop((user_id, session_id), None)
        when = _micros(at)
        with unavailable("presence disconnect"):
            went_offline = await self._disconnect(
                keys=self._user_keys(user_id),
                args=[session_id, when, when - self._ttl_micros, str(user_id)],
            )
        return bool(went_offline)

    async def sweep_expired(self) -> list[PresenceState]:
        cutoff = _micros(self._clock.now()) - self._ttl_micros
        with unavailable("presence sweep"):
            gone = await self._sweep(
                keys=[self._keys.online_users, self._keys.last_seen],
                args=[cutoff, self._keys.sessions_prefix, SWEEP_BATCH],
            )
        return [
            PresenceState(
                UUID(_text(user)), False, None if seen is None else _datetime(float(seen))
            )
            for user, seen in zip(gone[::2], gone[1::2], strict=True)
        ]

    def _user_keys(self, user_id: UUID) -> list[str]:
        return [self._keys.sessions(user_id), self._keys.online_users, self._keys.last_seen]

    async def states(self, user_ids: Sequence[UUID]) -> list[PresenceState]:
        if not user_ids:
            return []
        cutoff = _micros(self._clock.now()) - self._ttl_micros
        with unavailable("presence states"):
            async with self._client.pipeline(transaction=False) as pipe:
                for user_id in user_ids:
                    pipe.zcount(self._keys.sessions(user_id), f"({cutoff}", "+inf")
                pipe.zmscore(self._keys.last_seen, [str(u) for u in user_ids])
                *live, last_seen = await pipe.execute()
        return [
            PresenceState(user_id, count > 0, None if seen is None else _datetime(seen))
            for user_id, count, seen in zip(user_ids, live, last_seen, strict=True)
        ]

    async def heartbeat(self) -> None:
        """Re-score every session this process holds, and prune its users' stale sessions
        (those a dead gateway left behind). Runs every third of the TTL once started."""
        if not self._local:
            return
        now = _micros(self._clock.now())
        with unavailable("presence heartbeat"):
            async with self._client.pipeline(transaction=False) as pipe:
                for user_id, session_id in tuple(self._local):
                    key = self._keys.sessions(user_id)
                    pipe.zadd(key, {session_id: now}, xx=True)  # never revive a closed session
                    pipe.zremrangebyscore(key, "-inf", now - self._ttl_micros)
                    pipe.pexpire(key, self._ttl_ms)
                    pipe.zadd(self._keys.last_seen, {str(user_id): now}, gt=True)
                    pipe.zadd(self._keys.online_users, {str(user_id): now}, xx=True)
                await pipe.execute()

    def start_heartbeats(self) -> None:
        if self._heartbeats is None:
            self._heartbeats = asyncio.create_task(self._beat(), name="presence-heartbeats")

    async def _beat(self) -> None:
        while True:
            await self._clock.sleep(self._heartbeat_seconds)
            try:
                await self.heartbeat()
            except Unavailable as e:  # the next beat tries again; the TTL leaves two misses
                log.warning("presence heartbeat failed: %s", e.detail)

    async def close(self) -> None:
        """Stop the heartbeats. The sessions stay until disconnected or expired."""
        if self._heartbeats is not None:
            self._heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeats
            self._heartbeats = None
