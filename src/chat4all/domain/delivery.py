"""Rules for delivering to external channels: when to try again, and when to stop trying.

Pure logic on explicit times, so tests move time by hand and the delivery worker brings the
clock and the sleeping.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; a platform's own wait wins when longer."""

    attempts: int = 8
    first_delay: float = 0.5
    max_delay: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.first_delay * 2 ** (attempt - 1))
        # Full jitter: many lanes throttled at once do not come back in step.
        backoff = rng.uniform(ceiling / 2, ceiling)
        return max(backoff, retry_after or 0.0)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    """One per channel account. `failure_threshold` failures in a row open it; while open,
    sends fail fast; after `reset_after` seconds one probe may go (half-open): its success
    closes the breaker, its failure opens it again."""

    failure_threshold: int = 5
    reset_after: float = 5.0
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False

    def allow(self, now: float) -> bool:
        """May a send go now? In half-open state only one probe at a time."""
        if self.state is BreakerState.OPEN and now - self.opened_at >= self.reset_after:
            self.state = BreakerState.HALF_OPEN
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def retry_in(self, now: float) -> float:
        """Seconds until the breaker lets a probe through."""
        return max(0.0, self.opened_at + self.reset_after - now)

    def succeeded(self) -> BreakerState:
        self.state, self.failures, self.probing = BreakerState.CLOSED, 0, False
        return self.state

    def failed(self, now: float) -> BreakerState:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
            self.state, self.opened_at, self.probing = BreakerState.OPEN, now, False
        return self.state
