import asyncio

import pytest

from chat4all.adapters.clock import SystemClock
from chat4all.adapters.memory.registry import InProcessRegistry
from chat4all.domain.errors import Unavailable
from tests.contract.registry_contract import TTL, RegistryContract


class TestInProcessRegistry(RegistryContract):
    @pytest.fixture
    async def registry(self):
        registry = InProcessRegistry(SystemClock())
        yield registry
        await registry.close()

    @pytest.fixture
    def peer(self, registry):
        return registry  # one process: the same key space


async def test_static_config_is_given_at_start():
    registry = InProcessRegistry(SystemClock(), {"flags/new_ui": "on", "limits/max": "5"})
    assert await registry.get_config("flags/new_ui") == "on"
    assert await registry.config("limits/") == {"limits/max": "5"}
    await registry.close()


async def test_close_revokes_everything_and_ends_watches():
    registry = InProcessRegistry(SystemClock())
    await registry.register("gateway", "gw", "h:1")
    leadership = await registry.campaign("sweep", "me", ttl=TTL)
    states = await registry.watch_config()
    assert await anext(states) == {}
    waiting = asyncio.create_task(registry.campaign("sweep", "other", ttl=TTL))
    await asyncio.sleep(0.05)
    await registry.close()
    assert not leadership.is_leader
    await asyncio.wait_for(leadership.wait_lost(), 1)
    with pytest.raises(StopAsyncIteration):
        await anext(states)
    with pytest.raises(Unavailable):
        await waiting
    with pytest.raises(Unavailable):
        await registry.instances("gateway")
