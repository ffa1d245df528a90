from uuid import uuid4

import pytest

from chat4all.adapters.memory import realtime
from chat4all.adapters.memory.realtime import InProcessCache, InProcessHub, InProcessPresence
from chat4all.ports.realtime import SubscriptionLost
from tests.contract.realtime_contract import (
    KeyValueCacheContract,
    PresenceContract,
    RealtimeHubContract,
)
from tests.fakes import FakeClock


class TestInProcessHub(RealtimeHubContract):
    @pytest.fixture
    def hub(self):
        return InProcessHub()


class TestInProcessPresence(PresenceContract):
    @pytest.fixture
    def presence(self):
        return InProcessPresence()


class TestInProcessCache(KeyValueCacheContract):
    @pytest.fixture
    def clock(self):
        return FakeClock()

    @pytest.fixture
    def cache(self, clock):
        return InProcessCache(clock)

    @pytest.fixture
    def pass_time(self, clock):
        async def advance(seconds: float) -> None:
            clock.advance(seconds)

        return advance


async def test_a_session_that_stops_reading_is_cut_off():
    hub = InProcessHub()
    user = uuid4()
    sub = await hub.subscribe(user)
    for i in range(realtime.MAX_QUEUED_FRAMES + 1):
        await hub.publish([user], str(i).encode())
    with pytest.raises(SubscriptionLost):
        for _ in range(realtime.MAX_QUEUED_FRAMES + 1):
            await sub.get()
