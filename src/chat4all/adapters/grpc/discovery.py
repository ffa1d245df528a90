"""Finding service instances through the registry, and following them.

A `DiscoveredChannel` stands for every live instance of one service: calls go round robin over
them, and when the registry says an instance joined or left, new calls go to a new underlying
channel while calls in flight finish on the old one. Stubs made on it never need remaking.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, cast

import grpc

from chat4all.domain.errors import Unavailable
from chat4all.ports.registry import Instance, ServiceRegistry

log = logging.getLogger(__name__)

OLD_CHANNEL_GRACE_SECONDS = 600.0  # streams opened on an old channel keep it this long


class _LateCall:
    """A multicallable that takes the channel's current underlying one at each call."""

    def __init__(self, owner: DiscoveredChannel, kind: str, args: tuple[Any, ...], kw: Any):
        self._owner, self._kind, self._args, self._kw = owner, kind, args, kw
        self._generation = -1
        self._call: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._generation != self._owner.generation:
            channel = self._owner.current
            self._call = getattr(channel, self._kind)(*self._args, **self._kw)
            self._generation = self._owner.generation
        return self._call(*args, **kwargs)


class DiscoveredChannel:
    """Duck-types `grpc.aio.Channel` for generated stubs; see the module docstring."""

    def __init__(self, registry: ServiceRegistry, service: str, options: list[Any]) -> None:
        self._registry = registry
        self._service = service
        self._options = [*options, ("grpc.lb_policy_name", "round_robin")]
        self._addresses: tuple[str, ...] = ()
        self._current: grpc.aio.Channel | None = None
        self.generation = 0
        self._old: list[grpc.aio.Channel] = []
        self._follow: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, registry: ServiceRegistry, service: str, options: list[Any], timeout: float
    ) -> grpc.aio.Channel:
        """Wait up to `timeout` seconds for an instance of `service`; then follow the registry."""
        channel = cls(registry, service, options)
        deadline = time.monotonic() + timeout
        while not (instances := await registry.instances(service)):
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"no {service} service is registered after {timeout:.0f}s; "
                    f"start one with `chat4all serve {service}`"
                )
            await asyncio.sleep(0.5)
        channel._switch(instances)
        channel._follow = asyncio.create_task(channel._watch(), name=f"discover-{service}")
        return cast(grpc.aio.Channel, channel)

    @property
    def current(self) -> grpc.aio.Channel:
        assert self._current is not None
        return self._current

    def unary_unary(self, *args: Any, **kw: Any) -> Any:
        return _LateCall(self, "unary_unary", args, kw)

    def unary_stream(self, *args: Any, **kw: Any) -> Any:
        return _LateCall(self, "unary_stream", args, kw)

    def stream_unary(self, *args: Any, **kw: Any) -> Any:
        return _LateCall(self, "stream_unary", args, kw)

    def stream_stream(self, *args: Any, **kw: Any) -> Any:
        return _LateCall(self, "stream_stream", args, kw)

    def _switch(self, instances: list[Instance]) -> None:
        addresses = tuple(sorted(i.address for i in instances))
        if not addresses or addresses == self._addresses:
            return  # none left: keep calling the last ones, which answer UNAVAILABLE
        old = self._current
        self._addresses = addresses
        self._current = grpc.aio.insecure_channel(
            "ipv4:" + ",".join(addresses), options=self._options
        )
        self.generation += 1
        log.info("%s instances: %s", self._service, ", ".join(addresses))
        if old is not None:
            self._old.append(old)
            asyncio.get_running_loop().call_later(
                OLD_CHANNEL_GRACE_SECONDS, lambda: asyncio.ensure_future(self._retire(old))
            )

    async def _retire(self, old: grpc.aio.Channel) -> None:
        if old in self._old:
            self._old.remove(old)
            await old.close(None)

    async def _watch(self) -> None:
        while True:
            try:
                async for instances in await self._registry.watch_instances(self._service):
                    self._switch(instances)
            except Unavailable as e:
                log.warning("watching %s instances: %s; again in 1s", self._service, e)
                await asyncio.sleep(1)

    async def close(self, grace: float | None = None) -> None:
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
        for channel in [*self._old, *([self._current] if self._current else [])]:
            await channel.close(grace)
        self._old.clear()
