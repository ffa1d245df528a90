"""The few etcd v3 calls the registry makes, typed, over the aetcd gRPC client. Every driver
error leaves as `Unavailable` (with `raise ... from`), except a missing lease: `LeaseGone`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aetcd
from aetcd import transactions as ops
from aetcd.utils import prefix_range_end

from chat4all.domain.errors import Unavailable

# gRPC reconnects with exponential backoff up to 120 s by default: after an etcd outage the
# registry would stay cut off long after etcd is back. Keepalive pings find a dead connection
# under a long watch (etcd refuses pings more often than every 5 s).
CHANNEL_OPTIONS: dict[str, Any] = {
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.min_reconnect_backoff_ms": 200,
    "grpc.max_reconnect_backoff_ms": 2000,
    "grpc.keepalive_time_ms": 10_000,
    "grpc.keepalive_timeout_ms": 5_000,
}


class LeaseGone(Exception):
    """etcd no longer knows the lease (it expired or was revoked)."""


@dataclass(frozen=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    lease: int


@dataclass(frozen=True)
class Change:
    """One watch event: a put (with the new value) or a delete."""

    key: bytes
    value: bytes
    deleted: bool


def prefix_end(prefix: bytes) -> bytes:
    """The end of the key range holding every key that starts with `prefix`."""
    return bytes(prefix_range_end(prefix))


def _kv(raw: Any) -> KeyValue:
    return KeyValue(bytes(raw.key), bytes(raw.value), int(raw.create_revision), int(raw.lease))


def _unavailable(error: Exception) -> Exception:
    if isinstance(error, aetcd.ClientError) and "lease not found" in str(error):
        return LeaseGone(str(error))
    return Unavailable(f"etcd: {error or type(error).__name__}")


class EtcdConnection:
    """One gRPC channel to etcd (a single endpoint: a local member, or a proxy in front of
    the cluster)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        self.url = url
        self.timeout = timeout
        self._client = aetcd.Client(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 2379,
            timeout=timeout,
            options=CHANNEL_OPTIONS,
        )

    async def close(self) -> None:
        try:
            await self._client.close()
        except Exception as e:
            raise _unavailable(e) from e

    async def revision(self) -> int:
        """The store's current revision; a cheap round trip that proves etcd answers."""
        try:
            got = await self._client.get_prefix(b"\0", keys_only=True)
        except Exception as e:
            raise _unavailable(e) from e
        return int(got.header.revision)

    async def get(self, key: bytes) -> KeyValue | None:
        try:
            got = await self._client.get(key)
        except Exception as e:
            raise _unavailable(e) from e
        return None if got is None else _kv(got)

    async def get_prefix(self, prefix: bytes) -> tuple[list[KeyValue], int]:
        """The keys under `prefix` in key order, and the revision they were read at."""
        try:
            got = await self._client.get_prefix(prefix)
        except Exception as e:
            raise _unavailable(e) from e
        return [_kv(raw) for raw in got.kvs], int(got.header.revision)

    async def put(self, key: bytes, value: bytes, lease: int = 0) -> None:
        try:
            await self._client.put(key, value, lease=lease)
        except Exception as e:
            raise _unavailable(e) from e

    async def delete(self, key: bytes) -> None:
        try:
            await self._client.delete(key)
        except Exception as e:
            raise _unavailable(e) from e

    async def delete_prefix(self, prefix: bytes) -> None:
        try:
            await self._client.delete_prefix(prefix)
        except Exception as e:
            raise _unavailable(e) from e

    async def create(self, key: bytes, value: bytes, lease: int) -> KeyValue:
        """Put `key` unless it exists, in one transaction; return the key as stored."""
        txn = self._client.transactions
        try:
            _, responses = await self._client.transaction(
                compare=[txn.create(key) == 0],
                success=[ops.Put(key, value, lease), ops.Get(key)],
                failure=[ops.Get(key)],
            )
        except Exception as e:
            raise _unavailable(e) from e
        [(_, got)] = responses[-1]
        return _kv(got)

    # leases
    async def grant(self, ttl: int) -> tuple[int, int]:
        """A new lease: (id, the TTL etcd granted, which may be longer than asked)."""
        try:
            lease = await self._client.lease(ttl)
        except Exception as e:
            raise _unavailable(e) from e
        return int(lease.id), int(lease.ttl)

    async def keep_alive(self, lease_id: int) -> int:
        """Refresh a lease; its TTL from now, 0 when etcd no longer knows it."""
        try:
            reply = await self._client.refresh_lease(lease_id)
        except Exception as e:
            raise _unavailable(e) from e
        return 0 if reply is None else int(reply.TTL)

    async def revoke(self, lease_id: int) -> None:
        """Revoke a lease and delete its keys; a lease already gone is fine."""
        try:
            await self._client.revoke_lease(lease_id)
        except Exception as e:
            error = _unavailable(e)
            if not isinstance(error, LeaseGone):
                raise error from e

    # watches
    async def watch(self, key: bytes, start_revision: int, *, prefix: bool = False) -> Watch:
        """Changes to `key` (or every key under it, with `prefix`) from `start_revision` on."""
        try:
            raw = await self._client.watch(
                key,
                range_end=prefix_end(key) if prefix else None,
                start_revision=start_revision,
            )
        except Exception as e:
            raise _unavailable(e) from e
        return Watch(raw, self.timeout)


class RevisionCompacted(Exception):
    """The watch's start revision was compacted away: read the state again, then watch."""


class Watch:
    def __init__(self, raw: Any, timeout: float) -> None:
        self._raw = raw
        self._timeout = timeout

    async def changes(self) -> AsyncIterator[Change]:
        """The watch's changes; raises Unavailable when the connection is lost and
        RevisionCompacted when etcd compacted the revisions the watch needs."""
        try:
            async for event in self._raw:
                yield Change(bytes(event.kv.key), bytes(event.kv.value), event.kind == "DELETE")
        except aetcd.RevisionCompactedError as e:
            raise RevisionCompacted(str(e)) from e
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as e:
            raise _unavailable(e) from e

    async def cancel(self) -> None:
        # Bounded: a cancel that etcd never acknowledges must not hang whoever is leaving
        # (a task being cancelled waits for this in its `finally`).
        try:
            await asyncio.wait_for(self._raw.cancel(), self._timeout)
        except Exception as e:
            raise _unavailable(e) from e
