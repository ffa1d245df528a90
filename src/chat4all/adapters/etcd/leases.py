"""A lease kept alive in the background, which knows when it may have expired."""

from __future__ import annotations

import asyncio
import logging

from chat4all.adapters.etcd.connection import EtcdConnection, LeaseGone
from chat4all.domain.errors import Unavailable
from chat4all.ports.clock import Clock

log = logging.getLogger(__name__)


class KeptLease:
    """Refreshed every TTL/3. `lost` is set once the lease may have expired: etcd said it is
    gone, or no refresh succeeded in time. The holder's own deadline runs from when the last
    successful refresh was *sent*, less a tenth of the TTL, so it passes before etcd's (which
    runs from when etcd received it): a leader stops before another candidate can win."""

    def __init__(
        self, etcd: EtcdConnection, clock: Clock, lease_id: int, ttl: int, sent_at: float
    ) -> None:
        self.lease_id = lease_id
        self.ttl = ttl
        self.lost = asyncio.Event()
        self._etcd = etcd
        self._clock = clock
        self._margin = ttl / 10
        self._expires_at = sent_at + ttl - self._margin
        self._refreshing = True
        self._task = asyncio.create_task(self._keep_alive(), name=f"lease:{lease_id:x}")

    @classmethod
    async def grant(cls, etcd: EtcdConnection, clock: Clock, ttl: int) -> KeptLease:
        sent_at = clock.monotonic()
        lease_id, granted = await etcd.grant(ttl)
        return cls(etcd, clock, lease_id, granted, sent_at)

    async def _keep_alive(self) -> None:
        try:
            while True:
                now = self._clock.monotonic()
                if now >= self._expires_at:
                    log.warning("lease %x may have expired: no refresh in time", self.lease_id)
                    return
                await self._clock.sleep(min(self.ttl / 3, self._expires_at - now))
                if self._refreshing and self._clock.monotonic() < self._expires_at:
                    await self._refresh()
        except LeaseGone:
            log.warning("lease %x is gone", self.lease_id)
        finally:
            self.lost.set()

    async def _refresh(self) -> None:
        sent_at = self._clock.monotonic()
        try:
            ttl = await asyncio.wait_for(
                self._etcd.keep_alive(self.lease_id), self._expires_at - sent_at
            )
        except (Unavailable, TimeoutError) as e:
            log.info("lease %x: refresh failed (%s); retrying", self.lease_id, e)
            return
        if ttl <= 0:
            raise LeaseGone(f"lease {self.lease_id:x}")
        self._expires_at = sent_at + ttl - self._margin

    def abandon(self) -> None:
        """Stop refreshing, as a process cut off from etcd would: `lost` is set at the
        deadline, and etcd expires the lease a little later."""
        self._refreshing = False

    async def revoke(self) -> None:
        """Stop refreshing and revoke the lease (its keys go at once). Never raises: if etcd
        cannot be reached the lease expires by itself."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self._etcd.revoke(self.lease_id)
        except Unavailable as e:
            log.warning("lease %x: revoke failed (%s); it will expire", self.lease_id, e)
        self.lost.set()
