"""What every `RateLimiter` must do: token buckets that let bursts up to their size through,
refill at their rate, charge nothing for a refusal, and hold under concurrent takes."""

from __future__ import annotations

import asyncio

import pytest

from chat4all.domain.ratelimit import Rule
from chat4all.ports.ratelimit import RateLimiter
from tests.fakes import FakeClock

RULE = Rule(rate=2.0, burst=5)  # 5 at once, then one every half second


class RateLimiterContract:
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    async def test_a_burst_up_to_the_bucket_passes_and_the_next_waits(
        self, limiter: RateLimiter, clock: FakeClock
    ) -> None:
        for _ in range(RULE.burst):
            assert (await limiter.take("k", RULE, clock.now())).allowed
        refused = await limiter.take("k", RULE, clock.now())
        assert not refused.allowed
        assert refused.retry_after == pytest.approx(1 / RULE.rate)

    async def test_tokens_come_back_at_the_rate_and_a_refusal_costs_nothing(
        self, limiter: RateLimiter, clock: FakeClock
    ) -> None:
        for _ in range(RULE.burst):
            await limiter.take("k", RULE, clock.now())
        clock.advance(0.25)
        refused = await limiter.take("k", RULE, clock.now())
        assert not refused.allowed and refused.retry_after == pytest.approx(0.25)
        clock.advance(0.25)
        assert (await limiter.take("k", RULE, clock.now())).allowed
        assert not (await limiter.take("k", RULE, clock.now())).allowed
        clock.advance(60)  # a long pause refills to the burst, not beyond
        results = [(await limiter.take("k", RULE, clock.now())).allowed for _ in range(6)]
        assert results == [True] * 5 + [False]

    async def test_keys_have_buckets_of_their_own(
        self, limiter: RateLimiter, clock: FakeClock
    ) -> None:
        for _ in range(RULE.burst):
            await limiter.take("alice", RULE, clock.now())
        assert not (await limiter.take("alice", RULE, clock.now())).allowed
        assert (await limiter.take("bob", RULE, clock.now())).allowed

    async def test_a_cost_takes_that_many_tokens(
        self, limiter: RateLimiter, clock: FakeClock
    ) -> None:
        assert (await limiter.take("k", RULE, clock.now(), cost=4)).allowed
        refused = await limiter.take("k", RULE, clock.now(), cost=2)
        assert not refused.allowed and refused.retry_after == pytest.approx(0.5)
        assert (await limiter.take("k", RULE, clock.now(), cost=1)).allowed

    async def test_concurrent_takes_let_exactly_the_burst_through(
        self, limiter: RateLimiter, clock: FakeClock
    ) -> None:
        now = clock.now()
        decisions = await asyncio.gather(*(limiter.take("k", RULE, now) for _ in range(20)))
        assert sum(d.allowed for d in decisions) == RULE.burst
