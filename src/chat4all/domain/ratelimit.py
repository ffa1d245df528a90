"""Token buckets: `burst` tokens at most, refilled at `rate` per second; each request takes
`cost`. Bursts up to the bucket's size pass; past that a request waits for its tokens."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    rate: float  # tokens per second
    burst: int  # the bucket's size

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float  # seconds until the request would pass; 0 when allowed


def take(
    rule: Rule, tokens: float | None, last: float | None, now: float, cost: int = 1
) -> tuple[Decision, float]:
    """The decision for a request at `now` (seconds) on a bucket that held `tokens` at `last`
    (None: a new, full bucket), and the tokens left after it."""
    if tokens is None or last is None:
        available = float(rule.burst)
    else:
        available = min(float(rule.burst), tokens + max(0.0, now - last) * rule.rate)
    if cost <= available:
        return Decision(True, 0.0), available - cost
    return Decision(False, (cost - available) / rule.rate), available


def retry_after_header(seconds: float) -> str:
    """Retry-After takes whole seconds: round up, so that a client that waits that long passes."""
    return str(max(1, math.ceil(seconds)))
