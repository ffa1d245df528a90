"""Registry: service discovery, configuration and feature flags, leader election.

What a process puts in the registry lives on a lease with a time to live (TTL) that the adapter
keeps alive in the background: closing a handle removes its entries at once, and a process that
dies without closing disappears when its lease expires. Every method raises `Unavailable` when
the registry cannot be reached.

Watches deliver states, not events: the current state first, then the new state after each
change. A consumer that reads slowly gets the latest state (changes in between may be merged)
and never the same state twice in a row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from chat4all.domain.errors import InvalidInput

T_co = TypeVar("T_co", covariant=True)

DEFAULT_TTL = 10  # seconds; etcd rounds shorter leases up to its minimum (2 s by default)


@dataclass(frozen=True)
class Instance:
    """One running process of a service, as discovered."""

    service: str
    instance_id: str
    address: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        """The stored value (the service and instance id are in the key)."""
        return json.dumps(
            {"address": self.address, "metadata": dict(self.metadata)}, sort_keys=True
        ).encode()

    @classmethod
    def checked(
        cls, service: str, instance_id: str, address: str, metadata: Mapping[str, str] | None
    ) -> Instance:
        """An instance to register: its names checked to fit in a key."""
        return cls(
            check_name("service", service),
            check_name("instance id", instance_id),
            address,
            dict(metadata or {}),
        )

    @classmethod
    def decode(cls, service: str, instance_id: str, value: bytes) -> Instance:
        data = json.loads(value)
        return cls(service, instance_id, str(data["address"]), dict(data.get("metadata") or {}))


def check_name(what: str, name: str) -> str:
    """A service, instance or election name becomes one segment of a key: non-empty, no `/`."""
    if not name or "/" in name or name.strip() != name:
        raise InvalidInput(f"{what} must be a non-empty name without '/' or surrounding spaces")
    return name


def check_config_key(key: str) -> str:
    if not key or key.startswith("/") or key.endswith("/"):
        raise InvalidInput("a config key is non-empty and neither starts nor ends with '/'")
    return key


class States(Protocol[T_co]):
    """A watch: an async iterator of states. It ends after `close()`; it raises `Unavailable`
    when the connection to the registry is lost (watch again to resume). Cancelling a pending
    `__anext__` loses nothing: the next call returns the state it would have."""

    def __aiter__(self) -> States[T_co]: ...

    async def __anext__(self) -> T_co: ...

    async def close(self) -> None: ...


class Registration(Protocol):
    """A registered instance, kept alive until closed."""

    @property
    def instance(self) -> Instance: ...

    async def close(self) -> None:
        """Deregister at once (revoke the lease). Never raises: if the registry cannot be
        reached, the entry disappears when its lease expires."""
        ...


class Leadership(Protocol):
    """Won leadership of one election, held until lost or resigned."""

    @property
    def name(self) -> str: ...

    @property
    def candidate(self) -> str: ...

    @property
    def is_leader(self) -> bool:
        """False once leadership was lost or resigned."""
        ...

    async def wait_lost(self) -> None:
        """Return once leadership is over: resigned, the lease expired or was revoked, the key
        was removed, or the registry could not be reached for longer than the lease's TTL. A
        leader that loses its connection stops before its lease can expire, so before any other
        candidate can win."""
        ...

    async def resign(self) -> None:
        """Give leadership up at once so the next candidate takes over. Never raises."""
        ...


class ServiceRegistry(Protocol):
    async def register(
        self,
        service: str,
        instance_id: str,
        address: str,
        metadata: Mapping[str, str] | None = None,
        *,
        ttl: int = DEFAULT_TTL,
    ) -> Registration:
        """Announce an instance on a lease of `ttl` seconds, kept alive until the handle is
        closed. Registering the same instance id again replaces the entry. If the lease is lost
        (the registry was unreachable for longer than the TTL), the handle registers again when
        the registry answers."""
        ...

    async def instances(self, service: str) -> list[Instance]:
        """The live instances of `service`, ordered by instance id."""
        ...

    async def watch_instances(self, service: str) -> States[list[Instance]]:
        """The live instances of `service` (ordered by instance id), now and after each
        change."""
        ...


class ConfigSource(Protocol):
    """Configuration and feature flags: text values under slash-separated keys
    (`flags/new_ui`, `limits/max_group_size`)."""

    async def get_config(self, key: str) -> str | None: ...

    async def set_config(self, key: str, value: str) -> None: ...

    async def delete_config(self, key: str) -> None: ...

    async def config(self, prefix: str = "") -> dict[str, str]:
        """Every key starting with `prefix`, with its value."""
        ...

    async def watch_config(self, prefix: str = "") -> States[dict[str, str]]:
        """`config(prefix)`, now and after each change."""
        ...


class Elections(Protocol):
    async def campaign(self, name: str, candidate: str, *, ttl: int = DEFAULT_TTL) -> Leadership:
        """Wait until `candidate` leads election `name`, then return its leadership. Candidates
        win in the order they started campaigning; at most one leads at a time. Cancelling the
        wait withdraws the candidate."""
        ...

    async def leader(self, name: str) -> str | None:
        """The candidate that leads election `name` (or is about to), if any."""
        ...


class Registry(ServiceRegistry, ConfigSource, Elections, Protocol):
    """The whole registry port: the embedded static registry or etcd."""

    async def ping(self) -> None:
        """Raises Unavailable when the registry cannot be reached."""
        ...

    async def close(self) -> None:
        """Close every registration and leadership this registry handed out, then the
        connection."""
        ...
