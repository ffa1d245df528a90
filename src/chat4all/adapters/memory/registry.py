"""The embedded profile's registry: a small in-process key space with leases, laid out as the
etcd adapter lays out etcd (services/, config/, election/), so that both behave alike.

Within one process a lease's keep-alive cannot fail, so a lease lives until it is revoked,
unless its holder `abandon()`s it (as a crashed process would): then it expires after its TTL,
on the injected clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from chat4all.domain.errors import InvalidInput, Unavailable
from chat4all.ports.clock import Clock
from chat4all.ports.registry import (
    DEFAULT_TTL,
    Instance,
    check_config_key,
    check_name,
)

T = TypeVar("T")

SERVICES = "services/"
CONFIG = "config/"
ELECTION = "election/"


@dataclass
class _Entry:
    value: bytes
    lease_id: int
    create_revision: int


@dataclass
class _Lease:
    lease_id: int
    ttl: int
    keys: set[str] = field(default_factory=set)
    expires_at: float | None = None  # None while kept alive


class _Waiter:
    """Woken whenever a key under `prefix` changes."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.woken = asyncio.Event()


class InProcessRegistry:
    def __init__(self, clock: Clock, config: Mapping[str, str] | None = None) -> None:
        self._clock = clock
        self._kv: dict[str, _Entry] = {}
        self._revision = 0
        self._leases: dict[int, _Lease] = {}
        self._next_lease_id = 0x10000
        self._waiters: set[_Waiter] = set()
        self._streams: set[_States[Any]] = set()
        self._expiry: asyncio.Task[None] | None = None
        self._closed = False
        for key, value in (config or {}).items():
            self._put(CONFIG + check_config_key(key), value.encode(), 0)

    # services
    async def register(
        self,
        service: str,
        instance_id: str,
        address: str,
        metadata: Mapping[str, str] | None = None,
        *,
        ttl: int = DEFAULT_TTL,
    ) -> InProcessRegistration:
        self._check_open()
        instance = Instance.checked(service, instance_id, address, metadata)
        lease = self._grant(ttl)
        self._put(f"{SERVICES}{service}/{instance_id}", instance.encode(), lease.lease_id)
        return InProcessRegistration(self, instance, lease.lease_id)

    async def instances(self, service: str) -> list[Instance]:
        self._check_open()
        return self._instances(f"{SERVICES}{check_name('service', service)}/")

    async def watch_instances(self, service: str) -> _States[list[Instance]]:
        self._check_open()
        prefix = f"{SERVICES}{check_name('service', service)}/"
        return self._watch(prefix, lambda: self._instances(prefix))

    def _instances(self, prefix: str) -> list[Instance]:
        service = prefix[len(SERVICES) : -1]
        return [
            Instance.decode(service, key[len(prefix) :], entry.value)
            for key, entry in self._range(prefix)
        ]

    # configuration
    async def get_config(self, key: str) -> str | None:
        self._check_open()
        entry = self._kv.get(CONFIG + check_config_key(key))
        return entry.value.decode() if entry else None

    async def set_config(self, key: str, value: str) -> None:
        self._check_open()
        self._put(CONFIG + check_config_key(key), value.encode(), 0)

    async def delete_config(self, key: str) -> None:
        self._check_open()
        self._delete(CONFIG + check_config_key(key))

    async def config(self, prefix: str = "") -> dict[str, str]:
        self._check_open()
        return self._config(CONFIG + prefix)

    async def watch_config(self, prefix: str = "") -> _States[dict[str, str]]:
        self._check_open()
        return self._watch(CONFIG + prefix, lambda: self._config(CONFIG + prefix))

    def _config(self, prefix: str) -> dict[str, str]:
        return {key[len(CONFIG) :]: entry.value.decode() for key, entry in self._range(prefix)}

    # elections
    async def campaign(
        self, name: str, candidate: str, *, ttl: int = DEFAULT_TTL
    ) -> InProcessLeadership:
        self._check_open()
        prefix = f"{ELECTION}{check_name('election', name)}/"
        lease = self._grant(ttl)
        key = f"{prefix}{lease.lease_id:x}"
        self._put(key, candidate.encode(), lease.lease_id)
        waiter = self._add_waiter(prefix)
        try:
            while True:
                self._check_open()
                if key not in self._kv:
                    raise Unavailable(f"candidate {candidate} lost its lease while campaigning")
                if self._first_candidate(prefix) == key:
                    return InProcessLeadership(self, name, candidate, key, lease.lease_id)
                waiter.woken.clear()
                await waiter.woken.wait()
        except BaseException:
            self._revoke(lease.lease_id)
            raise
        finally:
            self._waiters.discard(waiter)

    async def leader(self, name: str) -> str | None:
        self._check_open()
        first = self._first_candidate(f"{ELECTION}{check_name('election', name)}/")
        return self._kv[first].value.decode() if first else None

    def _first_candidate(self, prefix: str) -> str | None:
        candidates = self._range(prefix)
        if not candidates:
            return None
        return min(candidates, key=lambda item: item[1].create_revision)[0]

    # the whole registry
    async def ping(self) -> None:
        self._check_open()

    async def close(self) -> None:
        if self._closed:
            return
        for lease_id in list(self._leases):
            self._revoke(lease_id)
        self._closed = True
        for stream in list(self._streams):
            await stream.close()
        for waiter in self._waiters:
            waiter.woken.set()
        if self._expiry is not None:
            self._expiry.cancel()
            await asyncio.gather(self._expiry, return_exceptions=True)

    # the key space
    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the registry is closed")

    def _range(self, prefix: str) -> list[tuple[str, _Entry]]:
        return sorted((k, e) for k, e in self._kv.items() if k.startswith(prefix))

    def _put(self, key: str, value: bytes, lease_id: int) -> None:
        self._revision += 1
        old = self._kv.get(key)
        if old is not None and old.lease_id in self._leases:
            self._leases[old.lease_id].keys.discard(key)
        created = old.create_revision if old is not None else self._revision
        self._kv[key] = _Entry(value, lease_id, created)
        if lease_id:
            self._leases[lease_id].keys.add(key)
        self._changed(key)

    def _delete(self, key: str) -> None:
        old = self._kv.pop(key, None)
        if old is None:
            return
        self._revision += 1
        if old.lease_id in self._leases:
            self._leases[old.lease_id].keys.discard(key)
        self._changed(key)

    def _changed(self, key: str) -> None:
        for waiter in self._waiters:
            if key.startswith(waiter.prefix):
                waiter.woken.set()

    def _add_waiter(self, prefix: str) -> _Waiter:
        waiter = _Waiter(prefix)
        self._waiters.add(waiter)
        return waiter

    def _watch(self, prefix: str, state: Callable[[], T]) -> _States[T]:
        stream = _States(self, self._add_waiter(prefix), state)
        self._streams.add(stream)
        return stream

    # leases
    def _grant(self, ttl: int) -> _Lease:
        if ttl < 1:
            raise InvalidInput("a lease's TTL is at least 1 second")
        self._next_lease_id += 1
        lease = _Lease(self._next_lease_id, ttl)
        self._leases[lease.lease_id] = lease
        return lease

    def _revoke(self, lease_id: int) -> None:
        lease = self._leases.pop(lease_id, None)
        if lease is not None:
            for key in sorted(lease.keys):
                self._delete(key)

    def _alive(self, lease_id: int) -> bool:
        return lease_id in self._leases

    def _abandon(self, lease_id: int) -> None:
        lease = self._leases.get(lease_id)
        if lease is not None and lease.expires_at is None:
            lease.expires_at = self._clock.monotonic() + lease.ttl
            if self._expiry is not None:  # it may sleep past this deadline: start over
                self._expiry.cancel()
            self._expiry = asyncio.create_task(self._expire_leases())

    async def _expire_leases(self) -> None:
        while True:
            now = self._clock.monotonic()
            for lease in [x for x in self._leases.values() if x.expires_at is not None]:
                if lease.expires_at is not None and lease.expires_at <= now:
                    self._revoke(lease.lease_id)
            deadlines = [x.expires_at for x in self._leases.values() if x.expires_at is not None]
            if not deadlines:
                return
            await self._clock.sleep(min(deadlines) - now)


class _States(Generic[T]):
    """A watch over one prefix: computes the state after each change under it."""

    def __init__(self, registry: InProcessRegistry, waiter: _Waiter, state: Callable[[], T]):
        self._registry = registry
        self._waiter = waiter
        self._state = state
        self._last: T | None = None
        self._started = False
        self._closed = False

    def __aiter__(self) -> _States[T]:
        return self

    async def __anext__(self) -> T:
        while not self._closed:
            state = self._state()
            if not self._started or state != self._last:
                self._started, self._last = True, state
                return state
            self._waiter.woken.clear()
            await self._waiter.woken.wait()
        raise StopAsyncIteration

    async def close(self) -> None:
        self._closed = True
        self._waiter.woken.set()
        self._registry._waiters.discard(self._waiter)
        self._registry._streams.discard(self)


class InProcessRegistration:
    def __init__(self, registry: InProcessRegistry, instance: Instance, lease_id: int) -> None:
        self._registry = registry
        self._instance = instance
        self._lease_id = lease_id

    @property
    def instance(self) -> Instance:
        return self._instance

    async def close(self) -> None:
        self._registry._revoke(self._lease_id)

    def abandon(self) -> None:
        """Stop keeping the lease alive without revoking it, as a crashed process would: the
        entry disappears when the lease expires."""
        self._registry._abandon(self._lease_id)


class InProcessLeadership:
    def __init__(
        self, registry: InProcessRegistry, name: str, candidate: str, key: str, lease_id: int
    ) -> None:
        self._registry = registry
        self._name = name
        self._candidate = candidate
        self._key = key
        self._lease_id = lease_id

    @property
    def name(self) -> str:
        return self._name

    @property
    def candidate(self) -> str:
        return self._candidate

    @property
    def is_leader(self) -> bool:
        entry = self._registry._kv.get(self._key)
        return entry is not None and entry.lease_id == self._lease_id

    async def wait_lost(self) -> None:
        waiter = self._registry._add_waiter(self._key)
        try:
            while self.is_leader and not self._registry._closed:
                waiter.woken.clear()
                await waiter.woken.wait()
        finally:
            self._registry._waiters.discard(waiter)

    async def resign(self) -> None:
        self._registry._revoke(self._lease_id)

    def abandon(self) -> None:
        """Stop keeping the lease alive, as a crashed process would: leadership ends (and the
        next candidate takes over) when the lease expires."""
        self._registry._abandon(self._lease_id)
