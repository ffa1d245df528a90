"""The cluster profile's registry on etcd v3.

Key layout under the root (default `/chat4all`):
  services/<service>/<instance_id>   JSON {"address", "metadata"}, on the instance's lease
  config/<key>                       text value, no lease
  election/<name>/<lease id in hex>  the candidate's name, on the candidate's lease
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from chat4all.adapters.etcd.connection import (
    EtcdConnection,
    LeaseGone,
    RevisionCompacted,
    Watch,
)
from chat4all.adapters.etcd.election import EtcdLeadership, campaign
from chat4all.adapters.etcd.leases import KeptLease
from chat4all.domain.errors import Unavailable
from chat4all.ports.clock import Clock
from chat4all.ports.registry import DEFAULT_TTL, Instance, check_config_key, check_name

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_DELAY = 1.0  # between attempts to register again after a lost lease


class EtcdRegistry:
    def __init__(self, etcd: EtcdConnection, clock: Clock, root: str = "/chat4all") -> None:
        self._etcd = etcd
        self._clock = clock
        self._root = root.rstrip("/")
        self._registrations: set[EtcdRegistration] = set()
        self._leaderships: set[EtcdLeadership] = set()
        self._watches: set[EtcdStates[Any]] = set()
        self._closed = False

    @classmethod
    async def connect(
        cls, url: str, clock: Clock, *, root: str = "/chat4all", timeout: float = 5.0
    ) -> EtcdRegistry:
        """Connect and check that etcd answers (Unavailable otherwise)."""
        etcd = EtcdConnection(url, timeout)
        try:
            await etcd.revision()
        except Unavailable:
            await etcd.close()
            raise
        return cls(etcd, clock, root)

    def _key(self, *parts: str) -> bytes:
        return "/".join((self._root, *parts)).encode()

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the registry is closed")

    # services
    async def register(
        self,
        service: str,
        instance_id: str,
        address: str,
        metadata: Mapping[str, str] | None = None,
        *,
        ttl: int = DEFAULT_TTL,
    ) -> EtcdRegistration:
        self._check_open()
        instance = Instance.checked(service, instance_id, address, metadata)
        key = self._key("services", service, instance_id)
        lease = await _put_on_new_lease(self._etcd, self._clock, key, instance.encode(), ttl)
        registration = EtcdRegistration(
            self._etcd, self._clock, key, instance, lease, self._registrations.discard
        )
        self._registrations.add(registration)
        return registration

    async def instances(self, service: str) -> list[Instance]:
        self._check_open()
        prefix = self._key("services", check_name("service", service), "")
        kvs, _ = await self._etcd.get_prefix(prefix)
        return _instances(service, prefix, {kv.key: kv.value for kv in kvs})

    async def watch_instances(self, service: str) -> EtcdStates[list[Instance]]:
        self._check_open()
        prefix = self._key("services", check_name("service", service), "")
        return await self._watch(prefix, lambda values: _instances(service, prefix, values))

    # configuration
    async def get_config(self, key: str) -> str | None:
        self._check_open()
        kv = await self._etcd.get(self._key("config", check_config_key(key)))
        return None if kv is None else kv.value.decode()

    async def set_config(self, key: str, value: str) -> None:
        self._check_open()
        await self._etcd.put(self._key("config", check_config_key(key)), value.encode())

    async def delete_config(self, key: str) -> None:
        self._check_open()
        await self._etcd.delete(self._key("config", check_config_key(key)))

    async def config(self, prefix: str = "") -> dict[str, str]:
        self._check_open()
        kvs, _ = await self._etcd.get_prefix(self._key("config", prefix))
        return self._config({kv.key: kv.value for kv in kvs})

    async def watch_config(self, prefix: str = "") -> EtcdStates[dict[str, str]]:
        self._check_open()
        return await self._watch(self._key("config", prefix), self._config)

    def _config(self, values: Mapping[bytes, bytes]) -> dict[str, str]:
        skip = len(self._key("config", ""))
        return {key[skip:].decode(): value.decode() for key, value in sorted(values.items())}

    # elections
    async def campaign(
        self, name: str, candidate: str, *, ttl: int = DEFAULT_TTL
    ) -> EtcdLeadership:
        self._check_open()
        prefix = self._key("election", check_name("election", name), "")
        leadership = await campaign(
            self._etcd, self._clock, prefix, name, candidate, ttl, self._leaderships.discard
        )
        self._leaderships.add(leadership)
        return leadership

    async def leader(self, name: str) -> str | None:
        self._check_open()
        kvs, _ = await self._etcd.get_prefix(
            self._key("election", check_name("election", name), "")
        )
        if not kvs:
            return None
        return min(kvs, key=lambda kv: kv.create_revision).value.decode()

    # the whole registry
    async def ping(self) -> None:
        self._check_open()
        await self._etcd.revision()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for states in list(self._watches):
            await states.close()
        for registration in list(self._registrations):
            await registration.close()
        for leadership in list(self._leaderships):
            await leadership.resign()
        try:
            await self._etcd.close()
        except Unavailable as e:
            log.warning("closing the etcd connection: %s", e)

    async def _watch(
        self, prefix: bytes, state: Callable[[Mapping[bytes, bytes]], T]
    ) -> EtcdStates[T]:
        states = EtcdStates(self._etcd, prefix, state, self._watches.discard)
        await states.start()
        self._watches.add(states)
        return states


def _instances(service: str, prefix: bytes, values: Mapping[bytes, bytes]) -> list[Instance]:
    return [
        Instance.decode(service, key[len(prefix) :].decode(), value)
        for key, value in sorted(values.items())
    ]


async def _put_on_new_lease(
    etcd: EtcdConnection, clock: Clock, key: bytes, value: bytes, ttl: int
) -> KeptLease:
    lease = await KeptLease.grant(etcd, clock, ttl)
    try:
        await etcd.put(key, value, lease.lease_id)
    except LeaseGone as e:
        await lease.revoke()
        raise Unavailable("etcd expired the lease at once") from e
    except BaseException:
        await lease.revoke()
        raise
    return lease


class EtcdRegistration:
    def __init__(
        self,
        etcd: EtcdConnection,
        clock: Clock,
        key: bytes,
        instance: Instance,
        lease: KeptLease,
        on_close: Callable[[EtcdRegistration], None],
    ) -> None:
        self._etcd = etcd
        self._clock = clock
        self._key = key
        self._instance = instance
        self._lease = lease
        self._on_close = on_close
        self._abandoned = False
        self._task = asyncio.create_task(self._stay_registered(), name=f"registration:{key!r}")

    @property
    def instance(self) -> Instance:
        return self._instance

    async def _stay_registered(self) -> None:
        """When the lease is lost (etcd unreachable for a TTL, or the lease revoked by hand),
        register again on a new lease as soon as etcd answers."""
        while True:
            await self._lease.lost.wait()
            if self._abandoned:
                return
            log.warning("%s lost its lease; registering again", self._key.decode())
            while True:
                try:
                    self._lease = await _put_on_new_lease(
                        self._etcd, self._clock, self._key, self._instance.encode(), self._lease.ttl
                    )
                    break
                except Unavailable as e:
                    log.info("registering %s again failed: %s", self._key.decode(), e)
                    await self._clock.sleep(RETRY_DELAY)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._lease.revoke()
        self._on_close(self)

    def abandon(self) -> None:
        """Stop keeping the lease alive without revoking it, as a crashed process would: the
        entry disappears when etcd expires the lease."""
        self._abandoned = True
        self._lease.abandon()


class EtcdStates(Generic[T]):
    """A prefix mirrored from etcd: read once, then followed by a watch from the revision it
    was read at, so no change falls in between."""

    def __init__(
        self,
        etcd: EtcdConnection,
        prefix: bytes,
        state: Callable[[Mapping[bytes, bytes]], T],
        on_close: Callable[[EtcdStates[T]], None],
    ) -> None:
        self._etcd = etcd
        self._prefix = prefix
        self._state = state
        self._on_close = on_close
        self._values: dict[bytes, bytes] = {}
        self._changed = asyncio.Event()
        self._watch: Watch | None = None
        self._task: asyncio.Task[None] | None = None
        self._error: Unavailable | None = None
        self._last: T | None = None
        self._started = False
        self._closed = False

    async def start(self) -> None:
        await self._sync()
        self._task = asyncio.create_task(self._follow(), name=f"watch:{self._prefix!r}")

    async def _sync(self) -> None:
        kvs, revision = await self._etcd.get_prefix(self._prefix)
        self._watch = await self._etcd.watch(self._prefix, revision + 1, prefix=True)
        self._values = {kv.key: kv.value for kv in kvs}
        self._changed.set()

    async def _follow(self) -> None:
        try:
            while self._watch is not None:
                try:
                    async for change in self._watch.changes():
                        self._apply(change.key, change.value, change.deleted)
                    self._error = Unavailable("etcd ended the watch")
                    return
                except RevisionCompacted:
                    await self._sync()
        except Unavailable as e:
            self._error = e
        finally:
            self._changed.set()

    def _apply(self, key: bytes, value: bytes, deleted: bool) -> None:
        if deleted:
            self._values.pop(key, None)
        else:
            self._values[key] = value
        self._changed.set()

    def __aiter__(self) -> EtcdStates[T]:
        return self

    async def __anext__(self) -> T:
        while not self._closed:
            state = self._state(self._values)
            if not self._started or state != self._last:
                self._started, self._last = True, state
                return state
            if self._error is not None:
                raise self._error
            self._changed.clear()
            await self._changed.wait()
        raise StopAsyncIteration

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._changed.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._watch is not None:
            with contextlib.suppress(Unavailable):
                await self._watch.cancel()
        self._on_close(self)
