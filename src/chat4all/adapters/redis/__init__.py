"""Redis adapters of the real-time ports: hub (pub/sub), presence (sorted sets), cache.

Key layout, every name under one prefix (`chat4all:` by default, `{p}` below):

| name                          | type        | holds                                             |
|-------------------------------|-------------|---------------------------------------------------|
| `{p}stream:{user_id}`         | channel     | the user's real-time frames (JSON), for every     |
|                               |             | gateway where the user has a session              |
| `{p}presence:online:{user_id}`| sorted set  | session id -> last heartbeat (µs since epoch);    |
|                               |             | expires a session TTL after its last write        |
| `{p}presence:last_seen`       | sorted set  | user id -> last seen (µs since epoch), only ever  |
|                               |             | moved forward                                     |
| `{p}cache:{key}`              | string      | one cache entry, with its TTL (PX)                |

The seed's `presence:online` (one sorted set of users scored by last activity, pruned with
ZREMRANGEBYSCORE) becomes one sorted set of sessions per user, pruned the same way, so that a
user's phone going offline does not take their laptop with it. The seed's topic channels
(`presence:updates`, `message:delivered`) become one channel per user, as the hub addresses
users. The cache's keys are the services' (`members:{conversation_id}`, `revoked:{token_id}`),
under `{p}cache:`.
"""

from chat4all.adapters.redis.cache import RedisCache
from chat4all.adapters.redis.client import Keys, open_client
from chat4all.adapters.redis.hub import RedisHub
from chat4all.adapters.redis.presence import RedisPresence
from chat4all.adapters.redis.realtime import RedisRealtime

__all__ = ["Keys", "RedisCache", "RedisHub", "RedisPresence", "RedisRealtime", "open_client"]
