"""Leader election as etcd's concurrency recipe does it (the v3election service is not used:
it cannot tell a leader that its lease is gone). Each candidate puts a key under the
election's prefix on its own lease; the key with the lowest create revision leads; every other
candidate waits for the deletion of the key just older than its own, so that a departure wakes
exactly one waiter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from chat4all.adapters.etcd.connection import EtcdConnection, LeaseGone, RevisionCompacted
from chat4all.adapters.etcd.leases import KeptLease
from chat4all.domain.errors import Unavailable
from chat4all.ports.clock import Clock

log = logging.getLogger(__name__)


async def campaign(
    etcd: EtcdConnection,
    clock: Clock,
    prefix: bytes,
    name: str,
    candidate: str,
    ttl: int,
    on_close: Callable[[EtcdLeadership], None],
) -> EtcdLeadership:
    lease = await KeptLease.grant(etcd, clock, ttl)
    key = prefix + f"{lease.lease_id:x}".encode()
    try:
        mine = await etcd.create(key, candidate.encode(), lease.lease_id)
        while True:
            keys, revision = await etcd.get_prefix(prefix)
            if all(kv.key != key for kv in keys):
                raise Unavailable(f"election {name}: {candidate}'s key vanished while waiting")
            older = [kv for kv in keys if kv.create_revision < mine.create_revision]
            if not older:
                return EtcdLeadership(etcd, clock, name, candidate, key, lease, on_close)
            predecessor = max(older, key=lambda kv: kv.create_revision)
            await _wait_deleted(etcd, predecessor.key, revision + 1, lease)
    except LeaseGone as e:
        await lease.revoke()
        raise Unavailable(f"election {name}: {candidate}'s lease expired while waiting") from e
    except BaseException:
        await lease.revoke()
        raise


async def _wait_deleted(
    etcd: EtcdConnection, key: bytes, start_revision: int, lease: KeptLease
) -> None:
    """Return when `key` is deleted after `start_revision` (or the revisions needed to know
    were compacted: the caller reads again). Raises Unavailable if the lease is lost first."""
    watch = await etcd.watch(key, start_revision)

    async def deleted() -> None:
        try:
            async for change in watch.changes():
                if change.deleted:
                    return
        except RevisionCompacted:
            return
        raise Unavailable("the election watch ended")

    waits = [asyncio.create_task(deleted()), asyncio.create_task(lease.lost.wait())]
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        with contextlib.suppress(Unavailable):
            await watch.cancel()
    if waits[0] in done:
        waits[0].result()
        return
    raise Unavailable("the candidate's lease was lost while waiting")


class EtcdLeadership:
    def __init__(
        self,
        etcd: EtcdConnection,
        clock: Clock,
        name: str,
        candidate: str,
        key: bytes,
        lease: KeptLease,
        on_close: Callable[[EtcdLeadership], None],
    ) -> None:
        self._etcd = etcd
        self._clock = clock
        self._name = name
        self._candidate = candidate
        self._key = key
        self._lease = lease
        self._on_close = on_close
        self._over = asyncio.Event()  # resigned, or the key was removed
        self._guard = asyncio.create_task(self._guard_key(), name=f"leader:{name}")

    @property
    def name(self) -> str:
        return self._name

    @property
    def candidate(self) -> str:
        return self._candidate

    @property
    def is_leader(self) -> bool:
        return not (self._over.is_set() or self._lease.lost.is_set())

    async def wait_lost(self) -> None:
        waits = [
            asyncio.create_task(self._over.wait()),
            asyncio.create_task(self._lease.lost.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _guard_key(self) -> None:
        """Someone may delete the key by hand (etcdctl): then the next candidate leads, and so
        must this one stop. Checked every TTL/3; the lease itself is watched by KeptLease."""
        while self.is_leader:
            await self._clock.sleep(self._lease.ttl / 3)
            try:
                kv = await self._etcd.get(self._key)
            except Unavailable:
                continue
            if kv is None or kv.lease != self._lease.lease_id:
                log.warning("election %s: the leader's key was removed", self._name)
                self._over.set()

    async def resign(self) -> None:
        self._over.set()
        self._guard.cancel()
        await asyncio.gather(self._guard, return_exceptions=True)
        await self._lease.revoke()
        self._on_close(self)

    def abandon(self) -> None:
        """Stop refreshing the lease, as a leader cut off from etcd would: leadership is lost at
        the lease's deadline, just before etcd expires it and the next candidate leads."""
        self._lease.abandon()
