"""Retry backoff and the circuit breaker, on explicit times."""

import random

from chat4all.domain.delivery import BreakerState, CircuitBreaker, RetryPolicy


def test_backoff_grows_with_jitter_and_is_capped():
    policy = RetryPolicy(attempts=10, first_delay=1.0, max_delay=8.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = {policy.delay(attempt, None, rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered, so throttled lanes do not return in step


def test_the_platforms_retry_after_wins_when_longer():
    policy = RetryPolicy(first_delay=0.1, max_delay=1.0)
    assert policy.delay(1, 30.0, random.Random(1)) == 30.0
    assert policy.delay(5, 0.01, random.Random(1)) >= 0.5


def test_breaker_opens_after_failures_in_a_row_and_fails_fast():
    breaker = CircuitBreaker(failure_threshold=3, reset_after=10.0)
    for t in range(2):
        assert breaker.allow(t)
        assert breaker.failed(t) is BreakerState.CLOSED
    assert breaker.allow(2)
    assert breaker.failed(2) is BreakerState.OPEN
    assert not breaker.allow(5)
    assert breaker.retry_in(5) == 7.0


def test_a_success_resets_the_count():
    breaker = CircuitBreaker(failure_threshold=2, reset_after=1.0)
    breaker.failed(0)
    breaker.succeeded()
    assert breaker.failed(1) is BreakerState.CLOSED


def test_half_open_lets_one_probe_through():
    breaker = CircuitBreaker(failure_threshold=1, reset_after=5.0)
    breaker.failed(0)
    assert breaker.allow(5.0)  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow(5.1)  # no second probe while the first is out
    assert breaker.failed(5.2) is BreakerState.OPEN  # the probe failed: open again
    assert not breaker.allow(6.0)
    assert breaker.allow(10.5)
    assert breaker.succeeded() is BreakerState.CLOSED
    assert breaker.allow(10.6) and breaker.allow(10.6)
