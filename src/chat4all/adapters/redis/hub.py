"""`RealtimeHub` on Redis pub/sub: frames published on any gateway reach the sessions on all.

Each user has a channel, `{prefix}stream:{user_id}`. A publish is one PUBLISH per user (one
round trip, pipelined), so Redis sends a frame only to the gateways where that user is
connected. Each hub (one per process) holds one connection of its own in subscribe mode and
multiplexes every local subscription over it: the first session of a user on this process
SUBSCRIBEs to the user's channel, the last one to leave UNSUBSCRIBEs.

Redis pub/sub keeps nothing for a subscriber that is not listening, so a subscription that may
have missed a frame is ended with `SubscriptionLost`, and the client resumes from its last
sequence numbers. That happens when:
- its session stops reading and `MAX_QUEUED_FRAMES` pile up (as in the in-process hub);
- the connection to Redis breaks (a restart, CLIENT KILL, or Redis itself dropping a process
  that reads too slowly: `client-output-buffer-limit pubsub`), or stays silent through a
  keepalive PING: every subscription of the process is lost. The next `subscribe` opens a new
  connection; the driver never quietly reconnects and resubscribes, which would hide the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Coroutine, Sequence
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from chat4all.adapters.redis.client import Keys, unavailable
from chat4all.domain.errors import Unavailable
from chat4all.ports.realtime import SubscriptionLost

log = logging.getLogger(__name__)

# A session that stops reading must not grow memory without bound (as in the in-process hub).
MAX_QUEUED_FRAMES = 10_000
KEEPALIVE_SECONDS = 15.0  # silence this long -> PING; silence as long again -> connection lost
SUBSCRIBE_TIMEOUT_SECONDS = 10.0


class _Subscription:
    def __init__(self, hub: RedisHub, channel: bytes, max_queued: int) -> None:
        self._hub = hub
        self.channel = channel
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(max_queued)
        self._lost: str | None = None

    async def get(self) -> bytes:
        if self._lost is not None and self._queue.empty():
            raise SubscriptionLost(self._lost)
        frame = await self._queue.get()
        if frame is None:
            raise SubscriptionLost(self._lost or "the subscription was lost")
        return frame

    async def close(self) -> None:
        await self._hub._leave(self)

    def _put(self, frame: bytes) -> bool:
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True

    def _lose(self, reason: str) -> None:
        """Frames already queued are still read; then `get` raises SubscriptionLost."""
        if self._lost is not None:
            return
        self._lost = reason
        if self._queue.full():
            self._queue.get_nowait()  # room for the wake-up marker
        self._queue.put_nowait(None)


class _Channel:
    def __init__(self, ready: asyncio.Future[None]) -> None:
        self.ready = ready  # Redis confirmed the SUBSCRIBE
        self.subscriptions: set[_Subscription] = set()


class RedisHub:
    def __init__(
        self,
        client: Redis,
        keys: Keys,
        *,
        max_queued_frames: int = MAX_QUEUED_FRAMES,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
        client_name: str | None = None,
    ) -> None:
        self._client = client
        self._keys = keys
        self._max_queued = max_queued_frames
        self._keepalive = keepalive_seconds
        self._client_name = client_name or f"{keys.prefix}hub"
        self._lock = asyncio.Lock()  # orders SUBSCRIBE/UNSUBSCRIBE with their confirmations
        self._conn: AbstractConnection | None = None
        self._channels: dict[bytes, _Channel] = {}
        # One future per SUBSCRIBE sent, per channel: Redis confirms them in the order sent.
        self._confirmations: dict[bytes, deque[asyncio.Future[None]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    async def publish(self, user_ids: Sequence[UUID], frame: bytes) -> None:
        if not user_ids:
            return
        with unavailable("publish"):
            if len(user_ids) == 1:
                await self._client.publish(self._keys.stream(user_ids[0]), frame)
                return
            async with self._client.pipeline(transaction=False) as pipe:
                for user_id in user_ids:
                    pipe.publish(self._keys.stream(user_id), frame)
                await pipe.execute()

    async def subscribe(self, user_id: UUID) -> _Subscription:
        name = self._keys.stream(user_id).encode()
        subscription = _Subscription(self, name, self._max_queued)
        async with self._lock:
            conn = await self._connection()
            channel = self._channels.get(name)
            if channel is None:
                channel = _Channel(self._confirmation(name))
                self._channels[name] = channel
                try:
                    await self._send(conn, "SUBSCRIBE", name)
                except (RedisError, OSError) as e:
                    self._connection_lost(conn, f"the connection to Redis broke: {e}")
                    raise Unavailable(f"redis: subscribe failed: {e}") from e
            channel.subscriptions.add(subscription)
        try:
            await asyncio.wait_for(asyncio.shield(channel.ready), SUBSCRIBE_TIMEOUT_SECONDS)
        except BaseException as e:
            await subscription.close()
            if isinstance(e, TimeoutError):
                raise Unavailable("redis: no answer to SUBSCRIBE") from e
            raise
        return subscription

    async def close(self) -> None:
        """End every subscription (SubscriptionLost) and close the connection."""
        self._closed = True
        async with self._lock:
            if self._conn is not None:
                self._connection_lost(self._conn, "the hub was closed")
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # the subscribe-mode connection

    async def _connection(self) -> AbstractConnection:
        """The live subscribe-mode connection; a new one (and its reader) if there is none."""
        if self._closed:
            raise Unavailable("redis: the hub is closed")
        if self._conn is not None:
            return self._conn
        pool = self._client.connection_pool
        options = {
            **pool.connection_kwargs,
            "retry": Retry(NoBackoff(), 0),  # a broken connection stays broken: see above
            "socket_timeout": None,  # it waits for frames indefinitely; keepalive PINGs instead
            "health_check_interval": 0,
            "client_name": self._client_name,
        }
        conn: AbstractConnection = pool.connection_class(**options)
        with unavailable("connect for subscriptions"):
            await conn.connect()  # type: ignore[no-untyped-call]
        self._conn = conn
        self._spawn(self._read(conn))
        return conn

    @staticmethod
    async def _send(conn: AbstractConnection, *args: Any) -> None:
        if not conn.is_connected:  # the driver would reconnect, subscribed to nothing
            raise RedisConnectionError("the subscribe-mode connection is closed")
        await conn.send_command(*args)

    def _confirmation(self, name: bytes) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._confirmations.setdefault(name, deque()).append(future)
        return future

    async def _read(self, conn: AbstractConnection) -> None:
        pinged = False
        try:
            while True:
                # RESP3 (the driver's default) sends pub/sub messages as pushes.
                response = await conn.read_response(timeout=self._keepalive, push_request=True)
                if response is None:  # silence: is the connection still there?
                    if pinged:
                        raise RedisConnectionError("Redis did not answer a PING")
                    await self._send(conn, "PING")
                    pinged = True
                    continue
                pinged = False
                self._dispatch(response)
        except (RedisError, OSError) as e:
            self._connection_lost(conn, f"the connection to Redis broke: {e}")
        except Exception as e:  # a bug here must not leave subscriptions waiting forever
            log.exception("the hub's reader failed")
            self._connection_lost(conn, f"the hub's reader failed: {e!r}")
        finally:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)

    def _dispatch(self, response: Any) -> None:
        if not isinstance(response, list):
            return  # PONG
        kind = response[0]
        if kind == b"message":
            channel = self._channels.get(response[1])
            if channel is None:
                return  # unsubscribed a moment ago
            frame = response[2]
            for subscription in tuple(channel.subscriptions):
                if not subscription._put(frame):
                    self._drop(subscription, "the session fell too far behind")
        elif kind == b"subscribe":
            pending = self._confirmations.get(response[1])
            if pending:
                future = pending.popleft()
                if not pending:
                    del self._confirmations[response[1]]
                if not future.done():
                    future.set_result(None)
        # b"unsubscribe" needs nothing; neither does RESP2's [b"pong", b""]

    def _connection_lost(self, conn: AbstractConnection, reason: str) -> None:
        if self._conn is not conn:
            return
        self._conn = None
        channels, self._channels = self._channels, {}
        confirmations, self._confirmations = self._confirmations, {}
        for pending in confirmations.values():
            for future in pending:
                if not future.done():
                    future.set_exception(Unavailable(f"redis: {reason}"))
        for channel in channels.values():
            for subscription in channel.subscriptions:
                subscription._lose(reason)

    # leaving

    async def _leave(self, subscription: _Subscription) -> None:
        channel = self._channels.get(subscription.channel)
        if channel is not None:
            channel.subscriptions.discard(subscription)
        subscription._lose("the subscription was closed")
        await self._release(subscription.channel)

    def _drop(self, subscription: _Subscription, reason: str) -> None:
        channel = self._channels.get(subscription.channel)
        if channel is not None:
            channel.subscriptions.discard(subscription)
        subscription._lose(reason)
        self._spawn(self._release(subscription.channel))

    async def _release(self, name: bytes) -> None:
        """UNSUBSCRIBE from `name` when no local subscription wants it any more."""
        async with self._lock:
            channel = self._channels.get(name)
            if channel is None or channel.subscriptions:
                return
            del self._channels[name]
            if self._conn is not None:
                # A failure here is the reader's to notice: it ends every subscription.
                with contextlib.suppress(RedisError, OSError):
                    await self._send(self._conn, "UNSUBSCRIBE", name)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a confirmation's error as seen: its subscriber may have given up waiting."""
    if not future.cancelled():
        future.exception()
