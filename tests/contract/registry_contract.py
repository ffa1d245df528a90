"""Contract of the registry port. Subclass once per adapter and provide `registry` and `peer`:
two registries on one backend, as two processes of a cluster would hold (they may be the same
object for an in-process adapter). Handles of both adapters offer `abandon()`: stop the
keep-alive without revoking, as a crashed (or cut-off) process would.

Leases are short (TTL 2 s, etcd's minimum) so that expiry tests take seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

import pytest

from chat4all.adapters.clock import SystemClock
from chat4all.domain.errors import InvalidInput
from chat4all.ports.registry import Elections, Instance, Leadership, Registry, States
from chat4all.workers.leader import run_as_leader

TTL = 2
EXPIRY = TTL + 4.0  # the longest an abandoned lease may take to vanish, with slack for a busy CI
SOON = 3.0  # the longest anything that should be "at once" may take


class Abandonable(Protocol):
    def abandon(self) -> None: ...


def crash(handle: object) -> None:
    cast(Abandonable, handle).abandon()


async def next_state(states: States[Any], timeout: float = SOON) -> Any:
    return await asyncio.wait_for(anext(states), timeout)


async def no_state(states: States[Any], wait: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(states), wait)  # a cancelled wait loses nothing


async def eventually(check: Callable[[], bool], timeout: float, invariant=lambda: True) -> None:
    """Wait until `check()` holds, asserting `invariant()` all along."""
    deadline = time.monotonic() + timeout
    while not check():
        assert invariant()
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def ids(instances: list[Instance]) -> list[str]:
    return [i.instance_id for i in instances]


class ServiceRegistryContract:
    async def test_a_registered_instance_is_discovered(self, registry: Registry, peer: Registry):
        reg = await registry.register("gateway", "gw-1", "10.0.0.1:8000", {"zone": "a"})
        assert reg.instance == Instance("gateway", "gw-1", "10.0.0.1:8000", {"zone": "a"})
        assert await peer.instances("gateway") == [reg.instance]
        assert await peer.instances("router") == []
        await reg.close()

    async def test_instances_are_ordered_and_separated_by_service(
        self, registry: Registry, peer: Registry
    ):
        regs = [
            await registry.register("message", "m-2", "h2:1"),
            await registry.register("message", "m-1", "h1:1"),
            await registry.register("messages", "x-1", "h3:1"),  # a service whose name extends
        ]
        assert ids(await peer.instances("message")) == ["m-1", "m-2"]
        assert ids(await peer.instances("messages")) == ["x-1"]
        for reg in regs:
            await reg.close()

    async def test_a_watch_sees_instances_join_and_leave(self, registry: Registry, peer: Registry):
        states = await peer.watch_instances("router")
        try:
            assert await next_state(states) == []
            a = await registry.register("router", "a", "ha:1")
            assert ids(await next_state(states)) == ["a"]
            b = await registry.register("router", "b", "hb:1", {"v": "2"})
            state = await next_state(states)
            assert ids(state) == ["a", "b"] and state[1].metadata == {"v": "2"}
            await a.close()
            assert ids(await next_state(states)) == ["b"]
            other = await registry.register("status", "s", "hs:1")  # another service: no state
            await no_state(states)
            await b.close()
            assert await next_state(states) == []
            await other.close()
        finally:
            await states.close()

    async def test_a_closed_watch_ends(self, registry: Registry, peer: Registry):
        states = await peer.watch_instances("delivery")
        assert await next_state(states) == []
        await states.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(states), SOON)

    async def test_a_closed_registration_disappears_at_once(
        self, registry: Registry, peer: Registry
    ):
        reg = await registry.register("gateway", "gw-9", "h:1", ttl=60)
        await reg.close()
        assert await peer.instances("gateway") == []
        await reg.close()  # twice is fine

    async def test_a_crashed_instance_disappears_when_its_lease_expires(
        self, registry: Registry, peer: Registry
    ):
        states = await peer.watch_instances("relay")
        try:
            assert await next_state(states) == []
            reg = await registry.register("relay", "r-1", "h:1", ttl=TTL)
            assert ids(await next_state(states)) == ["r-1"]
            crash(reg)
            started = time.monotonic()
            assert ids(await peer.instances("relay")) == ["r-1"]  # still there: not expired yet
            assert await next_state(states, EXPIRY) == []
            assert time.monotonic() - started >= TTL - 1.0
        finally:
            await states.close()

    async def test_a_kept_alive_instance_outlives_its_ttl(self, registry: Registry, peer: Registry):
        reg = await registry.register("router", "kept", "h:1", ttl=TTL)
        await asyncio.sleep(TTL + 1.0)
        assert ids(await peer.instances("router")) == ["kept"]
        await reg.close()

    async def test_registering_again_replaces_the_entry(self, registry: Registry, peer: Registry):
        first = await registry.register("gateway", "gw-1", "old:1")
        second = await registry.register("gateway", "gw-1", "new:1")
        assert [i.address for i in await peer.instances("gateway")] == ["new:1"]
        await first.close()  # the old lease no longer holds the entry
        assert [i.address for i in await peer.instances("gateway")] == ["new:1"]
        await second.close()
        assert await peer.instances("gateway") == []

    async def test_names_that_would_break_the_key_layout_are_refused(self, registry: Registry):
        for service, instance in (("", "a"), ("a/b", "c"), ("a", ""), ("a", "b/c")):
            with pytest.raises(InvalidInput):
                await registry.register(service, instance, "h:1")
        with pytest.raises(InvalidInput):
            await registry.instances("x/y")


class ConfigContract:
    async def test_set_get_delete(self, registry: Registry, peer: Registry):
        assert await peer.get_config("flags/new_ui") is None
        await registry.set_config("flags/new_ui", "on")
        assert await peer.get_config("flags/new_ui") == "on"
        await registry.set_config("flags/new_ui", "off")
        assert await peer.get_config("flags/new_ui") == "off"
        await registry.delete_config("flags/new_ui")
        assert await peer.get_config("flags/new_ui") is None
        await registry.delete_config("flags/never_set")

    async def test_config_lists_a_prefix(self, registry: Registry, peer: Registry):
        await registry.set_config("flags/a", "1")
        await registry.set_config("flags/b", "2")
        await registry.set_config("limits/max_group_size", "256")
        assert await peer.config("flags/") == {"flags/a": "1", "flags/b": "2"}
        assert await peer.config() == {
            "flags/a": "1",
            "flags/b": "2",
            "limits/max_group_size": "256",
        }

    async def test_a_watch_of_a_prefix_sees_each_change(self, registry: Registry, peer: Registry):
        await registry.set_config("flags/a", "1")
        states = await peer.watch_config("flags/")
        try:
            assert await next_state(states) == {"flags/a": "1"}
            await registry.set_config("flags/b", "2")
            assert await next_state(states) == {"flags/a": "1", "flags/b": "2"}
            await registry.set_config("flags/a", "3")
            assert await next_state(states) == {"flags/a": "3", "flags/b": "2"}
            await registry.set_config("limits/x", "9")  # outside the prefix
            await no_state(states)
            await registry.set_config("flags/a", "3")  # the same value: the same state
            await no_state(states)
            await registry.delete_config("flags/a")
            assert await next_state(states) == {"flags/b": "2"}
        finally:
            await states.close()

    async def test_invalid_keys_are_refused(self, registry: Registry):
        for key in ("", "/abs", "dir/"):
            with pytest.raises(InvalidInput):
                await registry.set_config(key, "v")


async def campaign_task(elections: Elections, name: str, candidate: str) -> asyncio.Task[Any]:
    task = asyncio.create_task(elections.campaign(name, candidate, ttl=TTL))
    await asyncio.sleep(0.3)  # let it queue up behind earlier candidates
    return task


class ElectionContract:
    async def test_of_two_candidates_exactly_one_leads(self, registry: Registry, peer: Registry):
        first = await registry.campaign("sweeper", "one", ttl=TTL)
        assert first.is_leader and first.name == "sweeper" and first.candidate == "one"
        second = await campaign_task(peer, "sweeper", "two")
        assert not second.done()
        assert await peer.leader("sweeper") == "one"
        await first.resign()
        await second  # tidy up
        await second.result().resign()

    async def test_when_the_leader_resigns_the_next_candidate_leads(
        self, registry: Registry, peer: Registry
    ):
        first = await registry.campaign("relay", "one", ttl=TTL)
        second = await campaign_task(peer, "relay", "two")
        await first.resign()
        assert not first.is_leader
        await asyncio.wait_for(first.wait_lost(), SOON)
        won: Leadership = await asyncio.wait_for(second, SOON)
        assert won.is_leader and await registry.leader("relay") == "two"
        await won.resign()
        assert await registry.leader("relay") is None

    async def test_when_the_leaders_lease_expires_the_next_candidate_leads(
        self, registry: Registry, peer: Registry
    ):
        first = await registry.campaign("outbox", "one", ttl=TTL)
        second = await campaign_task(peer, "outbox", "two")
        crash(first)
        started = time.monotonic()
        await asyncio.wait_for(first.wait_lost(), EXPIRY)
        lost_after = time.monotonic() - started
        assert not first.is_leader
        won: Leadership = await asyncio.wait_for(second, EXPIRY)
        won_after = time.monotonic() - started
        assert won.is_leader and won.candidate == "two"
        assert lost_after <= won_after  # the old leader knew first
        assert won_after >= TTL - 1.0
        await won.resign()

    async def test_candidates_lead_in_the_order_they_campaigned(
        self, registry: Registry, peer: Registry
    ):
        first = await registry.campaign("order", "a", ttl=TTL)
        b = await campaign_task(peer, "order", "b")
        c = await campaign_task(registry, "order", "c")
        await first.resign()
        lead_b: Leadership = await asyncio.wait_for(b, SOON)
        assert lead_b.candidate == "b" and not c.done()
        await lead_b.resign()
        lead_c: Leadership = await asyncio.wait_for(c, SOON)
        assert lead_c.candidate == "c"
        await lead_c.resign()

    async def test_a_cancelled_campaign_withdraws_the_candidate(
        self, registry: Registry, peer: Registry
    ):
        first = await registry.campaign("router", "one", ttl=TTL)
        second = await campaign_task(peer, "router", "two")
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        await first.resign()
        assert await peer.leader("router") is None

    async def test_elections_are_independent(self, registry: Registry, peer: Registry):
        a = await registry.campaign("job-a", "one", ttl=TTL)
        b = await asyncio.wait_for(peer.campaign("job-b", "two", ttl=TTL), SOON)
        assert a.is_leader and b.is_leader
        await a.resign()
        await b.resign()


class RunAsLeaderContract:
    async def test_the_job_runs_in_one_place_and_moves_when_leadership_is_lost(
        self, registry: Registry, peer: Registry
    ):
        running: set[str] = set()
        cancelled: list[str] = []
        won: dict[str, list[Leadership]] = {"one": [], "two": []}
        started = asyncio.Event()

        class Recording:
            """The real elections, remembering each leadership won, so the test can crash it."""

            def __init__(self, inner: Elections, candidate: str) -> None:
                self.inner, self.candidate = inner, candidate

            async def campaign(self, name: str, candidate: str, *, ttl: int = TTL) -> Leadership:
                leadership = await self.inner.campaign(name, candidate, ttl=ttl)
                won[candidate].append(leadership)
                return leadership

            async def leader(self, name: str) -> str | None:
                return await self.inner.leader(name)

        def job(candidate: str):
            async def run() -> None:
                running.add(candidate)
                started.set()
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    cancelled.append(candidate)
                    raise
                finally:
                    running.discard(candidate)

            return run

        clock = SystemClock()
        one = asyncio.create_task(
            run_as_leader(
                Recording(registry, "one"),
                "sweep",
                job("one"),
                clock=clock,
                candidate="one",
                ttl=TTL,
                retry_delay=0.1,
            )
        )
        await asyncio.wait_for(started.wait(), SOON)
        two = asyncio.create_task(
            run_as_leader(
                Recording(peer, "two"),
                "sweep",
                job("two"),
                clock=clock,
                candidate="two",
                ttl=TTL,
                retry_delay=0.1,
            )
        )
        await asyncio.sleep(0.5)
        assert running == {"one"}

        crash(won["one"][0])  # its lease expires: the job must stop, and two takes over
        await eventually(lambda: running == {"two"}, EXPIRY + SOON, lambda: len(running) <= 1)
        assert cancelled == ["one"]

        two.cancel()  # cancelling resigns: one (campaigning again) takes over at once
        with pytest.raises(asyncio.CancelledError):
            await two
        await eventually(lambda: running == {"one"}, SOON)
        assert cancelled == ["one", "two"]
        one.cancel()
        with pytest.raises(asyncio.CancelledError):
            await one
        assert await registry.leader("sweep") is None

    async def test_a_job_that_returns_ends_the_loop_and_resigns(self, registry: Registry):
        done = asyncio.Event()

        async def job() -> None:
            done.set()

        await asyncio.wait_for(
            run_as_leader(registry, "once", job, clock=SystemClock(), candidate="x", ttl=TTL),
            SOON,
        )
        assert done.is_set() and await registry.leader("once") is None

    async def test_a_job_that_fails_resigns_and_raises(self, registry: Registry):
        async def job() -> None:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await asyncio.wait_for(
                run_as_leader(registry, "fails", job, clock=SystemClock(), candidate="x", ttl=TTL),
                SOON,
            )
        assert await registry.leader("fails") is None


class RegistryContract(
    ServiceRegistryContract, ConfigContract, ElectionContract, RunAsLeaderContract
):
    """Everything above, for one adapter."""
